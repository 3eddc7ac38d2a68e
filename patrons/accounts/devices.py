"""Known devices: a long-lived random cookie naming a browser the owner signed in from.

The cookie holds a random token; the database keeps its hash and whose device it is. A
known device's sign-ins are not slowed by someone else's guessing (throttle), and it may
skip the second factor for a while (two_factor_until).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, Response, current_app, g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import KnownDevice, User

COOKIE = "patrons_device"  # "__Host-patrons_device" where cookies are Secure (production)
KEEP_FOR = timedelta(days=365)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_name() -> str:
    return ("__Host-" + COOKIE) if current_app.config.get("SESSION_COOKIE_SECURE") else COOKIE


def current(db: Session, user: User) -> KnownDevice | None:
    """This browser's record for `user`, if it is one of their known devices."""
    # (a device made earlier in this request: its cookie is not in the browser yet)
    token = g.get("patrons_device_cookie") or request.cookies.get(cookie_name(), "")
    if not token or len(token) > 100:
        return None
    return db.scalar(
        select(KnownDevice).where(
            KnownDevice.token_hash == _hash(token), KnownDevice.user_id == user.id
        )
    )


def remember(db: Session, user: User) -> KnownDevice:
    """Make this browser a known device of `user` (or touch it); the cookie is set on the
    response (init_app's after_request)."""
    now = clock.now()
    device = current(db, user)
    if device is None:
        token = secrets.token_urlsafe(32)
        device = KnownDevice(
            user_id=user.id, token_hash=_hash(token), created_at=now, last_used_at=now,
            user_agent=request.user_agent.string[:200],
        )  # fmt: skip
        db.add(device)
        g.patrons_device_cookie = token
    else:
        device.last_used_at = now
    return device


def _set_cookie(response: Response) -> Response:
    token = g.pop("patrons_device_cookie", None)
    if token:
        response.set_cookie(
            cookie_name(), token, max_age=int(KEEP_FOR.total_seconds()), httponly=True,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")), samesite="Lax",
        )  # fmt: skip
    return response


def init_app(app: Flask) -> None:
    app.after_request(_set_cookie)
