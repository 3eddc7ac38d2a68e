"""Guessing is slow for everyone but the owner (patrons/accounts/throttle.py,
docs/security.md): a per-account backoff kept in the database, per-IP limits that never
refuse the owner's known device, the same answers for an address without an account, and a
warning at start in production when the limits live in each process's memory."""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from patrons.accounts import audit, throttle
from patrons.core import clock, extensions
from patrons.models import AuditEvent, User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_user
from tests.helpers import extra_app, settings_from

BLOCKED = "Too many failed sign-ins with this address."
NETWORK = "Too many failed sign-ins from your network."


def from_ip(app, ip: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def sign_in(client, email: str = "victim@example.org", password: str = "wrong password"):  # type: ignore[no-untyped-def]
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)}
    )


def stranger(app, n: int):  # type: ignore[no-untyped-def]
    """A browser at an address of its own: rule 1 (per IP) never counts it out."""
    return from_ip(app, f"198.51.100.{n}")


def account(db, email: str = "victim@example.org") -> User:  # type: ignore[no-untyped-def]
    db.rollback()
    db.expire_all()
    user = db.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def test_the_block_starts_after_five_attempts_at_a_minute_and_doubles_to_fifteen():
    minutes = [throttle.block_after(n) for n in range(1, 13)]
    assert minutes[:4] == [None] * 4
    assert minutes[4:] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 15, 15, 15, 15)]


def test_backoff_holds_across_two_apps_on_one_database(app, db, settings):
    """Two workers (two apps, one database), each with limits in its own memory (emptied
    before every request): the account's count is in the database, so the sixth attempt is
    refused whichever worker gets it, even with the right password from a new browser."""
    make_user(db, email="victim@example.org")
    with extra_app(settings, empty=False) as other:
        workers = [app, other]
        statuses = []
        for n in range(7):
            extensions.limiter.reset()  # this worker never saw the others' attempts
            statuses.append(sign_in(stranger(workers[n % 2], n + 1)).status_code)
        assert statuses == [400] * 5 + [429] * 2
        extensions.limiter.reset()
        right = sign_in(stranger(other, 50), password=PASSWORD)
        assert right.status_code == 429 and BLOCKED in right.get_data(as_text=True)
    assert account(db).failed_sign_ins == 5


def test_each_attempt_past_five_blocks_longer_and_the_right_password_starts_again(
    app, db, monkeypatch
):
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake.now)
    make_user(db, email="victim@example.org")
    assert [sign_in(stranger(app, n)).status_code for n in range(1, 6)] == [400] * 5
    for n, minutes in enumerate((1, 2, 4, 8, 15, 15), start=10):
        refused = sign_in(stranger(app, n))
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(minutes * 60)
        body = refused.get_data(as_text=True)
        unit = "minute" if minutes == 1 else "minutes"
        assert f"{BLOCKED} Try again in {minutes} {unit}." in body
        assert 'href="/login/link"' in body  # "Email me a sign-in link": the owner's way in
        fake.at += timedelta(minutes=minutes, seconds=1)
        assert sign_in(stranger(app, n + 100)).status_code == 400  # one more guess, counted
    assert account(db).failed_sign_ins == 11
    fake.at += timedelta(minutes=15, seconds=1)
    assert sign_in(stranger(app, 200), password=PASSWORD).status_code == 302
    user = account(db)
    assert (user.failed_sign_ins, user.sign_in_blocked_until) == (0, None)


def test_attempts_arriving_at_once_are_each_counted_and_see_the_block(app, db):
    """Twelve attempts at the same moment, on twelve connections: the count is one UPDATE
    each (failed_sign_ins + 1, only while unblocked), so exactly five get their password
    checked, whatever the interleaving, on SQLite and PostgreSQL."""
    user_id = make_user(db, email="victim@example.org").id
    start = threading.Barrier(12)
    allowed: list[bool] = []

    def attempt(n: int) -> None:
        environ = {"REMOTE_ADDR": f"203.0.113.{n}"}
        session = app.extensions["db.sessionmaker"]()
        try:
            with app.test_request_context("/login", method="POST", environ_base=environ):
                start.wait(30)
                verdict = throttle.check(session, "victim@example.org")
                allowed.append(verdict.wait is None)
        finally:
            session.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(allowed) == [False] * 7 + [True] * 5
    user = account(db)
    assert user.id == user_id and user.failed_sign_ins == 5
    assert user.sign_in_blocked_until is not None


