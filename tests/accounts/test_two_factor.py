"""Two-factor sign-in (patrons/accounts/totp.py, second_factor.py, two_factor_views.py):
enrolment from the QR page, the code at sign-in, codes used once, recovery codes used once,
a stale pending sign-in refused, remembered devices, turning it off, staff sent to
enrolment where it is required, and the owner's recent security events in words."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.accounts import audit
from patrons.core import clock, extensions
from patrons.core.config import Settings
from patrons.models import AuditEvent, KnownDevice, RecoveryCode, User, UserSession
from tests.conftest import TEST_SECRET, csrf_token, login, make_settings
from tests.factories import PASSWORD, make_staff, make_user
from tests.helpers import extra_app

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 6, 12, 0, 10, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(clock, "now", fake.now)
    extensions.limiter.reset()
    return fake


def fresh(db: Session, email: str) -> User:
    db.rollback()
    db.expire_all()
    user = db.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


def code_at(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def post(client: FlaskClient, url: str, **data: object):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "csrf_token": csrf_token(client)})


def enrol(client: FlaskClient, now: Clock) -> tuple[str, list[str]]:
    """Turn two-factor on through the pages: the secret read from the page's text."""
    page = client.get("/account/two-factor").get_data(as_text=True)
    match = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page)
    assert match, page[-2000:]
    secret = match.group(1).replace(" ", "")
    done = post(client, "/account/two-factor", code=code_at(secret, now.at))
    assert done.status_code == 200, done.get_data(as_text=True)[-1500:]
    codes = re.findall(
        r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", done.get_data(as_text=True)
    )
    return secret, codes


def with_two_factor(app: Flask, db: Session, email: str = "two@example.org", staff: bool = False):  # type: ignore[no-untyped-def]
    """An account with two-factor on (set directly) and its secret."""
    user = make_user(db, email=email, is_staff=staff)
    secret = pyotp.random_base32()
    user.totp_secret, user.two_factor_enabled_at = secret, clock.now()
    db.commit()
    return user, secret


def signed_in(client: FlaskClient) -> bool:
    return client.get("/account").status_code == 200


def events(db: Session, kind: str) -> list[AuditEvent]:
    db.rollback()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


# -- enrolment ------------------------------------------------------------------------


