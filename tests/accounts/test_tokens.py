"""The signed links' tokens (patrons/accounts/tokens.py, docs/security.md threat 38): read
back only with the key and for the purpose they were made with, and only until they expire.
The key is a parameter, so these need no app beyond the translated messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from itsdangerous import TimestampSigner

from patrons.accounts import tokens

KEY = "a-signing-key-for-these-tests-only-0123456789"
MADE_AT = 1_800_000_000


@pytest.fixture(autouse=True)
def context(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield


def at(monkeypatch: pytest.MonkeyPatch, timestamp: int) -> None:
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: timestamp)


def test_a_token_is_read_back_with_its_key_and_purpose() -> None:
    token = tokens.make_token(KEY, "verify", uid=7, email="reader@example.org")
    assert tokens.read_token(KEY, "verify", token) == {"uid": 7, "email": "reader@example.org"}


def test_another_key_refuses_the_token() -> None:
    token = tokens.make_token(KEY, "reset", uid=7, pw="x")
    with pytest.raises(tokens.TokenError, match="not valid"):
        tokens.read_token(KEY[::-1], "reset", token)


@pytest.mark.parametrize(
    ("made_for", "offered_as"),
    [("verify", "reset"), ("reset", "email-change"), ("email-change", "verify")],
)
def test_the_salts_keep_the_purposes_apart(made_for: str, offered_as: str) -> None:
    token = tokens.make_token(KEY, made_for, uid=7)
    with pytest.raises(tokens.TokenError, match="not valid"):
        tokens.read_token(KEY, offered_as, token)


@pytest.mark.parametrize(
    ("purpose", "hours"),
    [("verify", tokens.VERIFY_HOURS), ("reset", tokens.RESET_HOURS),
     ("email-change", tokens.EMAIL_CHANGE_HOURS)],
)  # fmt: skip
def test_a_token_expires_after_its_hours(
    monkeypatch: pytest.MonkeyPatch, purpose: str, hours: int
) -> None:
    at(monkeypatch, MADE_AT)
    token = tokens.make_token(KEY, purpose, uid=7)
    at(monkeypatch, MADE_AT + hours * 3600)
    assert tokens.read_token(KEY, purpose, token) == {"uid": 7}
    at(monkeypatch, MADE_AT + hours * 3600 + 1)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.read_token(KEY, purpose, token)


@pytest.mark.parametrize("token", ["", "x" * 1001, "not.a.token"])
def test_an_empty_overlong_or_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(tokens.TokenError):
        tokens.read_token(KEY, "verify", token)
