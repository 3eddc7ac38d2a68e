"""One test per defence of the accounts baseline, named after the threat (security.md §6)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_token, login, make_settings
from tests.factories import PASSWORD, make_user

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
    statuses = [failed_login(client).status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]


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


def test_threat_23_passwords_are_argon2id(client, db):
    from sqlalchemy import select

    from patrons.models import User

    client.post("/signup", data={"email": "a@example.org", "password": "long enough password",
                                 "csrf_token": csrf_token(client)})  # fmt: skip
    hashes = db.scalars(select(User.password_hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert all("long enough password" not in h for h in hashes)


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
