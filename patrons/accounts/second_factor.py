"""Two-factor sign-in (TOTP). Whether an account must give a second code before its session
starts, and the hand-over to the challenge page."""

from __future__ import annotations

from flask import redirect, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from patrons.models import User

PENDING_KEY = "two_factor_pending"


def required(db: Session, user: User) -> bool:
    """True when `user` has two-factor on (and this device is not remembered for it)."""
    return user.two_factor_enabled_at is not None


def challenge(
    db: Session, user: User, *, remember: bool, target: str, method: str
) -> ResponseReturnValue:
    """Keep who is half-way in (in the cookie session, nothing signed in yet) and ask for
    the code."""
    session[PENDING_KEY] = {
        "uid": user.id, "remember": remember, "next": target, "method": method,
        "stamp": user.security_stamp,
    }  # fmt: skip
    return redirect(url_for("accounts.two_factor_challenge"))
