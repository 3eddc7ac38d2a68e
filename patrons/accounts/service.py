"""Accounts: the address check, profile, password and address changes, export, deletion.

Every emailed link is an `email_tokens` token (hashed, single-use, short-lived, bound to the
security stamp: docs/security.md). A password change and an address change turn the stamp
over, so no link mailed before them works after. The pages a link leads to (`confirm_url`,
absolute, ending where the token goes) are passed in by the views: nothing here reads the
app's configuration or builds a URL. Password resets and sign-in links are in recovery.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from patrons import mail
from patrons.accounts import audit, email_tokens, sessions
from patrons.accounts.auth import find_user_by_email, normalise_email
from patrons.accounts.passwords import hash_password, verify_password
from patrons.core import clock
from patrons.models import OutboundEmail, Payment, Pledge, Topic, User, UserSession, Vote


@dataclass(frozen=True)
class Verified:
    """A confirmed address. `may_sign_in`: the link's first use, and nothing (sign-out,
    password change or reset, address change) happened to the account since it was sent."""

    user: User
    may_sign_in: bool
    next_url: str | None


def verify_email(db: Session, token: str) -> Verified:
    """Confirm the address a verification link was sent to (once: TokenUsed after that).

    A link from before a sign-out or password change still confirms the address, which has
    not changed (an address change confirms the new one itself), but signs nobody in."""
    used = email_tokens.use(db, email_tokens.VERIFY, token, any_stamp=True)
    user = used.user
    audit.record(db, audit.TOKEN_USED, user=user, detail={"purpose": email_tokens.VERIFY})
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
        audit.record(db, audit.EMAIL_VERIFIED, user=user)
    next_url = used.data.get("next")
    return Verified(user, used.fresh, next_url if isinstance(next_url, str) else None)


def update_profile(user: User, display_name: str) -> None:
    user.display_name = " ".join(display_name.split())[:80] or None


def change_password(
    db: Session, user: User, current: str, new: str, keep_token: str | None
) -> bool:
    """Set a new password if `current` is right; every other session of the user ends, and
    every emailed link sent before dies (the stamp turns over)."""
    if not verify_password(user.password_hash, current):
        return False
    user.password_hash = hash_password(new)
    email_tokens.rotate_stamp(user)
    sessions.end_other_sessions(db, user, keep_token)
    audit.record(db, audit.PASSWORD_CHANGED, user=user)
    mail.queue_message(db, user.email, "password_changed", _("Your password was changed"))
    return True


def export_data(db: Session, user: User) -> dict[str, object]:
    """Everything stored about `user`, as JSON-ready data (the "export my data" download)."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    pledges = db.scalars(select(Pledge).where(Pledge.user_id == user.id)).all()
    payments = db.scalars(
        select(Payment).where(Payment.pledge_id.in_([p.id for p in pledges]))
    ).all()
    user_sessions = db.scalars(select(UserSession).where(UserSession.user_id == user.id)).all()
    emails = db.scalars(select(OutboundEmail).where(OutboundEmail.to_address == user.email)).all()
    return {
        "exported_at": when(clock.now()),
        "account": {
            "email": user.email,
            "display_name": user.display_name,
            "email_verified_at": when(user.email_verified_at),
            "created_at": when(user.created_at),
            "is_staff": user.is_staff,
        },
        "sessions": [
            {
                "created_at": when(s.created_at),
                "last_seen_at": when(s.last_seen_at),
                "user_agent": s.user_agent,
                "ended_at": when(s.revoked_at),
            }
            for s in user_sessions
        ],  # fmt: skip
        "pledges": [
            {
                "amount": p.amount,
                "currency": p.currency,
                "status": p.status,
                "created_at": when(p.created_at),
            }
            for p in pledges
        ],  # fmt: skip
        "payments": [
            {
                "amount": p.amount,
                "currency": p.currency,
                "status": p.status,
                "paid_at": when(p.paid_at),
            }
            for p in payments
        ],  # fmt: skip
        "emails": [
            {
                "subject": e.subject,
                "kind": e.kind,
                "created_at": when(e.created_at),
                "status": e.status,
            }
            for e in emails
        ],  # fmt: skip
        "votes": [
            {"topic": title, "voted_at": when(created_at)}
            for title, created_at in db.execute(
                select(Topic.title, Vote.created_at)
                .join(Topic, Vote.topic_id == Topic.id)
                .where(Vote.user_id == user.id)
                .order_by(Vote.created_at)
            )
        ],
        "proposals": [
            {
                "title": t.title,
                "description": t.description,
                "status": t.status,
                "created_at": when(t.created_at),
            }
            for t in db.scalars(select(Topic).where(Topic.proposed_by_id == user.id))
        ],
    }


