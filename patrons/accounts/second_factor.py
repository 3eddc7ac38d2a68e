"""Two-factor sign-in (TOTP). Whether an account must give a second code before its session
starts, the hand-over to the challenge page, and the fresh second factor staff actions on
money or people ask for (`fresh_second_factor_required`).

The pending sign-in lives in the cookie session (signed, so its account cannot be forged)
with the account's security stamp: a sign-out, password change or reset in between makes
it stale. Its tries are limited by the rate limiter, which keys on the pending sign-in and
on the account (two_factor_views.py), not on a count the cookie could reset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import TypeVar, cast

from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from patrons.accounts import auth, devices, sessions
from patrons.accounts.two_factor_forms import ReauthForm
from patrons.core import clock
from patrons.core.config import Settings
from patrons.core.urls import safe_next
from patrons.models import User

PENDING_KEY = "two_factor_pending"
PENDING_FOR = timedelta(minutes=10)  # from the password to the code
REMEMBER_DEVICE_FOR = timedelta(days=30)  # "don't ask again on this device", at most
FRESH_FOR = timedelta(minutes=15)  # staff actions on money or people ask again after this
KEEP_FIELDS_MAX = 50  # fields of a form carried through the re-authentication
KEEP_VALUE_MAX = 10_000


def required(db: Session, user: User) -> bool:
    """True when `user` has two-factor on (and this device is not remembered for it)."""
    if user.two_factor_enabled_at is None or not user.totp_secret:
        return False
    device = devices.current(db, user)
    until = device.two_factor_until if device is not None else None
    now = clock.now()
    return not (until is not None and now < until <= now + REMEMBER_DEVICE_FOR)


def challenge(
    db: Session, user: User, *, remember: bool, target: str, method: str
) -> ResponseReturnValue:
    """Keep who is half-way in (in the cookie session, nothing signed in yet) and ask for
    the code."""
    session[PENDING_KEY] = {
        "uid": user.id, "remember": remember, "next": target, "method": method,
        "stamp": user.security_stamp, "at": int(clock.now().timestamp()),
    }  # fmt: skip
    return redirect(url_for("accounts.two_factor_challenge"))


@dataclass(frozen=True)
class Pending:
    user: User
    remember: bool
    target: str
    method: str
    current: bool  # False: the account's stamp changed since the password (stale)


def pending(db: Session) -> Pending | None:
    """The sign-in waiting for its second factor in this browser, if any and not expired."""
    data = session.get(PENDING_KEY)
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        return None
    started = data.get("at")
    if (
        not isinstance(started, int)
        or clock.now().timestamp() - started > PENDING_FOR.total_seconds()
    ):
        return None
    user = db.get(User, data["uid"])
    if user is None:
        return None
    return Pending(
        user=user, remember=bool(data.get("remember")),
        target=safe_next(str(data.get("next", "")), url_for("articles.index")),
        method=str(data.get("method", ""))[:20],
        current=data.get("stamp") == user.security_stamp and required_at_all(user),
    )  # fmt: skip


def required_at_all(user: User) -> bool:
    return user.two_factor_enabled_at is not None and bool(user.totp_secret)


def enrolment_needed(user: User) -> bool:
    """A staff member without two-factor where STAFF_TWO_FACTOR_REQUIRED (production's
    default): sent to enrolment before any staff page."""
    settings = cast(Settings, current_app.config["SETTINGS"])
    return settings.staff_two_factor_required and user.is_staff and not required_at_all(user)


def pending_key() -> str:
    """Rate-limit key of one pending sign-in (its account and start), cookie-proof."""
    data = session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return "two-factor:none"
    return f"two-factor:{data.get('uid')}:{data.get('at')}"


def pending_account_key() -> str:
    data = session.get(PENDING_KEY)
    return f"two-factor-account:{data.get('uid') if isinstance(data, dict) else None}"


def drop_pending() -> None:
    session.pop(PENDING_KEY, None)


def remember_device(db: Session, user: User) -> None:
    """This browser skips the second factor for `user` for REMEMBER_DEVICE_FOR."""
    devices.remember(db, user).two_factor_until = clock.now() + REMEMBER_DEVICE_FOR


# -- a fresh second factor for staff actions on money or people --------------------------


def is_fresh(db: Session, user: User) -> bool:
    """Whether this session gave its second factor (without two-factor: its password, or
    the sign-in itself) less than FRESH_FOR ago."""
    row = sessions.current(db, session.get(auth.SESSION_TOKEN_KEY))
    if row is None:
        return False
    proved = row.two_factor_at
    if proved is None and not required_at_all(user):
        proved = row.created_at  # the password (or emailed link) of this very sign-in
    return proved is not None and clock.now() - proved < FRESH_FOR


View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


def fresh_second_factor_required(view: View) -> View:
    """Run the view only when this session's second factor is fresh (is_fresh); else ask
    for it again: a GET is sent to the re-authentication page and comes back to the same
    URL, a POST gets that page at once with its form's fields kept, to send again."""

    @wraps(view)
    def wrapped(*args: object, **kwargs: object) -> ResponseReturnValue:
        from flask_login import current_user

        from patrons.core.db import session as db

        if is_fresh(db, cast(User, current_user)):
            return view(*args, **kwargs)
        return ask_again()

    wrapped.fresh_second_factor = True  # type: ignore[attr-defined]  # found by the tests
    return cast(View, wrapped)


def ask_again() -> ResponseReturnValue:
    here = request.full_path.rstrip("?")
    if request.method == "GET":
        return redirect(url_for("accounts.reauth", next=here))
    kept = kept_fields(request.form.items(multi=True), prefix="")
    form = ReauthForm(formdata=None, next=here)
    return render_template("accounts/reauth.html", form=form, kept=kept, post=True), 401


def kept_fields(items: object, prefix: str) -> list[tuple[str, str]]:
    """A form's fields to carry through the re-authentication (not its CSRF token, which
    is made anew): (name, value) pairs, bounded; `prefix` marks them in the re-auth form."""
    kept = []
    for name, value in cast("list[tuple[str, str]]", items):
        if not name.startswith(prefix) or name[len(prefix) :] in ("", "csrf_token"):
            continue
        kept.append((name[len(prefix) :][:100], value[:KEEP_VALUE_MAX]))
    return kept[:KEEP_FIELDS_MAX]
