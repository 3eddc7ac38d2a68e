"""Sign-up: a new, unconfirmed account and the mail that confirms its address."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons import mail
from patrons.accounts import tokens
from patrons.accounts.auth import find_user_by_email, normalise_email
from patrons.accounts.passwords import hash_password
from patrons.core import clock
from patrons.models import User


@dataclass(frozen=True)
class SignupResult:
    """What happened, for tests and logs; the page says the same thing either way."""

    user: User
    created: bool


def sign_up(
    db: Session, email: str, password: str, display_name: str, verify_url: str, secret_key: str
) -> SignupResult:
    """Create an unverified member and mail a confirmation link.

    An address that already has an account gets a note instead (sign in, or reset the
    password), so the page cannot tell anyone whether an address is registered.
    """
    email = normalise_email(email)
    existing = find_user_by_email(db, email)
    if existing is not None:
        mail.queue_message(
            db, existing.email, "account_exists", _("Someone tried to sign up with your address")
        )
        return SignupResult(existing, created=False)
    user = User(
        email=email,
        password_hash=hash_password(password),
        display_name=" ".join(display_name.split())[:80] or None,
        created_at=clock.now(),
    )
    db.add(user)
    db.flush()
    queue_verification(db, user, verify_url, secret_key)
    return SignupResult(user, created=True)


def queue_verification(db: Session, user: User, verify_url: str, secret_key: str) -> None:
    """Mail `user` a link (verify_url + token) confirming their current address."""
    token = tokens.make_token(secret_key, "verify", uid=user.id, email=user.email)
    mail.queue_message(
        db,
        user.email,
        "verify_email",
        _("Confirm your email address"),
        link=verify_url + token,
        hours=tokens.VERIFY_HOURS,
    )