def test_enrolment_shows_a_qr_code_and_the_key_and_needs_a_right_code(client, db, now):
    make_user(db, email="reader@example.org")
    login(client, "reader@example.org", PASSWORD)
    page = client.get("/account/two-factor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<svg role="img" viewBox=' in html and "<path" in html  # inline, nothing loaded
    assert 'src="http' not in html
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', html).group(1)  # type: ignore[union-attr]
    secret = secret.replace(" ", "")
    assert len(secret) == 32
    # the same secret until confirmed (a reload does not change what the app scanned)
    assert secret.replace(" ", "") in client.get("/account/two-factor").get_data(
        as_text=True
    ).replace(" ", "")

    wrong = post(client, "/account/two-factor", code=code_at(secret, now.at - timedelta(minutes=5)))
    assert wrong.status_code == 400 and "does not match" in wrong.get_data(as_text=True)
    assert fresh(db, "reader@example.org").two_factor_enabled_at is None

    right = post(client, "/account/two-factor", code=code_at(secret, now.at))
    assert right.status_code == 200
    assert "no-store" in right.headers["Cache-Control"]
    codes = re.findall(
        r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", right.get_data(as_text=True)
    )
    assert len(set(codes)) == 10
    user = fresh(db, "reader@example.org")
    assert user.totp_secret == secret and user.two_factor_enabled_at == now.at
    stored = db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & set(stored)
    assert len(events(db, audit.TWO_FACTOR_ENABLED)) == 1
    # the page's codes are not kept anywhere the browser could show them again
    assert "two_factor" not in (right.headers.get("Set-Cookie") or "").lower()
    again = client.get("/account/two-factor")
    assert again.status_code == 303 and again.headers["Location"] == "/account"


def test_enrolling_signs_out_every_other_device(app, client, db, now):
    make_user(db, email="reader@example.org")
    other = app.test_client()
    login(other, "reader@example.org", PASSWORD)
    login(client, "reader@example.org", PASSWORD)
    enrol(client, now)
    assert signed_in(client) and not signed_in(other)


# -- the code at sign-in ---------------------------------------------------------------


def test_sign_in_asks_for_the_code_and_starts_a_session_only_after_it(app, client, db, now):
    user, secret = with_two_factor(app, db)
    response = post(client, "/login", email=user.email, password=PASSWORD, next="/topics")
    assert response.status_code == 302 and response.headers["Location"] == "/login/two-factor"
    assert not signed_in(client)
    assert client.get("/login/two-factor").status_code == 200
    done = post(client, "/login/two-factor", code=code_at(secret, now.at))
    assert done.status_code == 302 and done.headers["Location"] == "/topics"
    assert signed_in(client)
    db.rollback()
    row = db.scalars(select(UserSession).where(UserSession.user_id == user.id)).one()
    assert row.two_factor_at == now.at
    assert json.loads(events(db, audit.SIGN_IN)[0].detail or "{}") == {"method": "password"}


def test_one_step_of_drift_is_accepted_and_two_are_not(app, db, now):
    user, secret = with_two_factor(app, db)
    late = app.test_client()
    post(late, "/login", email=user.email, password=PASSWORD)
    too_old = post(late, "/login/two-factor", code=code_at(secret, now.at - timedelta(seconds=60)))
    assert too_old.status_code == 400
    one_behind = post(
        late, "/login/two-factor", code=code_at(secret, now.at - timedelta(seconds=30))
    )
    assert one_behind.status_code == 302


def test_a_code_is_refused_the_second_time_even_from_another_browser(app, db, now):
    user, secret = with_two_factor(app, db)
    code = code_at(secret, now.at)
    first, second = app.test_client(), app.test_client()
    for browser in (first, second):
        post(browser, "/login", email=user.email, password=PASSWORD)
    assert post(first, "/login/two-factor", code=code).status_code == 302
    replay = post(second, "/login/two-factor", code=code)
    assert replay.status_code == 400 and "used already" in replay.get_data(as_text=True)
    assert not signed_in(second)
    assert [json.loads(e.detail or "{}") for e in events(db, audit.TWO_FACTOR_FAILED)] == [
        {"where": "sign_in"}
    ]
    # the next step's code works
    now.move(seconds=30)
    assert post(second, "/login/two-factor", code=code_at(secret, now.at)).status_code == 302


def test_a_recovery_code_signs_in_once(client, db, now):
    make_user(db, email="reader@example.org")
    login(client, "reader@example.org", PASSWORD)
    _, codes = enrol(client, now)
    post(client, "/logout")
    post(client, "/login", email="reader@example.org", password=PASSWORD)
    used = post(client, "/login/two-factor", code=codes[3].upper().replace("-", " "))
    assert used.status_code == 302
    page = client.get("/account")  # signed in, and told how many are left
    assert page.status_code == 200 and "9 are left" in page.get_data(as_text=True)
    assert len(events(db, audit.RECOVERY_CODE_USED)) == 1
    post(client, "/logout")
    post(client, "/login", email="reader@example.org", password=PASSWORD)
    again = post(client, "/login/two-factor", code=codes[3])
    assert again.status_code == 400 and not signed_in(client)
    user = fresh(db, "reader@example.org")
    left = db.scalar(
        select(func.count()).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    assert left == 9


def test_a_pending_sign_in_is_refused_once_the_stamp_changes(app, client, db, now):
    """The owner resets the password (or signs out everywhere) while someone who had it
    waits at the code page: that half sign-in is dead, even with a right code."""
    user, secret = with_two_factor(app, db)
    post(client, "/login", email=user.email, password=PASSWORD)
    owner = fresh(db, user.email)
    owner.security_stamp = "changed-by-a-reset"
    db.commit()
    refused = post(client, "/login/two-factor", code=code_at(secret, now.at))
    assert refused.status_code == 400
    assert "expired" in refused.get_data(as_text=True)
    assert not signed_in(client)
    assert client.get("/login/two-factor").headers["Location"] == "/login"  # dropped


def test_a_pending_sign_in_expires_after_ten_minutes(app, client, db, now):
    user, secret = with_two_factor(app, db)
    post(client, "/login", email=user.email, password=PASSWORD)
    now.move(minutes=11)
    assert post(client, "/login/two-factor", code=code_at(secret, now.at)).status_code == 400
    assert not signed_in(client)


def test_wrong_codes_are_limited_per_pending_sign_in(app, client, db, now):
    user, secret = with_two_factor(app, db)
    post(client, "/login", email=user.email, password=PASSWORD)
    statuses = [post(client, "/login/two-factor", code="000000").status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]
    # a replayed cookie does not reset it: the key is the pending sign-in, kept server-side
    assert post(client, "/login/two-factor", code=code_at(secret, now.at)).status_code == 429
    assert len(events(db, audit.TWO_FACTOR_FAILED)) == 5


def test_remember_this_device_skips_the_code_for_thirty_days(app, client, db, now):
    user, secret = with_two_factor(app, db)
    post(client, "/login", email=user.email, password=PASSWORD)
    post(client, "/login/two-factor", code=code_at(secret, now.at), remember_device="y")
    db.rollback()
    device = db.scalars(select(KnownDevice).where(KnownDevice.user_id == user.id)).one()
    assert device.two_factor_until == now.at + timedelta(days=30)
    post(client, "/logout")
    again = post(client, "/login", email=user.email, password=PASSWORD, next="/topics")
    assert again.headers["Location"] == "/topics" and signed_in(client)
    post(client, "/logout")
    other = app.test_client()  # another browser is asked
    assert post(other, "/login", email=user.email, password=PASSWORD).headers["Location"] == (
        "/login/two-factor"
    )
    now.move(days=30, seconds=1)
    later = post(client, "/login", email=user.email, password=PASSWORD)
    assert later.headers["Location"] == "/login/two-factor"


# -- turning it off, new recovery codes -------------------------------------------------


def test_turning_it_off_needs_a_current_code_or_the_password(client, db, now):
    make_user(db, email="reader@example.org")
    login(client, "reader@example.org", PASSWORD)
    secret, _ = enrol(client, now)
    wrong = post(client, "/account/two-factor/off", proof="not my password")
    assert wrong.status_code == 400 and "neither a current code" in wrong.get_data(as_text=True)
    assert "not my password" not in wrong.get_data(as_text=True)  # never shown back
    assert fresh(db, "reader@example.org").two_factor_enabled_at is not None
    now.move(seconds=30)
    off = post(client, "/account/two-factor/off", proof=code_at(secret, now.at))
    assert off.status_code == 302
    user = fresh(db, "reader@example.org")
    assert user.two_factor_enabled_at is None and user.totp_secret is None
    assert db.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert len(events(db, audit.TWO_FACTOR_DISABLED)) == 1


def test_turning_it_off_with_the_password(client, db, now):
    make_user(db, email="reader@example.org")
    login(client, "reader@example.org", PASSWORD)
    enrol(client, now)
    assert post(client, "/account/two-factor/off", proof=PASSWORD).status_code == 302
    assert fresh(db, "reader@example.org").two_factor_enabled_at is None


def test_new_recovery_codes_replace_the_old_ones(client, db, now):
    make_user(db, email="reader@example.org")
    login(client, "reader@example.org", PASSWORD)
    _, old = enrol(client, now)
    page = post(client, "/account/two-factor/recovery-codes")
    new = re.findall(
        r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", page.get_data(as_text=True)
    )
    assert page.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    post(client, "/logout")
    post(client, "/login", email="reader@example.org", password=PASSWORD)
    assert post(client, "/login/two-factor", code=old[0]).status_code == 400
    assert post(client, "/login/two-factor", code=new[0]).status_code == 302


# -- staff must have it where it is required -------------------------------------------


def test_the_setting_defaults_to_on_in_production_only(database_url, tmp_path):
    base = {"SECRET_KEY": TEST_SECRET, "DATABASE_URL": database_url,
            "PATRONS_INSTANCE": str(tmp_path), "MAIL_URL": "smtp://mail.patrons.test"}  # fmt: skip
    production = Settings.from_env({**base, "PATRONS_ENV": "production"})
    assert production.staff_two_factor_required is True
    assert (
        Settings.from_env({**base, "PATRONS_ENV": "development"}).staff_two_factor_required is False
    )
    off = Settings.from_env(
        {**base, "PATRONS_ENV": "production", "STAFF_TWO_FACTOR_REQUIRED": "false"}
    )
    assert off.staff_two_factor_required is False
    assert production.audit_keep_days == 365


def test_staff_without_two_factor_are_sent_to_enrolment_where_required(
    database_url, tmp_path, db, monkeypatch
):
    fake = Clock()
    monkeypatch.setattr(clock, "now", fake.now)
    settings = make_settings(database_url, tmp_path / "i", staff_two_factor_required=True)
    with extra_app(settings) as app:
        make_staff(db)
        make_user(db, email="reader@example.org")
        staff = app.test_client()
        login(staff, "editor@example.org", PASSWORD)
        for path in ("/staff/", "/staff/members", "/staff/reports", "/staff/audit"):
            response = staff.get(path)
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/account/two-factor?next=/staff/")
        reader = app.test_client()  # readers are not asked
        login(reader, "reader@example.org", PASSWORD)
        assert reader.get("/account").status_code == 200
        enrol(staff, fake)
        assert staff.get("/staff/").status_code == 200


# -- what the owner sees --------------------------------------------------------------


def test_the_account_page_lists_recent_security_events_in_words(app, db, now):
    user, secret = with_two_factor(app, db, email="reader@example.org")
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="203.0.113.9")
    post(client, "/login", email=user.email, password=PASSWORD)
    post(
        client,
        "/login/two-factor",
        code="123456" if code_at(secret, now.at) != "123456" else "654321",
    )
    post(client, "/login/two-factor", code=code_at(secret, now.at))
    html = unescape(client.get("/account").get_data(as_text=True))
    section = html[html.index("Recent sign-ins") :]
    assert "Signed in with your password" in section
    assert "A wrong two-factor code was given" in section
    assert "Firefox on Linux" in section and "203.0.113.9" in section
    assert '6 December 2026</span> <span class="nowrap">at 12:00 UTC' in section
    for raw in ("sign_in", "two_factor.failed", "two_factor.used"):
        assert raw not in section


def test_a_wrong_recovery_code_writes_nothing(app, client, db, now):
    """Found by the two-factor fuzzing: "2222222222" has a recovery code's shape, and the
    refusal ran an UPDATE (of no row). A refusal only reads; a right code is spent once."""
    from sqlalchemy import event

    from patrons.accounts import totp

    make_user(db, email="reader@example.org")
    login(client, "reader@example.org", PASSWORD)
    _, codes = enrol(client, now)
    user = fresh(db, "reader@example.org")
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement.lstrip().split()[0].upper())

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with app.test_request_context():
            assert totp.use_recovery_code(db, user, "2222222222") is False
            assert statements and set(statements) == {"SELECT"}
            assert totp.use_recovery_code(db, user, codes[0]) is True
            assert "UPDATE" in statements
            assert totp.use_recovery_code(db, user, codes[0]) is False  # spent
    finally:
        event.remove(engine, "before_cursor_execute", seen)
