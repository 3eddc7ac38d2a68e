"""Flask-Login wiring and the sign-in service."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.accounts import sessions
from patrons.accounts.passwords import hash_password, needs_rehash, verify_password
from patrons.core.extensions import login_manager
from patrons.models import User


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please sign in to see that page.")
    login_manager.localize_callback = str  # the lazy message, translated when flashed
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)


def load_user(user_id: str) -> User | None:
    """The signed-in user, only while the session's server-side row is live (sessions.py)."""
    from flask import session

    from patrons.core.db import session as db

    user = sessions.session_user(db, session.get(SESSION_TOKEN_KEY))
    if user is None or str(user.id) != user_id:
        return None
    if db.dirty:
        db.commit()  # last_seen_at, refreshed every few minutes
    return user


SESSION_TOKEN_KEY = "sid"  # noqa: S105  (a session key name, not a secret)


def sign_in(db: Session, user: User, remember: bool, user_agent: str = "") -> None:
    """Start a server-side session and a fresh cookie session for `user`; the view commits."""
    from flask import session
    from flask_login import login_user

    token = sessions.start_session(db, user, remember, user_agent)
    session.clear()  # a fresh session at sign-in: nothing from before survives (fixation)
    session[SESSION_TOKEN_KEY] = token
    session.permanent = remember
    login_user(user, remember=False)  # "remember" is the permanent, revocable session above


def sign_out(db: Session) -> None:
    """End this session on the server and in the browser; the view commits."""
    from flask import session
    from flask_login import current_user, logout_user

    from patrons.accounts.email_tokens import rotate_stamp

    if current_user.is_authenticated:
        rotate_stamp(current_user)  # no emailed link sent before the sign-out works after it
    sessions.end_session(db, session.get(SESSION_TOKEN_KEY))
    logout_user()
    session.clear()


def normalise_email(email: str) -> str:
    """An address as it is stored and compared: NFKC, case-folded (docs/security.md), so the
    composed and decomposed spellings of one address (NFC "é", NFD "e" + accent), its
    full-width letters or its capitals are one account. (Case-folding can undo NFKC, as
    Unicode's NFKC_Casefold notes, hence the second pass.)"""
    folded = unicodedata.normalize("NFKC", email.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def valid_email(email: str) -> str:
    """The normalised address, or ValueError with the reason (the same rule as the forms)."""
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return normalise_email(checked.normalized)


def find_user_by_email(db: Session, email: str) -> User | None:
    """Stored addresses are normalised (normalise_email): an exact match, on the unique index."""
    return db.scalar(select(User).where(User.email == normalise_email(email)))


def password_matches(user: User | None, password: str) -> bool:
    """Whether `password` is `user`'s, rehashing it if the cost changed; the same work (a
    dummy hash) when there is no such user. The caller commits."""
    if not verify_password(user.password_hash if user else None, password) or user is None:
        return False
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return True


def create_or_promote_staff(db: Session, email: str, password: str | None) -> tuple[User, bool]:
    """Create a staff account, or make an existing account staff. Returns (user, created)."""
    user = find_user_by_email(db, email)
    if user is not None:
        user.is_staff = True
        if password:
            user.password_hash = hash_password(password)
            sessions.end_other_sessions(db, user)
        return user, False
    if not password:
        raise ValueError("a new staff account needs a password")
    user = User(email=normalise_email(email), password_hash=hash_password(password), is_staff=True)
    db.add(user)
    return user, True
