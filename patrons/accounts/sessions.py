"""Server-side sign-in sessions: the cookie holds a random token, the database decides.

Flask's session cookie is signed, not revocable: a copied cookie would outlive sign-out.
So each sign-in gets a row here, and a request is signed in only while its row is live:
sign-out ends the row, a password change ends every other row, for real.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, select, update
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import User, UserSession

REMEMBER_FOR = timedelta(days=30)
BROWSER_SESSION_FOR = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is refreshed at most this often


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Session, user: User, remember: bool, user_agent: str = "") -> str:
    """A new sign-in for `user`; returns the token to keep in the session cookie."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    db.add(
        UserSession(
            user_id=user.id,
            token_hash=_hash(token),
            remember=remember,
            created_at=now,
            last_seen_at=now,
            expires_at=now + (REMEMBER_FOR if remember else BROWSER_SESSION_FOR),
            user_agent=user_agent[:200],
        )
    )
    return token


# session_user's statement, built once (the token's hash and now bound per call): built per
# request, the expression and its cache key cost more Python than the query itself.
SESSION_USER_STATEMENT = (
    select(UserSession, User)
    .join(User, User.id == UserSession.user_id)
    .where(
        UserSession.token_hash
        == bindparam("token_hash", type_=UserSession.__table__.c.token_hash.type),
        UserSession.revoked_at.is_(None),
        UserSession.expires_at > bindparam("now", type_=UserSession.__table__.c.expires_at.type),
    )
)


def session_user(db: Session, token: str | None, now: datetime | None = None) -> User | None:
    """The user a live session token belongs to, or None."""
    if not token or len(token) > 100:
        return None
    now = now or clock.now()
    row = db.execute(SESSION_USER_STATEMENT, {"token_hash": _hash(token), "now": now}).first()
    if row is None:
        return None
    user_session, user = row
    if now - user_session.last_seen_at > TOUCH_EVERY:
        user_session.last_seen_at = now
    return user


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(
            update(UserSession)
            .where(UserSession.token_hash == _hash(token), UserSession.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )


def end_other_sessions(db: Session, user: User, keep_token: str | None = None) -> int:
    """End every live session of `user` except `keep_token`'s; returns how many ended."""
    query = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if keep_token:
        query = query.where(UserSession.token_hash != _hash(keep_token))
    ended = cast(CursorResult[Any], db.execute(query.values(revoked_at=clock.now())))
    return ended.rowcount or 0


def current(db: Session, token: str | None) -> UserSession | None:
    """The live session row of `token` (this browser's sign-in), or None."""
    if not token or len(token) > 100:
        return None
    return db.scalar(
        select(UserSession).where(
            UserSession.token_hash == _hash(token),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > clock.now(),
        )
    )


def mark_reauthenticated(db: Session, token: str | None) -> None:
    """This session just gave its second factor (or, without two-factor, the password)
    again: staff actions on money or people may run for a while (second_factor.py)."""
    row = current(db, token)
    if row is not None:
        row.two_factor_at = clock.now()
