"""The emailed links' tokens (patrons/accounts/email_tokens.py, docs/security.md): stored
hashed, for one purpose, used once (also by two requests at once), short-lived, dead once the
account's security stamp turns over, and, when asked, only for the browser that asked."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.accounts import email_tokens
from patrons.core import clock
from patrons.models import EmailToken, User
from tests.factories import make_user

ALL = sorted(email_tokens.LIFETIMES)
MADE_AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def context(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield


@pytest.fixture
def user(db: Session) -> User:
    return make_user(db, email="holder@example.org")


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(clock, "now", lambda: moment)


def issue(db: Session, user: User, purpose: str, **kw: object) -> email_tokens.Issued:
    issued = email_tokens.issue(db, user, purpose, **kw)  # type: ignore[arg-type]
    db.commit()
    return issued


def test_only_hashes_are_stored(db: Session, user: User) -> None:
    issued = issue(db, user, email_tokens.VERIFY, with_code=True, browser="nonce-1",
                   data={"next": "/support"})  # fmt: skip
    assert issued.code is not None and len(issued.code) == 6 and issued.code.isdigit()
    row = db.scalars(select(EmailToken)).one()
    stored = [str(getattr(row, c.key)) for c in EmailToken.__table__.columns]
    assert not any(issued.token in value or issued.code in value for value in stored)
    assert not any("nonce-1" in value for value in stored)
    assert row.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()


@pytest.mark.parametrize("purpose", ALL)
def test_a_token_works_once(db: Session, user: User, purpose: str) -> None:
    issued = issue(db, user, purpose, data={"next": "/a"})
    used = email_tokens.use(db, purpose, issued.token)
    db.commit()
    assert (used.user.id, used.data, used.fresh) == (user.id, {"next": "/a"}, True)
    with pytest.raises(email_tokens.TokenUsed, match="already been used"):
        email_tokens.use(db, purpose, issued.token)
    with pytest.raises(email_tokens.TokenUsed):
        email_tokens.peek(db, purpose, issued.token)


@pytest.mark.parametrize(("made_for", "offered_as"), list(zip(ALL, ALL[1:] + ALL[:1], strict=True)))
def test_a_token_is_for_its_purpose_only(
    db: Session, user: User, made_for: str, offered_as: str
) -> None:
    issued = issue(db, user, made_for)
    with pytest.raises(email_tokens.TokenError, match="not valid"):
        email_tokens.use(db, offered_as, issued.token)


@pytest.mark.parametrize("purpose", ALL)
def test_a_token_expires_after_its_lifetime(
    monkeypatch: pytest.MonkeyPatch, db: Session, user: User, purpose: str
) -> None:
    lifetime = email_tokens.LIFETIMES[purpose]
    at(monkeypatch, MADE_AT)
    issued = issue(db, user, purpose)
    assert issued.minutes == lifetime.total_seconds() // 60
    at(monkeypatch, MADE_AT + lifetime - timedelta(seconds=1))
    email_tokens.peek(db, purpose, issued.token)
    at(monkeypatch, MADE_AT + lifetime)
    with pytest.raises(email_tokens.TokenError, match="expired"):
        email_tokens.use(db, purpose, issued.token)


@pytest.mark.parametrize("purpose", ALL)
def test_a_token_dies_when_the_stamp_turns_over(db: Session, user: User, purpose: str) -> None:
    issued = issue(db, user, purpose)
    email_tokens.rotate_stamp(user)
    db.commit()
    with pytest.raises(email_tokens.TokenError, match="account changed since"):
        email_tokens.use(db, purpose, issued.token)


def test_any_stamp_uses_an_overtaken_token_and_says_so(db: Session, user: User) -> None:
    issued = issue(db, user, email_tokens.VERIFY)
    email_tokens.rotate_stamp(user)
    db.commit()
    used = email_tokens.use(db, email_tokens.VERIFY, issued.token, any_stamp=True)
    assert used.user.id == user.id and not used.fresh


def test_a_newer_token_supersedes_the_older_without_using_it(db: Session, user: User) -> None:
    first = issue(db, user, email_tokens.RESET)
    second = issue(db, user, email_tokens.RESET)
    with pytest.raises(email_tokens.TokenError, match="newer email") as refused:
        email_tokens.use(db, email_tokens.RESET, first.token)
    assert not isinstance(refused.value, email_tokens.TokenUsed)  # never opened, not "used"
    email_tokens.use(db, email_tokens.RESET, second.token)


def test_a_browser_bound_token_opens_only_in_that_browser(db: Session, user: User) -> None:
    issued = issue(db, user, email_tokens.SIGN_IN, browser="the asking browser")
    for other in (None, "", "another browser"):
        with pytest.raises(email_tokens.TokenError, match="same browser"):
            email_tokens.use(db, email_tokens.SIGN_IN, issued.token, browser=other)
    used = email_tokens.use(db, email_tokens.SIGN_IN, issued.token, browser="the asking browser")
    assert used.user.id == user.id


@pytest.mark.parametrize("token", ["", "x" * (email_tokens.TOKEN_MAX + 1), "not-a-token"])
def test_an_empty_overlong_or_unknown_token_is_refused(db: Session, token: str) -> None:
    with pytest.raises(email_tokens.TokenError, match="not valid"):
        email_tokens.use(db, email_tokens.VERIFY, token)


def test_a_code_works_once_and_only_the_newest(db: Session, user: User) -> None:
    older = issue(db, user, email_tokens.VERIFY, with_code=True)
    newer = issue(db, user, email_tokens.VERIFY, with_code=True)
    assert older.code and newer.code
    if older.code != newer.code:
        with pytest.raises(email_tokens.TokenError, match="wrong"):
            email_tokens.use_code(db, user, email_tokens.VERIFY, older.code)
    db.commit()
    assert email_tokens.use_code(db, user, email_tokens.VERIFY, newer.code).user.id == user.id
    db.commit()
    with pytest.raises(email_tokens.TokenError, match="expired or was used"):
        email_tokens.use_code(db, user, email_tokens.VERIFY, newer.code)
    with pytest.raises(email_tokens.TokenUsed):  # the link of the same mail is spent with it
        email_tokens.use(db, email_tokens.VERIFY, newer.token)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_code_is_spent_after_five_wrong_tries(db: Session, user: User) -> None:
    issued = issue(db, user, email_tokens.VERIFY, with_code=True)
    assert issued.code
    messages = []
    for _ in range(email_tokens.CODE_TRIES):
        with pytest.raises(email_tokens.TokenError) as refused:
            email_tokens.use_code(db, user, email_tokens.VERIFY, _wrong(issued.code))
        db.commit()
        messages.append(str(refused.value))
    assert ["last try" in m for m in messages] == [False] * 4 + [True]
    with pytest.raises(email_tokens.TokenError, match="expired or was used"):
        email_tokens.use_code(db, user, email_tokens.VERIFY, issued.code)


# -- two requests at once: a second session acts between the first one's read and its write


def _meanwhile(
    monkeypatch: pytest.MonkeyPatch, app: Flask, action: Callable[[Session], object]
) -> None:
    """The first `_check` (the first request, row read) lets another session run `action`
    and commit before going on."""
    check, done = email_tokens._check, list[bool]()

    def interleaved(*args: object, **kw: object) -> User:
        if not done:
            done.append(True)
            other = app.extensions["db.sessionmaker"]()
            try:
                with contextlib.suppress(email_tokens.TokenError):  # a wrong code, for one
                    action(other)
                other.commit()
            finally:
                other.close()
        return check(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(email_tokens, "_check", interleaved)


def test_two_requests_at_once_use_a_link_once(
    monkeypatch: pytest.MonkeyPatch, app: Flask, db: Session, user: User
) -> None:
    issued = issue(db, user, email_tokens.SIGN_IN)
    _meanwhile(monkeypatch, app, lambda s: email_tokens.use(s, email_tokens.SIGN_IN, issued.token))
    with pytest.raises(email_tokens.TokenUsed):
        email_tokens.use(db, email_tokens.SIGN_IN, issued.token)


def test_wrong_codes_at_once_are_all_counted(
    monkeypatch: pytest.MonkeyPatch, app: Flask, db: Session, user: User
) -> None:
    issued = issue(db, user, email_tokens.VERIFY, with_code=True)
    assert issued.code
    wrong = _wrong(issued.code)

    def other_try(session: Session) -> None:
        mine = session.get(User, user.id)
        assert mine is not None
        email_tokens.use_code(session, mine, email_tokens.VERIFY, wrong)

    _meanwhile(monkeypatch, app, other_try)
    with pytest.raises(email_tokens.TokenError, match="wrong"):
        email_tokens.use_code(db, user, email_tokens.VERIFY, wrong)
    db.commit()
    db.expire_all()
    assert db.scalars(select(EmailToken.code_attempts)).one() == 2


def test_a_token_for_nobody_stores_nothing_and_opens_nothing(db: Session, user: User) -> None:
    """An address without an account: the same statements as for `user`, no row."""
    live = issue(db, user, email_tokens.SIGN_IN)
    nobody = issue(db, None, email_tokens.SIGN_IN, with_code=True, browser="b")
    assert nobody.token and nobody.code and nobody.minutes == live.minutes
    assert db.scalars(select(EmailToken.user_id)).all() == [user.id]
    with pytest.raises(email_tokens.TokenError, match="not valid"):
        email_tokens.use(db, email_tokens.SIGN_IN, nobody.token, browser="b")
    email_tokens.use(db, email_tokens.SIGN_IN, live.token)  # nobody's did not supersede it
