"""Emailed links and codes that mean one thing once (docs/security.md).

A token is 32 random bytes in the link; the database keeps only its SHA-256, so a copy of
the database opens nothing. Each token is for one purpose, single-use (`used_at`),
short-lived (`LIFETIMES`, stated in the mail), and bound to the account's security stamp
when it was made: a sign-out, a password change or reset, an address change or a
two-factor change turns the stamp over, and every earlier token dies with it. A token may
carry a six-digit code (typed on the page instead of opening the link; five tries) and may
be bound to the browser that asked for it (the sign-in link).

Single use holds under concurrency: a token is spent by one conditional UPDATE (`used_at IS
NULL`), and a code's tries are counted by one too, so two requests at once cannot both use
a link, nor get more than CODE_TRIES guesses between them. A newer token of the same purpose
supersedes the older ones: they expire (the reader is told a newer mail was sent), they are
not "used" (verification would otherwise say "already confirmed" for a link never opened).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy import CursorResult, insert, literal, select, update
from sqlalchemy.orm import Session

from patrons.core import clock, signing
from patrons.models import EmailToken, User

VERIFY = "verify"
RESET = "reset"
EMAIL_CHANGE = "email-change"
SIGN_IN = "sign-in"
LIFETIMES = {
    VERIFY: timedelta(hours=24),
    RESET: timedelta(hours=1),
    EMAIL_CHANGE: timedelta(hours=24),
    SIGN_IN: timedelta(minutes=15),
}
CODE_TRIES = 5
TOKEN_MAX = 100  # longer than any token we make: refused before hashing
NOBODY = 0  # the user id `issue` works for when there is no account: no row has it


class TokenError(ValueError):
    """The link or code is unknown, expired, used, stale or for another browser; the message
    says which, in words for the reader."""


class TokenUsed(TokenError):
    """The link was used already (verification says "already confirmed" for this one)."""


@dataclass(frozen=True)
class Issued:
    token: str  # goes into the link
    code: str | None  # six digits, when asked for
    minutes: int  # how long both last, for the mail to say


@dataclass(frozen=True)
class Used:
    user: User
    data: dict[str, Any]
    fresh: bool = True  # the stamp is the one the token was made with (see `any_stamp`)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _code_hash(user_id: int, purpose: str, code: str) -> str:
    """Keyed: six digits are too few for a plain hash to hide."""
    return signing.keyed_hash(f"{user_id}:{purpose}:{code}".encode())


def _code_matches(row_hash: str, user_id: int, purpose: str, code: str) -> bool:
    """Under SECRET_KEY or one of SECRET_KEY_FALLBACKS (a code mailed before a rotation)."""
    hashes = signing.keyed_hashes(f"{user_id}:{purpose}:{code}".encode())
    return any([hmac.compare_digest(row_hash, h) for h in hashes])  # every one compared


def rotate_stamp(user: User) -> None:
    """Kill every emailed token made so far for `user` (the caller commits)."""
    user.security_stamp = secrets.token_hex(16)


def issue(
    db: Session,
    user: User | None,
    purpose: str,
    *,
    data: dict[str, Any] | None = None,
    with_code: bool = False,
    browser: str | None = None,
) -> Issued:
    """A new token for `user` and `purpose`; earlier live ones of that purpose expire now.

    `user` None (an address without an account) does the same work with the same two
    statements, which then match no row: nothing is stored and the token opens nothing,
    so the answer to an unknown address takes as long as to a known one (recovery.py)."""
    now = clock.now()
    uid = user.id if user is not None else NOBODY
    db.execute(
        update(EmailToken)
        .where(EmailToken.user_id == uid, EmailToken.purpose == purpose,
               EmailToken.used_at.is_(None), EmailToken.expires_at > now)
        .values(expires_at=now)
    )  # fmt: skip
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10**6):06d}" if with_code else None
    lifetime = LIFETIMES[purpose]
    values: dict[str, object] = dict(
        user_id=uid, purpose=purpose, token_hash=_hash(token),
        code_hash=_code_hash(uid, purpose, code) if code else None,
        stamp=user.security_stamp if user is not None else "",
        browser_hash=_hash(browser) if browser else None,
        data=json.dumps(data) if data else None, created_at=now, expires_at=now + lifetime,
    )  # fmt: skip
    columns = EmailToken.__table__.columns
    row = select(*(literal(value, columns[name].type) for name, value in values.items()))
    db.execute(insert(EmailToken).from_select(list(values), row.where(User.id == uid)))
    return Issued(token, code, int(lifetime.total_seconds() // 60))


def _row(db: Session, purpose: str, token: str) -> EmailToken:
    if not token or len(token) > TOKEN_MAX:
        raise TokenError(_("That link is not valid. Copy the whole address from the email."))
    row = db.scalar(
        select(EmailToken).where(
            EmailToken.token_hash == _hash(token), EmailToken.purpose == purpose
        )
    )
    if row is None:
        raise TokenError(_("That link is not valid. Copy the whole address from the email."))
    return row


def _check(db: Session, row: EmailToken, browser: str | None, any_stamp: bool = False) -> User:
    user = db.get(User, row.user_id)
    if row.used_at is not None:
        raise TokenUsed(_("That link has already been used. Ask for a new one if you need it."))
    if user is None or (row.stamp != user.security_stamp and not any_stamp):
        raise TokenError(
            _("That link no longer works: the account changed since. Ask for a new one.")
        )
    if row.expires_at <= clock.now():
        if row.expires_at < row.created_at + LIFETIMES.get(row.purpose, timedelta(0)):
            raise TokenError(_("A newer email was sent since: use the link in the latest one."))
        raise TokenError(_("That link has expired. Ask for a new one."))
    if row.browser_hash is not None and (browser is None or _hash(browser) != row.browser_hash):
        raise TokenError(
            _("Open the link in the same browser where you asked for it, or ask for a new one.")
        )
    return user


def _spend(db: Session, row: EmailToken) -> None:
    """Mark `row` used, unless a concurrent request did first (then TokenUsed)."""
    spent = db.execute(
        update(EmailToken)
        .where(EmailToken.id == row.id, EmailToken.used_at.is_(None))
        .values(used_at=clock.now())
    )
    if cast(CursorResult[Any], spent).rowcount != 1:
        raise TokenUsed(_("That link has already been used. Ask for a new one if you need it."))


def _used(user: User, row: EmailToken) -> Used:
    return Used(user, json.loads(row.data) if row.data else {}, row.stamp == user.security_stamp)


def peek(
    db: Session, purpose: str, token: str, *, browser: str | None = None, any_stamp: bool = False
) -> Used:
    """What a live token names, without using it (a page that shows a form first)."""
    row = _row(db, purpose, token)
    return _used(_check(db, row, browser, any_stamp), row)


def use(
    db: Session, purpose: str, token: str, *, browser: str | None = None, any_stamp: bool = False
) -> Used:
    """Use a live token once; raises TokenError (TokenUsed the second time). Commit after.

    `any_stamp`: accept a token made before the stamp last turned over (`Used.fresh` then
    says so): verification still confirms the address, but signs nobody in."""
    row = _row(db, purpose, token)
    user = _check(db, row, browser, any_stamp)
    _spend(db, row)
    return _used(user, row)


def use_code(db: Session, user: User, purpose: str, code: str) -> Used:
    """Use the newest live token of `user` for `purpose` by its six-digit code.

    Every try counts (one UPDATE each, so parallel guesses count too); after CODE_TRIES
    the token is spent and a new mail is needed. Commit after, right or wrong."""
    now = clock.now()
    row = db.scalar(
        select(EmailToken)
        .where(EmailToken.user_id == user.id, EmailToken.purpose == purpose,
               EmailToken.used_at.is_(None), EmailToken.code_hash.is_not(None),
               EmailToken.expires_at > now)
        .order_by(EmailToken.id.desc())
        .limit(1)
    )  # fmt: skip
    if row is None:
        raise TokenError(_("That code has expired or was used. Ask for a new one."))
    _check(db, row, None)
    counted = db.execute(
        update(EmailToken)
        .where(EmailToken.id == row.id, EmailToken.used_at.is_(None),
               EmailToken.code_attempts < CODE_TRIES)
        .values(code_attempts=EmailToken.code_attempts + 1)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if cast(CursorResult[Any], counted).rowcount != 1:
        raise TokenError(_("That code has expired or was used. Ask for a new one."))
    db.refresh(row)
    code = code.strip()
    if not (len(code) == 6 and code.isascii() and code.isdigit()) or not _code_matches(
        row.code_hash or "", user.id, purpose, code
    ):
        if row.code_attempts >= CODE_TRIES:
            row.used_at = now
            raise TokenError(_("That code is wrong, and it was the last try. Ask for a new one."))
        raise TokenError(_("That code is wrong. Check the email and try again."))
    _spend(db, row)
    return _used(user, row)