def delete_account(
    db: Session, user: User, password: str, before_erase: Callable[[], None] | None = None
) -> bool:
    """Erase the account if `password` is right.

    `before_erase` runs once the password is checked and may refuse by raising (the open
    pledge is stopped at Stripe there). Sessions go with the account; pledges and payments
    stay for the books, without identity (their user_id becomes NULL); mail queued for or
    sent to the address is deleted.
    """
    if not verify_password(user.password_hash, password):
        return False
    if before_erase is not None:
        before_erase()
    db.execute(delete(OutboundEmail).where(OutboundEmail.to_address == user.email))
    db.execute(update(Pledge).where(Pledge.user_id == user.id).values(user_id=None))
    db.delete(user)
    return True


MEMBERS_PAGE = 200


def find_members(db: Session, text: str = "") -> list[User]:
    """Members whose email or name contains `text` (all when empty), newest first."""
    query = select(User).order_by(User.created_at.desc(), User.id.desc()).limit(MEMBERS_PAGE)
    if text:
        pattern = (
            "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(
            or_(
                func.lower(User.email).like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
            )
        )
    return list(db.scalars(query))


class EmailTaken(ValueError):
    """The new address already belongs to an account."""


def request_email_change(
    db: Session,
    user: User,
    password: str,
    new_email: str,
    confirm_url: str,
    secret_key: str | None = None,  # unused since links are stored tokens; kept for callers
) -> bool:
    """Mail a single-use confirmation link to the new address and a note to the old one.

    Nothing changes until the link is used; the stamp turns over at once (links sent
    before the request die). Returns False when the password is wrong. An address already
    in use gets no link (and the page does not say so).
    """
    if not verify_password(user.password_hash, password):
        return False
    email_tokens.rotate_stamp(user)
    new_email = normalise_email(new_email)
    if new_email == user.email or find_user_by_email(db, new_email) is not None:
        return True
    issued = email_tokens.issue(db, user, email_tokens.EMAIL_CHANGE, data={"new": new_email})
    mail.queue_message(
        db, new_email, "confirm_new_email", _("Confirm your new email address"),
        link=confirm_url + issued.token, hours=issued.minutes // 60,
    )  # fmt: skip
    mail.queue_message(
        db, user.email, "email_change_requested", _("Your email address is about to change"),
        new_email=new_email,
    )  # fmt: skip
    return True


def confirm_email_change(db: Session, token: str, secret_key: str | None = None) -> User:
    """Switch the account to the new address in `token` (once); the address counts as
    confirmed and the stamp turns over. The caller rolls back on EmailTaken."""
    used = email_tokens.use(db, email_tokens.EMAIL_CHANGE, token)
    user, new_email = used.user, used.data.get("new")
    if not isinstance(new_email, str):
        raise email_tokens.TokenError(_("That link is no longer valid."))
    if find_user_by_email(db, new_email) is not None:
        raise EmailTaken(_("That address already belongs to another account."))
    audit.record(db, audit.TOKEN_USED, user=user, detail={"purpose": email_tokens.EMAIL_CHANGE})
    user.email = new_email
    user.email_verified_at = clock.now()
    email_tokens.rotate_stamp(user)
    audit.record(db, audit.EMAIL_CHANGED, user=user)
    return user
