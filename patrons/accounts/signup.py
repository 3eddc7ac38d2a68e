"""Sign-up, and confirming the address with a six-digit code (docs/security.md).

Nobody learns from sign-up whether an address has an account. Both branches of `sign_up` do
the same work: the password is hashed, one mail is queued (a code and a link to a new
address, a note to the owner of a taken one), and the view answers the same page. The code
page after it knows its account from the cookie session, which the reader can read (it is
signed, not encrypted): so the session holds `seal(id)`, the account's id encrypted under
the app's key, or `seal(0)` for a taken address, for which no code ever works and every
answer is the one a wrong code gets (`check_code`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import mail
from patrons.accounts import audit, email_tokens
from patrons.accounts.auth import find_user_by_email, normalise_email
from patrons.accounts.passwords import hash_password
from patrons.core import clock
from patrons.models import EmailToken, User


@dataclass(frozen=True)
class SignupResult:
    """What happened, for tests and logs; the page says the same thing either way."""

    user: User
    created: bool


def sign_up(
    db: Session, email: str, password: str, display_name: str, verify_url: str, next_url: str
) -> SignupResult:
    """Create an unconfirmed member and mail a code and a link that confirm the address and
    then lead to `next_url`. An address that already has an account gets a note instead
    (sign in, or reset the password), after the same work."""
    email = normalise_email(email)
    password_hash = hash_password(password)  # in both branches: the same time either way
    existing = find_user_by_email(db, email)
    if existing is not None:
        mail.queue_message(
            db, existing.email, "account_exists", _("Someone tried to sign up with your address")
        )
        return SignupResult(existing, created=False)
    user = User(
        email=email,
        password_hash=password_hash,
        display_name=" ".join(display_name.split())[:80] or None,
        created_at=clock.now(),
    )
    db.add(user)
    db.flush()
    send_code(db, user, verify_url, next_url)
    return SignupResult(user, created=True)


def send_code(db: Session, user: User, verify_url: str, next_url: str) -> None:
    """Mail `user` a six-digit code and a link (verify_url + token) that confirm their
    current address and lead on to `next_url`; an earlier code and link stop working."""
    issued = email_tokens.issue(
        db, user, email_tokens.VERIFY, data={"next": next_url}, with_code=True
    )
    mail.queue_message(
        db, user.email, "verify_email", _("Confirm your email address"),
        link=verify_url + issued.token, code=issued.code, hours=issued.minutes // 60,
    )  # fmt: skip


# -- which account the code page is for ------------------------------------------------------

NOBODY = 0  # sealed for a taken address: the page looks the same, no code works
_NONCE = 12


def _pad(nonce: bytes) -> bytes:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"patrons-confirm-code:" + nonce, hashlib.sha256).digest()


def seal(user_id: int) -> str:
    """`user_id` as only this server can read it, a different value each time, always of
    one length (the cookie session is signed, so it cannot be altered either)."""
    nonce = secrets.token_bytes(_NONCE)
    plain = user_id.to_bytes(8, "big")
    body = bytes(a ^ b for a, b in zip(plain, _pad(nonce), strict=False))
    return base64.urlsafe_b64encode(nonce + body).decode()


def unseal(value: object) -> int:
    """The id `seal` hid, or NOBODY for anything else."""
    if not isinstance(value, str) or len(value) > 64:
        return NOBODY
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        return NOBODY
    if len(raw) != _NONCE + 8:
        return NOBODY
    nonce, body = raw[:_NONCE], raw[_NONCE:]
    return int.from_bytes(bytes(a ^ b for a, b in zip(body, _pad(nonce), strict=False)), "big")


# -- the code --------------------------------------------------------------------------------


def check_code(db: Session, account: int, code: str, tries: int) -> email_tokens.Used:
    """Confirm the address of `account` (unsealed from the session) with the code from the
    mail; raises email_tokens.TokenError. The caller commits either way (tries count).

    For NOBODY (a taken address) no code works, and the answers follow `tries`, the wrong
    codes typed on this page before, as a real account's would: wrong, wrong and the last
    try, then spent. The same query runs either way."""
    user = db.get(User, account) if account != NOBODY else None
    if user is None:
        db.scalar(
            select(EmailToken.id).where(
                EmailToken.user_id == NOBODY, EmailToken.purpose == email_tokens.VERIFY,
                EmailToken.used_at.is_(None), EmailToken.expires_at > clock.now(),
            ).limit(1)
        )  # fmt: skip
        if tries + 1 < email_tokens.CODE_TRIES:
            raise email_tokens.TokenError(_("That code is wrong. Check the email and try again."))
        if tries + 1 == email_tokens.CODE_TRIES:
            raise email_tokens.TokenError(
                _("That code is wrong, and it was the last try. Ask for a new one.")
            )
        raise email_tokens.TokenError(_("That code has expired or was used. Ask for a new one."))
    used = email_tokens.use_code(db, user, email_tokens.VERIFY, code)
    audit.record(db, audit.TOKEN_USED, user=user, detail={"purpose": email_tokens.VERIFY})
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
        audit.record(db, audit.EMAIL_VERIFIED, user=user)
    return used


def remind_owner(db: Session, email: str) -> None:
    """A new code asked for after a sign-up with a taken address: its owner hears of the
    attempt again (one mail either way, as at sign-up)."""
    existing = find_user_by_email(db, email)
    if existing is not None:
        mail.queue_message(
            db, existing.email, "account_exists", _("Someone tried to sign up with your address")
        )
