"""Who is an active patron, and which payment gives them their rights: the one definition,
used by the banner, voting, proposals, the results pages and the reports (docs/architecture.md,
"One truth for staff").

A pledge gives a patron's rights while
- its subscription is `active` or `trialing`, or `past_due` for at most `PLEDGE_GRACE_DAYS`
  counted from the first refused attempt of the unpaid invoice (not from the period's end);
- and the latest payment it took is one that counts: paid and not taken back. A full refund
  or a lost dispute ends the rights that payment gave; an open dispute suspends them until it
  is won; a partial refund keeps them (COUNTING_PAYMENT_STATUSES).

Each vote remembers the payment that gave the right to cast it (`Vote.payment_id`), and counts
only while that payment counts (`payment_counts`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from patrons.models import Payment, Pledge
from patrons.models.pledges import (
    COUNTING_PAYMENT_STATUSES,
    ENTITLED_STATUSES,
    SETTLED_PAYMENT_STATUSES,
    PaymentStatus,
    PledgeStatus,
)

GRACE_DAYS = 7


def _latest_settled(column: Any) -> Any:
    """The given column of the pledge's latest paid payment (a correlated subquery)."""
    return (
        select(column)
        .where(Payment.pledge_id == Pledge.id, Payment.status.in_(SETTLED_PAYMENT_STATUSES))
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
        .limit(1)
        .correlate(Pledge)
        .scalar_subquery()
    )


def first_failure() -> Any:
    """When the pledge's oldest refused, still unpaid invoice was first attempted."""
    return (
        select(func.min(func.coalesce(Payment.first_failed_at, Payment.created_at)))
        .where(Payment.pledge_id == Pledge.id, Payment.status == PaymentStatus.FAILED)
        .correlate(Pledge)
        .scalar_subquery()
    )


def entitled(now: datetime, grace_days: int = GRACE_DAYS) -> ColumnElement[bool]:
    """The condition on a `Pledge` row (in a query over pledges) that it gives rights now."""
    return _entitled_after(now - timedelta(days=grace_days))


def _entitled_after(grace_cutoff: Any) -> ColumnElement[bool]:
    """`entitled`, a `past_due` pledge keeping its rights while its first refused attempt is
    after `grace_cutoff` (now - grace days: a value, or a bound parameter)."""
    in_grace = and_(
        Pledge.status == PledgeStatus.PAST_DUE,
        first_failure() > grace_cutoff,
    )
    return and_(
        or_(Pledge.status.in_(ENTITLED_STATUSES), in_grace),
        _latest_settled(Payment.status).in_(COUNTING_PAYMENT_STATUSES),
    )


def active_patron_ids(now: datetime, grace_days: int = GRACE_DAYS) -> Select[Any]:
    """The user ids of every active patron now (for counts: `select(func.count()).select_from
    (active_patron_ids(...).subquery())`)."""
    return (
        select(Pledge.user_id)
        .where(Pledge.user_id.is_not(None), entitled(now, grace_days))
        .distinct()
    )


def payment_counts(payment_id: Any) -> ColumnElement[bool]:
    """The payment `payment_id` (a column, e.g. Vote.payment_id) is one whose money came in and
    stayed: the votes cast with it count. A correlated EXISTS on the payment's primary key,
    one index lookup per row: `IN (every counting payment)` made PostgreSQL read all of them,
    over 60 s for one round's counts at 1M payments (bench/reports.py)."""
    return (
        select(Payment.id)
        .where(Payment.id == payment_id, Payment.status.in_(COUNTING_PAYMENT_STATUSES))
        .exists()
    )


def rights_payment(user_id: Any, now: datetime, grace_days: int = GRACE_DAYS) -> Any:
    """`rights_payment_id` as a scalar subquery, to fold into a caller's query (a vote reads it
    with the topic and the round in one statement); `user_id` a value or a column."""
    return _rights_payment(user_id, now - timedelta(days=grace_days))


def _rights_payment(user_id: Any, grace_cutoff: Any) -> Any:
    return (
        select(_latest_settled(Payment.id))
        .select_from(Pledge)
        .where(Pledge.user_id == user_id, _entitled_after(grace_cutoff))
        .limit(1)
        .scalar_subquery()
    )


# `rights_payment_id`'s statement, built once: the reader and the grace cutoff are bound
# parameters, so a call only binds two values. Built per call, the expression cost more Python
# than the query itself (a signed-in article checks it on every request); SQLAlchemy's
# compiled cache hits either way (tests/pledges/test_entitlement.py pins it).
RIGHTS_PAYMENT_STATEMENT = select(
    _rights_payment(
        bindparam("user_id", type_=Pledge.__table__.c.user_id.type),
        bindparam("grace_cutoff", type_=Payment.__table__.c.created_at.type),
    )
)


def rights_payment_id(
    db: Session, user_id: int, now: datetime, grace_days: int = GRACE_DAYS
) -> int | None:
    """The payment that gives the reader a patron's rights now (a vote records it); None if
    they are not an active patron."""
    found = db.execute(
        RIGHTS_PAYMENT_STATEMENT,
        {"user_id": user_id, "grace_cutoff": now - timedelta(days=grace_days)},
    ).scalar()
    return int(found) if found is not None else None


def user_is_active_patron(
    db: Session, user_id: int, now: datetime, grace_days: int = GRACE_DAYS
) -> bool:
    """Whether any pledge of the reader makes them an active patron now (`PLEDGE_GRACE_DAYS`
    is passed in by callers from the settings)."""
    return rights_payment_id(db, user_id, now, grace_days) is not None


def rights_until(db: Session, pledge: Pledge, grace_days: int = GRACE_DAYS) -> datetime | None:
    """For a `past_due` pledge, when its rights end (first refused attempt + grace days), for
    the notice on the pledge page and the failure mail; None for any other pledge."""
    if pledge.status != PledgeStatus.PAST_DUE:
        return None
    started = db.scalar(
        select(func.min(func.coalesce(Payment.first_failed_at, Payment.created_at))).where(
            Payment.pledge_id == pledge.id, Payment.status == PaymentStatus.FAILED
        )
    )
    return started + timedelta(days=grace_days) if started is not None else None
