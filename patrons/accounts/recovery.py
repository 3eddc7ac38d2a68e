"""Ways back in by mail: the password reset and the sign-in link (docs/security.md).

Both answer the same whatever the address: a known address gets its link, an unknown one
a note that there is no account there (with the way to make one). Each branch issues a
token (for an unknown address `email_tokens.issue` runs the same statements, which store
nothing) and queues exactly one mail, so the page, its timing and the queue tell nobody
whether an address has an account (bench/enumeration.py measures it). Links are
`email_tokens` tokens: single-use, short-lived, bound to the security stamp; a sign-in link
also to the browser that asked for it (`browser`).
The pages a link leads to (absolute, from SITE_URL, ending where the token goes) are
passed in by the views.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons import mail
from patrons.accounts import audit, email_tokens, sessions
from patrons.accounts.auth import find_user_by_email, normalise_email
from patrons.accounts.passwords import hash_password
from patrons.core import clock
from patrons.models import User

RESET_HOURS = int(email_tokens.LIFETIMES[email_tokens.RESET].total_seconds() // 3600)
SIGN_IN_MINUTES = int(email_tokens.LIFETIMES[email_tokens.SIGN_IN].total_seconds() // 60)


def _no_account(db: Session, email: str, asked: str, signup_url: str) -> None:
    """The one mail an unknown address gets: someone asked for `asked` ("reset" or
    "sign-in"), there is no account, here is how to make one."""
    mail.queue_message(
        db, normalise_email(email), "no_account", _("There is no account with this address"),
        asked=asked, signup_url=signup_url,
    )  # fmt: skip


def _proved_address(db: Session, user: User) -> None:
    """A link opened from the mail proves the address, as verification would."""
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
        audit.record(db, audit.EMAIL_VERIFIED, user=user)


def request_password_reset(db: Session, email: str, reset_url: str, signup_url: str) -> None:
    """Queue one mail: a reset link (one hour, once) or, for an unknown address, the note."""
    user = find_user_by_email(db, email)
    issued = email_tokens.issue(db, user, email_tokens.RESET)
    if user is None:
        _no_account(db, email, "reset", signup_url)
        return
    mail.queue_message(
        db, user.email, "reset_password", _("Set a new password"),
        link=reset_url + issued.token, hours=issued.minutes // 60,
    )  # fmt: skip


def reset_password(db: Session, token: str, new_password: str) -> User:
    """Set the password from a reset link (once). The stamp turns over, so every session
    ends and every other emailed link dies; the caller signs the reader in."""
    user = email_tokens.use(db, email_tokens.RESET, token).user
    audit.record(db, audit.TOKEN_USED, user=user, detail={"purpose": email_tokens.RESET})
    user.password_hash = hash_password(new_password)
    _proved_address(db, user)
    email_tokens.rotate_stamp(user)
    sessions.end_other_sessions(db, user)
    audit.record(db, audit.PASSWORD_RESET, user=user)
    mail.queue_message(db, user.email, "password_changed", _("Your password was changed"))
    return user


def request_sign_in_link(
    db: Session,
    email: str,
    open_url: str,
    signup_url: str,
    *,
    browser: str | None,
    next_url: str | None = None,
) -> None:
    """Queue one mail: a sign-in link (15 minutes, once, for `browser` when given) or, for
    an unknown address, the note. `next_url` is where the link leads after signing in."""
    user = find_user_by_email(db, email)
    data = {"next": next_url} if next_url else None
    issued = email_tokens.issue(db, user, email_tokens.SIGN_IN, data=data, browser=browser)
    if user is None:
        _no_account(db, email, "sign-in", signup_url)
        return
    mail.queue_message(
        db, user.email, "sign_in_link", _("Your sign-in link"),
        link=open_url + issued.token, minutes=issued.minutes,
    )  # fmt: skip


def use_sign_in_link(db: Session, token: str, browser: str | None) -> email_tokens.Used:
    """Spend a sign-in link (TokenError if it cannot be used); the caller signs in."""
    used = email_tokens.use(db, email_tokens.SIGN_IN, token, browser=browser)
    audit.record(db, audit.TOKEN_USED, user=used.user, detail={"purpose": email_tokens.SIGN_IN})
    _proved_address(db, used.user)
    return used
