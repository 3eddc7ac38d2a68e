"""Who counts as an active patron: one definition, used by the banner, voting and reports."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from patrons.models import Payment, Pledge

GRACE_DAYS = 7
ENTITLED = frozenset({"active", "trialing"})


def is_active_patron(
    status: str,
    has_paid_invoice: bool,
    current_period_end: datetime | None,
    now: datetime,
    grace_days: int = GRACE_DAYS,
) -> bool:
    """`active`/`trialing` with a paid invoice, or `past_due` within the grace period."""
    if not has_paid_invoice:
        return False
    if status in ENTITLED:
        return True
    if status == "past_due" and current_period_end is not None:
        return now <= current_period_end + timedelta(days=grace_days)
    return False


def user_is_active_patron(
    db: Session, user_id: int, now: datetime, grace_days: int = GRACE_DAYS
) -> bool:
    """Whether any pledge of the reader makes them an active patron now (`PLEDGE_GRACE_DAYS`
    is passed in by callers from the settings)."""
    paid = exists().where(Payment.pledge_id == Pledge.id, Payment.status == "paid")
    rows = db.execute(
        select(Pledge.status, Pledge.current_period_end, paid.label("paid")).where(
            Pledge.user_id == user_id
        )
    )
    return any(
        is_active_patron(r.status, r.paid, r.current_period_end, now, grace_days) for r in rows
    )
