"""What the worker deletes or blanks once it has served its time, and what it keeps.

- Sessions: deleted once expired, or 30 days after they were ended (signed out elsewhere).
- Emailed tokens and codes: deleted a day after they expired, used or not (a used one is kept
  until then so that its link still says "already used").
- Mail: a sent message's body (and a failed one's) is blanked after MAIL_KEEP_DAYS (it holds
  links and names); the row stays, with its address, subject, kind and dates.
- Stripe events: an applied or ignored event is deleted after STRIPE_EVENTS_KEEP_DAYS (at
  least 30). Its id is the inbox's idempotency key: Stripe redelivers an event for up to three
  days and staff may resend one from the dashboard for 30, so the row outlives both. A pending
  or failed event is never deleted (staff retry the failed ones). A very old event redelivered
  after its row is gone would be applied again, which re-reads the objects from Stripe and
  writes what they are now, as `sync-stripe` does.
- Audit events after AUDIT_KEEP_DAYS (accounts/audit_retention.py), the beacon's visitors
  before yesterday (articles/counters.py), the heartbeats of workers gone for a week, and
  Stripe-call leases a day past their expiry.

Each purge is one statement committed on its own: one that fails leaves the others done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, or_, update
from sqlalchemy.orm import Session

from patrons.accounts import audit_retention
from patrons.articles import counters
from patrons.core.config import Settings
from patrons.models import (
    EmailToken,
    OutboundEmail,
    StripeCallLease,
    StripeEvent,
    UserSession,
    WorkerHeartbeat,
)
from patrons.models.pledges import EventState

ENDED_SESSIONS_KEEP = timedelta(days=30)
TOKENS_KEEP_AFTER_EXPIRY = timedelta(days=1)
HEARTBEATS_KEEP = timedelta(days=7)
LEASES_KEEP_AFTER_EXPIRY = timedelta(days=1)
FINISHED_EVENTS = (EventState.APPLIED, EventState.IGNORED)


def _count(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount or 0


def sessions(db: Session, settings: Settings, now: datetime) -> int:
    return _count(db.execute(delete(UserSession).where(or_(
        UserSession.expires_at < now, UserSession.revoked_at < now - ENDED_SESSIONS_KEEP
    ))))  # fmt: skip


def email_tokens(db: Session, settings: Settings, now: datetime) -> int:
    return _count(db.execute(
        delete(EmailToken).where(EmailToken.expires_at < now - TOKENS_KEEP_AFTER_EXPIRY)
    ))  # fmt: skip


def mail_bodies(db: Session, settings: Settings, now: datetime) -> int:
    before = now - timedelta(days=settings.mail_keep_days)
    done = or_(
        and_(OutboundEmail.status == "sent", OutboundEmail.sent_at < before),
        and_(OutboundEmail.status == "failed", OutboundEmail.created_at < before),
    )
    return _count(db.execute(
        update(OutboundEmail)
        .where(done, or_(OutboundEmail.text_body != "", OutboundEmail.html_body != ""))
        .values(text_body="", html_body="")
        .execution_options(synchronize_session=False)
    ))  # fmt: skip


def stripe_events(db: Session, settings: Settings, now: datetime) -> int:
    before = now - timedelta(days=settings.stripe_events_keep_days)
    return _count(db.execute(delete(StripeEvent).where(
        StripeEvent.state.in_([str(s) for s in FINISHED_EVENTS]),
        StripeEvent.received_at < before,
        or_(StripeEvent.claimed_until.is_(None), StripeEvent.claimed_until < now),
    )))  # fmt: skip


def audit_events(db: Session, settings: Settings, now: datetime) -> int:
    return audit_retention.prune(db, settings.audit_keep_days, now)


def beacon_visitors(db: Session, settings: Settings, now: datetime) -> int:
    return counters.prune_seen(db, now.date())


def heartbeats(db: Session, settings: Settings, now: datetime) -> int:
    return _count(db.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen < now - HEARTBEATS_KEEP)
    ))  # fmt: skip


def call_leases(db: Session, settings: Settings, now: datetime) -> int:
    return _count(db.execute(
        delete(StripeCallLease).where(StripeCallLease.expires_at < now - LEASES_KEEP_AFTER_EXPIRY)
    ))  # fmt: skip


PURGES: dict[str, Callable[[Session, Settings, datetime], int]] = {
    "sessions": sessions,
    "email tokens": email_tokens,
    "mail bodies": mail_bodies,
    "stripe events": stripe_events,
    "audit events": audit_events,
    "beacon visitors": beacon_visitors,
    "worker heartbeats": heartbeats,
    "stripe call leases": call_leases,
}


def purge_all(db: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Run every purge, each committed on its own; how many rows each touched."""
    done: dict[str, int] = {}
    for name, purge in PURGES.items():
        try:
            done[name] = purge(db, settings, now)
            db.commit()
        except BaseException:
            db.rollback()
            raise
    return done