def test_the_owners_known_device_gets_in_while_the_account_is_blocked(app, db):
    user = make_user(db, email="victim@example.org")
    owner = from_ip(app, "192.0.2.10")
    login(owner, user.email, PASSWORD)  # this browser is now a known device of the account
    owner.post("/logout", data={"csrf_token": csrf_token(owner)})
    assert [sign_in(stranger(app, n)).status_code for n in range(1, 7)] == [400] * 5 + [429]

    other_browser = sign_in(stranger(app, 20), password=PASSWORD)
    assert other_browser.status_code == 429 and BLOCKED in other_browser.get_data(as_text=True)
    assert sign_in(owner, password=PASSWORD).status_code == 302
    assert owner.get("/account").status_code == 200
    assert account(db).failed_sign_ins == 0  # a completed sign-in starts the count again


def test_a_known_device_has_a_per_ip_limit_of_its_own(app, db):
    user = make_user(db, email="victim@example.org")
    owner = from_ip(app, "192.0.2.10")
    login(owner, user.email, PASSWORD)
    owner.post("/logout", data={"csrf_token": csrf_token(owner)})
    assert [sign_in(owner).status_code for _ in range(6)] == [400] * 5 + [429]
    refused = sign_in(owner, password=PASSWORD)
    assert refused.status_code == 429 and NETWORK in refused.get_data(as_text=True)
    assert account(db).failed_sign_ins == 0  # not the account's count: others are not blocked
    assert sign_in(stranger(app, 30), password=PASSWORD).status_code == 302


def test_the_right_password_from_a_known_device_is_not_refused_while_its_network_is_limited(
    app, db
):
    """Someone guessing from the owner's own network (an office, a café) fills that
    address's limit: others there are refused, right or wrong (a refusal that let the right
    password through would tell which guess was right), but the owner's device gets in."""
    user = make_user(db, email="victim@example.org")
    owner = from_ip(app, "203.0.113.7")
    login(owner, user.email, PASSWORD)
    owner.post("/logout", data={"csrf_token": csrf_token(owner)})
    guesser = from_ip(app, "203.0.113.7")
    guesses = [sign_in(guesser, f"someone{n}@example.org").status_code for n in range(6)]
    assert guesses == [400] * 5 + [429]
    limited = sign_in(from_ip(app, "203.0.113.7"), password=PASSWORD)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
    assert f"{NETWORK} Try again in 1 minute." in limited.get_data(as_text=True)
    assert sign_in(owner, password=PASSWORD).status_code == 302


def test_an_address_without_an_account_is_throttled_alike(app, db):
    make_user(db, email="known@example.org")
    answers = {}
    for which, first_ip in (("known", 1), ("unknown", 101)):
        email = f"{which}@example.org"
        statuses = [sign_in(stranger(app, first_ip + n), email).status_code for n in range(5)]
        assert statuses == [400] * 5
        answers[which] = sign_in(stranger(app, first_ip + 50), email)

    def page(response) -> str:  # type: ignore[no-untyped-def]
        text = response.get_data(as_text=True).replace("unknown@", "X@").replace("known@", "X@")
        return re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "", text)

    known, unknown = answers["known"], answers["unknown"]
    assert known.status_code == unknown.status_code == 429
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"] == "60"
    assert page(known) == page(unknown)
    assert BLOCKED in page(known)


def test_failures_and_refusals_are_in_the_accounts_audit_log(app, db):
    make_user(db, email="victim@example.org")
    for n in range(6):
        sign_in(stranger(app, n + 1))
    db.rollback()
    events = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.kind for e in events] == [audit.SIGN_IN_FAILED] * 5 + [audit.SIGN_IN_BLOCKED]
    assert json.loads(events[4].detail or "{}") == {"failures": 5, "known_device": False}
    assert events[0].ip == "198.51.100.1"
    assert "until" in json.loads(events[5].detail or "{}")


@pytest.mark.parametrize(("env", "warned"), [("production", 1), ("testing", 0)])
def test_production_warns_at_start_when_rate_limits_are_per_process(
    database_url, tmp_path, caplog, env, warned
):
    caplog.set_level(logging.WARNING, logger=throttle.__name__)
    settings = settings_from(database_url, tmp_path / "instance", PATRONS_ENV=env)
    with extra_app(settings, empty=False) as production:
        said = [r for r in caplog.records if "REDIS_URL is not set" in r.getMessage()]
        assert len(said) == warned
        caplog.clear()
        production.config["RATELIMIT_STORAGE_URI"] = "redis://redis.internal:6379/0"
        throttle.warn_if_per_process(production)  # shared limits: nothing to say
        assert caplog.records == []
