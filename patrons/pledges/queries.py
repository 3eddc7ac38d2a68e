"""Reading a reader's pledges and payments (nothing here writes or commits)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import Payment, Pledge
from patrons.models.pledges import ENDED_STATUSES, PledgeStatus

# statuses of a subscription whose pledge the reader manages on the pledge page
MANAGEABLE = frozenset({"active", "trialing", "past_due"})
# statuses of a pledge whose first payment never went through: the reader may finish it or
# start over (finishing.py)
UNFINISHED = frozenset({PledgeStatus.PENDING, PledgeStatus.INCOMPLETE})


def open_pledge(db: Session, user_id: int) -> Pledge | None:
    return db.scalar(
        select(Pledge)
        .where(Pledge.user_id == user_id, Pledge.status.not_in(ENDED_STATUSES))
        .execution_options(populate_existing=True)
    )


def current_pledge(db: Session, user_id: int) -> Pledge | None:
    """The open pledge, else the most recent one that had a subscription."""
    return open_pledge(db, user_id) or db.scalar(
        select(Pledge)
        .where(Pledge.user_id == user_id, Pledge.stripe_subscription_id.is_not(None))
        .order_by(Pledge.created_at.desc(), Pledge.id.desc())
        .limit(1)
    )


def payments_of(db: Session, user_id: int) -> Sequence[Payment]:
    """Every payment of every pledge of this reader, newest first."""
    return db.scalars(
        select(Payment)
        .join(Pledge, Payment.pledge_id == Pledge.id)
        .where(Pledge.user_id == user_id)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    ).all()


def receipt(db: Session, user_id: int, payment_id: int) -> tuple[Payment, Pledge] | None:
    """The payment and its pledge, only if the pledge is this reader's (else None: a 404)."""
    row = db.execute(
        select(Payment, Pledge)
        .join(Pledge, Payment.pledge_id == Pledge.id)
        .where(Payment.id == payment_id, Pledge.user_id == user_id)
    ).first()
    return (row[0], row[1]) if row else None


def active_subscription_ids(db: Session) -> Sequence[str | None]:
    """The subscription ids of every active pledge (for the offline renewals)."""
    return db.scalars(
        select(Pledge.stripe_subscription_id).where(
            Pledge.status.in_(("active", "trialing")), Pledge.stripe_subscription_id.is_not(None)
        )
    ).all()
