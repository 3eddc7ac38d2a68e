"""One test per defence of the accounts baseline, named after the threat (docs/security.md)."""

from __future__ import annotations

import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from patrons.core import extensions
from tests.conftest import csrf_token, login, make_settings
from tests.factories import PASSWORD, make_user, production_password_hash
from tests.fuzzing import CommittedWrites, row_counts
from tests.helpers import cookie_flags, extra_app, set_cookies, settings_from
from tests.test_access_matrix import (  # noqa: F401  (world: the fixture)
    CSRF_EXEMPT,
    World,
    _roles_for,
    client_as,
    post_rules,
    url_for_rule,
    world,
)

OPEN_REDIRECTS = [
    "//evil.example", "/\\evil.example", "\\\\evil.example", "https:evil.example",
    "javascript:alert(1)", "http://evil.example", "https://evil.example/path",
    "//evil.example/%2f..", "/\\/evil.example", " //evil.example", "\t//evil.example",
    "%2F%2Fevil.example", "////evil.example", "https://patrons.test.evil.example",
    "data:text/html,x", "/%09/evil.example", "\\/evil.example", "ftp://evil.example",
    "//evil.example@patrons.test", "http:/\\evil.example", "/\r\n/evil.example",
]  # fmt: skip


def failed_login(client, email="victim@example.org"):
    return client.post("/login", data={"email": email, "password": "wrong password",
                                       "csrf_token": csrf_token(client)})  # fmt: skip


def test_threat_20_brute_force_sixth_failed_sign_in_in_a_minute_is_refused(client, db):
    make_user(db, email="victim@example.org")
    answers = [failed_login(client) for _ in range(6)]
    assert [a.status_code for a in answers] == [400] * 5 + [429]
    assert answers[-1].headers["Retry-After"] == "60"  # "wait a minute", as the page says


def test_threat_20_per_account_limit_holds_across_addresses(app, db):
    """Five different clients (IPs) failing on one account: the sixth is refused."""
    make_user(db, email="victim@example.org")
    statuses = []
    for n in range(6):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        statuses.append(failed_login(client).status_code)
    assert statuses[-1] == 429


def test_threat_21_forged_x_forwarded_for_does_not_dodge_the_limit(database_url, tmp_path, db):
    from patrons import create_app

    app = create_app(make_settings(database_url, tmp_path / "i2", proxy_hops=1))
    try:
        session = app.extensions["db.sessionmaker"]()
        make_user(session, email="victim2@example.org")
        session.close()
        statuses = []
        for n in range(6):
            client = app.test_client()
            # the client forges the first hop; the one trusted proxy appends the real address
            forwarded = f"203.0.113.{n}, 192.0.2.7"
            token = client.get("/csrf-token", headers={"X-Forwarded-For": forwarded})
            response = client.post(
                "/login",
                data={"email": f"other{n}@example.org", "password": "wrong password",
                      "csrf_token": token.get_json()["token"]},
                headers={"X-Forwarded-For": forwarded},
            )  # fmt: skip
            statuses.append(response.status_code)
        assert statuses[-1] == 429
    finally:
        app.extensions["db.engine"].dispose()


def test_threat_22_sign_in_answers_the_same_for_known_and_unknown_emails(client, db):
    make_user(db, email="known@example.org")
    known = failed_login(client, "known@example.org")
    unknown = failed_login(client, "unknown@example.org")
    assert known.status_code == unknown.status_code == 400

    def body(r):  # the CSRF token differs per request (it carries a timestamp)
        text = r.get_data(as_text=True).replace("unknown@", "X@").replace("known@", "X@")
        return re.sub(r'name="csrf_token" type="hidden" value="[^"]*"', "", text)

    assert body(known) == body(unknown)


