"""Secrets that hold across machines: SECRET_KEY_FALLBACKS lets a key be rotated without
signing everyone out (the session cookie, CSRF tokens, emailed codes, recovery codes made
with the old key still work), and production refuses to start without MAIL_URL unless the
operator chooses a folder on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from patrons.core.config import ConfigError, Settings
from patrons.mail import make_transport
from patrons.mail.transports import OutboxTransport, SmtpTransport
from tests.conftest import csrf_token, login, make_settings
from tests.factories import PASSWORD, make_user
from tests.helpers import extra_app

OLD_KEY = "old-key-" + "o" * 40
NEW_KEY = "new-key-" + "n" * 40


def copy_cookies(source: FlaskClient, target: FlaskClient) -> None:
    for cookie in source._cookies.values():  # the test client's jar (werkzeug 3)
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def rotated(database_url: str, tmp_path: Path, *fallbacks: str) -> Settings:
    return make_settings(database_url, tmp_path / "new", secret_key=NEW_KEY,
                         secret_key_fallbacks=fallbacks)  # fmt: skip


@pytest.fixture
def old_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    with extra_app(make_settings(database_url, tmp_path / "old", secret_key=OLD_KEY)) as app:
        yield app


def signed_in_with_old_key(old_app: Flask) -> tuple[FlaskClient, str]:
    """A reader signed in under the old key, and a CSRF token the old key signed."""
    client = old_app.test_client()
    with old_app.app_context():
        from patrons.core.db import session as db

        user = make_user(db)
        email = user.email
    login(client, email, PASSWORD)
    assert client.get("/account").status_code == 200
    return client, csrf_token(client)


@pytest.mark.parametrize("accepted", [True, False], ids=["with fallback", "without"])
def test_session_and_csrf_made_with_the_old_key_hold_after_rotation(
    old_app: Flask, database_url: str, tmp_path: Path, accepted: bool
) -> None:
    old_client, token = signed_in_with_old_key(old_app)
    fallbacks = (OLD_KEY,) if accepted else ()
    with extra_app(rotated(database_url, tmp_path, *fallbacks), empty=False) as new_app:
        client = new_app.test_client()
        copy_cookies(old_client, client)
        account = client.get("/account")
        logout = client.post("/logout", data={"csrf_token": token})
    if accepted:
        assert account.status_code == 200  # still signed in
        assert logout.status_code == 302  # the old token passed the CSRF check
    else:  # what the fallback prevents: signed out, and the form refused
        assert account.status_code == 302
        assert logout.status_code == 400


def test_a_forged_token_is_still_refused_with_fallbacks(
    old_app: Flask, database_url: str, tmp_path: Path
) -> None:
    old_client, token = signed_in_with_old_key(old_app)
    with extra_app(rotated(database_url, tmp_path, OLD_KEY), empty=False) as new_app:
        client = new_app.test_client()
        copy_cookies(old_client, client)
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert client.post("/logout", data={"csrf_token": forged}).status_code == 400
        # a token signed with some other key is no better
        stranger = URLSafeTimedSerializer("x" * 48, salt="wtf-csrf-token").dumps("abc")
        assert client.post("/logout", data={"csrf_token": stranger}).status_code == 400
        assert client.get("/account").status_code == 200


def test_emailed_and_recovery_codes_hashed_with_the_old_key_still_match(
    old_app: Flask, database_url: str, tmp_path: Path
) -> None:
    from patrons.accounts import email_tokens, totp

    with old_app.app_context():
        code_hash = email_tokens._code_hash(7, "signup", "123456")
        recovery = totp._recovery_hash(7, "abcd2345efgh")
    new_settings = rotated(database_url, tmp_path, OLD_KEY)
    with extra_app(new_settings, empty=False) as new_app, new_app.app_context():
        assert email_tokens._code_matches(code_hash, 7, "signup", "123456")
        assert not email_tokens._code_matches(code_hash, 7, "signup", "123457")
        assert recovery in totp._recovery_hashes(7, "abcd2345efgh")
        assert email_tokens._code_hash(7, "signup", "123456") != code_hash  # new: new key
    with extra_app(rotated(database_url, tmp_path), empty=False) as plain, plain.app_context():
        assert not email_tokens._code_matches(code_hash, 7, "signup", "123456")
        assert recovery not in totp._recovery_hashes(7, "abcd2345efgh")


# -- settings --------------------------------------------------------------------------------


def prod_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATRONS_ENV": "production",
        "SECRET_KEY": NEW_KEY,
        "DATABASE_URL": "postgresql+psycopg://patrons@db.internal/patrons",
        "PATRONS_INSTANCE": str(tmp_path / "instance"),
        "MAIL_URL": "smtp://mail.internal:587",
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def test_fallback_keys_are_read_comma_separated(tmp_path: Path) -> None:
    env = prod_env(tmp_path, SECRET_KEY_FALLBACKS=f" {OLD_KEY} , {'p' * 32},")
    assert Settings.from_env(env).secret_key_fallbacks == (OLD_KEY, "p" * 32)
    assert Settings.from_env(prod_env(tmp_path)).secret_key_fallbacks == ()


def test_production_refuses_a_short_fallback_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS"):
        Settings.from_env(prod_env(tmp_path, SECRET_KEY_FALLBACKS="short"))


def test_production_refuses_a_missing_or_short_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        Settings.from_env(prod_env(tmp_path, SECRET_KEY=""))
    with pytest.raises(ConfigError, match="at least 32"):
        Settings.from_env(prod_env(tmp_path, SECRET_KEY="k" * 31))


def test_production_refuses_to_start_without_mail_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MAIL_URL must be set in production") as caught:
        Settings.from_env(prod_env(tmp_path, MAIL_URL=""))
    assert "file:///" in str(caught.value)  # the message names the way to choose a folder


def test_production_accepts_a_folder_chosen_on_purpose(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    settings = Settings.from_env(prod_env(tmp_path, MAIL_URL=f"file://{folder}"))
    transport = make_transport(settings)
    assert isinstance(transport, OutboxTransport) and transport.folder == folder
    with pytest.raises(ConfigError, match="absolute folder"):
        Settings.from_env(prod_env(tmp_path, MAIL_URL="file://relative/outbox"))


def test_development_still_defaults_to_the_instance_outbox(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"PATRONS_ENV": "development", "PATRONS_INSTANCE": str(tmp_path / "i")}
    )
    transport = make_transport(settings)
    assert isinstance(transport, OutboxTransport)
    assert transport.folder == settings.instance_path / "outbox"
    smtp = Settings.from_env(prod_env(tmp_path))
    assert isinstance(make_transport(smtp), SmtpTransport)


@pytest.mark.parametrize(("name", "value", "error"), [
    ("MAIL_KEEP_DAYS", "0", "at least 1"),
    ("STRIPE_EVENTS_KEEP_DAYS", "29", "at least 30"),
    ("MAIL_KEEP_DAYS", "soon", "integer"),
])  # fmt: skip
def test_retention_settings_are_checked(tmp_path: Path, name: str, value: str, error: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must .*{error}"):
        Settings.from_env(prod_env(tmp_path, **{name: value}))
    assert (
        Settings.from_env(prod_env(tmp_path, **{name: "45"})).__getattribute__(name.lower()) == 45
    )