def _timed(request, tries: int = 15, warm_up: int = 3, between=None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median seconds of `request("known")` and `request("unknown")`, interleaved so that
    drift on a busy machine hits both alike; the first rounds only warm up."""
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for n in range(warm_up + tries):
        for which in ("known", "unknown") if n % 2 else ("unknown", "known"):
            extensions.limiter.reset()  # the limits stay on, just never reached here
            if between is not None:
                between()
            start = time.perf_counter()
            request(which)
            if n >= warm_up:
                times[which].append(time.perf_counter() - start)
    return statistics.median(times["known"]), statistics.median(times["unknown"])


def _similar(known: float, unknown: float) -> bool:
    """Within 3x of each other, or under a 20 ms gap (paths of a few
    milliseconds jitter by more than 3x on a busy machine without telling anything)."""
    slow, fast = max(known, unknown), min(known, unknown)
    return slow < 3 * fast or slow - fast < 0.020


@pytest.mark.slow
@pytest.mark.production_hashing
def test_threat_22_sign_in_takes_as_long_for_known_and_unknown_emails(client, db):
    """Equality of work, not speed: an unknown email is checked against a dummy Argon2 hash,
    so it costs what a wrong password for a real account costs (~200 ms each here; without
    the dummy hash the unknown email would answer ~50x faster). At the production cost, app
    and account alike: at the tests' cheap cost both paths would take microseconds."""
    make_user(db, email="known@example.org", password_hash=production_password_hash())

    def sign_in(which: str) -> None:
        response = failed_login(client, f"{which}@example.org")
        assert response.status_code == 400, response.status_code  # not a 429: limits reset

    def unblock() -> None:  # the per-account backoff (throttle.py) is kept in the database
        from sqlalchemy import update

        from patrons.models import User

        db.execute(update(User).values(failed_sign_ins=0, sign_in_blocked_until=None))
        db.commit()

    known, unknown = _timed(sign_in, between=unblock)
    assert _similar(known, unknown), f"known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms"


def test_threat_22_reset_request_takes_as_long_for_known_and_unknown_emails(app, client, db):
    """The "forgot password" form: a link is made and mailed only for a known address; the
    answer must not take measurably longer because of it. Mail is sent after the response,
    on a thread, as in production (the test suite otherwise sends it inline)."""
    from patrons import mail

    app.config["MAIL_SEND_INLINE"] = False
    make_user(db, email="known@example.org")
    token = csrf_token(client)

    def ask(which: str) -> None:
        response = client.post(
            "/reset", data={"email": f"{which}@example.org", "csrf_token": token}
        )
        assert response.status_code == 200, response.status_code

    def wait_for_mail() -> None:  # the last request's, outside the timing
        mail.wait_for_background_sends(app, timeout=10)

    known, unknown = _timed(ask, between=wait_for_mail)
    wait_for_mail()
    assert _similar(known, unknown), f"known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms"


def test_threat_23_passwords_are_argon2id(client, db):
    from sqlalchemy import select

    from patrons.models import User

    client.post("/signup", data={"email": "a@example.org", "password": "long enough password",
                                 "csrf_token": csrf_token(client)})  # fmt: skip
    hashes = db.scalars(select(User.password_hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert all("long enough password" not in h for h in hashes)


def test_threat_23_hash_cost_comes_from_the_settings_and_production_has_a_floor(
    database_url, tmp_path
):
    from patrons import create_app
    from patrons.accounts.passwords import hash_password, needs_rehash, verify_password
    from patrons.core.config import ConfigError

    default = hash_password("a password")
    assert "$m=65536,t=3,p=4$" in default  # outside an app: the defaults of Settings
    cheap = make_settings(database_url, tmp_path / "i", password_hash_time_cost=1,
                          password_hash_memory_cost=8, password_hash_parallelism=1)  # fmt: skip
    app = create_app(cheap)
    try:
        with app.app_context():
            fast = hash_password("a password")
            assert fast.startswith("$argon2id$") and "$m=8,t=1,p=1$" in fast
            assert verify_password(fast, "a password") and not verify_password(fast, "other")
            assert not verify_password(None, "a password")  # unknown email: dummy hash, False
            assert not needs_rehash(fast)
            assert needs_rehash(default)  # rehashed with this app's cost at the next sign-in
    finally:
        app.extensions["db.engine"].dispose()
    with pytest.raises(ConfigError, match="PASSWORD_HASH_MEMORY_COST"):
        settings_from(database_url, tmp_path / "p", PATRONS_ENV="production",
                      PASSWORD_HASH_MEMORY_COST="8192")  # fmt: skip
    with pytest.raises(ConfigError, match="PASSWORD_HASH_TIME_COST"):
        settings_from(database_url, tmp_path / "p", PATRONS_ENV="production",
                      PASSWORD_HASH_TIME_COST="1")  # fmt: skip
    assert settings_from(database_url, tmp_path / "p", PATRONS_ENV="production").is_production


def test_threat_24_pre_login_cookie_is_not_authenticated_after_login(app, client, db):
    user = make_user(db)
    client.get("/csrf-token")
    before = client.get_cookie("session").value
    login(client, user.email, PASSWORD)
    attacker = app.test_client()
    attacker.set_cookie("session", before)
    assert attacker.get("/account").status_code == 302


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_threat_26_next_never_leaves_the_site(client, db, target):
    user = make_user(db)
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "next": target,
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))


def test_threat_28_eleventh_sign_up_in_a_minute_from_one_address_is_refused(client, db):
    statuses = []
    for n in range(11):
        response = client.post("/signup", data={
            "email": f"spam{n}@example.org", "password": "long enough password",
            "csrf_token": csrf_token(client)})  # fmt: skip
        statuses.append(response.status_code)
    assert statuses[:10] == [303] * 10 and statuses[10] == 429


def _sign_in(client, email: str, remember: bool, **kw: object):  # type: ignore[no-untyped-def]
    base_url = kw.get("base_url", "http://localhost")
    token = client.get("/csrf-token", base_url=base_url).get_json()["token"]
    data = {"email": email, "password": PASSWORD, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data, headers={"Referer": f"{base_url}/login"}, **kw)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response


def _check_lifetime(flags: dict[str, str], remember: bool) -> None:
    if not remember:  # ends with the browser
        assert "expires" not in flags and "max-age" not in flags, flags
        return
    expires = parsedate_to_datetime(flags["expires"])
    left = expires - datetime.now(UTC)
    assert timedelta(days=29) < left <= timedelta(days=30, minutes=1), left


@pytest.mark.parametrize("remember", [False, True], ids=["browser session", "keep me signed in"])
def test_threat_25_session_cookie_is_httponly_and_lax(client, db, remember):
    user = make_user(db)
    cookies = set_cookies(_sign_in(client, user.email, remember))
    # no "remember me" cookie to steal: the device cookie only names a known browser
    # (accounts/devices.py) and signs nobody in on its own
    assert set(cookies) == {"session", "patrons_device"}
    device_flags = cookie_flags(cookies["patrons_device"])
    assert "httponly" in device_flags and device_flags.get("samesite") == "Lax"
    fresh = client.application.test_client()
    fresh.set_cookie("patrons_device", cookies["patrons_device"].split(";")[0].split("=", 1)[1])
    assert fresh.get("/account").status_code == 302  # to the sign-in page
    flags = cookie_flags(cookies["session"])
    assert "httponly" in flags
    assert flags.get("samesite") == "Lax"
    assert flags.get("path") == "/"
    _check_lifetime(flags, remember)


@pytest.mark.parametrize("remember", [False, True], ids=["browser session", "keep me signed in"])
def test_threat_25_production_session_cookie_is_a_secure_host_cookie(
    database_url, tmp_path, remember
):
    """PATRONS_ENV=production (config.py) is what turns on Secure and the __Host- name."""
    settings = settings_from(database_url, tmp_path / "instance", PATRONS_ENV="production")
    assert settings.is_production
    with extra_app(settings) as app:
        session = app.extensions["db.sessionmaker"]()
        try:
            user = make_user(session)
        finally:
            session.close()
        client = app.test_client()
        response = _sign_in(client, user.email, remember, base_url="https://localhost")
    cookies = set_cookies(response)
    assert set(cookies) == {"__Host-session", "__Host-patrons_device"}
    assert "secure" in cookie_flags(cookies["__Host-patrons_device"])
    flags = cookie_flags(cookies["__Host-session"])
    assert "secure" in flags and "httponly" in flags
    assert flags.get("samesite") == "Lax"
    assert flags.get("path") == "/" and "domain" not in flags  # what __Host- requires
    _check_lifetime(flags, remember)


def test_threat_27_every_state_changing_route_without_a_token_is_refused_unwritten(
    app,
    world,  # noqa: F811  (the access matrix's fixture)
):
    """Every rule accepting POST (from app.url_map, as the access matrix lists them), signed
    in as a role that reaches the view, the session holding a CSRF token but the request not
    sending it: 400 from the CSRF check, and nothing written. Where a route has an obvious
    valid form, it is sent, so the request would write if the token were not checked."""
    engine = app.extensions["db.engine"]
    writes = CommittedWrites(engine)
    clients = {}
    refused = []
    try:
        for rule in post_rules(app):
            if rule.endpoint in CSRF_EXEMPT:
                continue
            role = _roles_for(rule.endpoint)
            if role not in clients:
                clients[role] = client_as(app, role, world)
                clients[role].get("/csrf-token")  # the session holds a token
            url = url_for_rule(app, rule, world)
            with engine.connect() as conn:
                before = row_counts(conn)
                writes.clear()
                response = clients[role].post(url, data=_valid_form(rule.endpoint, world))
                after = row_counts(conn)
            body = response.get_data(as_text=True)
            if response.status_code != 400 or "could not be accepted" not in body:
                refused.append(f"{rule.endpoint}: {response.status_code}")
            if writes.committed or after != before:
                refused.append(f"{rule.endpoint} wrote: {writes.committed}")
    finally:
        writes.close()
    assert len(post_rules(app)) >= 19
    assert refused == []


def _valid_form(endpoint: str, arranged: World) -> dict[str, str]:
    member = arranged.emails["member"]
    new_password = "another long password"
    return {
        "accounts.login": {"email": member, "password": PASSWORD, "remember": "y"},
        "accounts.signup": {"email": "new.reader@example.org", "password": new_password},
        "accounts.resend_verification": {"email": member},
        "accounts.forgot_password": {"email": member},
        "accounts.update_profile": {"display_name": "Changed"},
        "accounts.change_password": {
            "current_password": PASSWORD, "new_password": new_password, "confirm": new_password,
        },
        "accounts.change_email": {"new_email": "moved@example.org", "password": PASSWORD},
        "accounts.delete_account": {"password": PASSWORD},
        "articles.contact": {"selection": "a typo", "comment": "Fix it."},
        "articles.suggest_correction": {"selection": "first", "comment": "Fix it."},
        "staff.new_article": {"title": "New", "body_source": "Text.", "body_format": "markdown"},
        "staff.edit_article": {"title": "Changed", "body_source": "Text."},
    }.get(endpoint, {})  # fmt: skip
