"""The invoices' queries: how many and how much per month and currency (for the rollup and
the unsettled days), and payment health (failures, recoveries, refunds, disputes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patrons.models.pledges import SETTLED_PAYMENT_STATUSES, PaymentStatus
from patrons.models.reports import NOTEWORTHY_PAYMENT
from patrons.reports.queries.sql import dialect, run

# the states a paid invoice can move to, each counted in payment health
AFTER_PAYMENT: tuple[str, ...] = (
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
    PaymentStatus.DISPUTED,
    PaymentStatus.DISPUTE_WON,
    PaymentStatus.DISPUTE_LOST,
)


def invoices_by_month(
    db: Session, start: datetime, end: datetime, by_day: bool = False
) -> Sequence[Any]:
    """(month, currency, invoices, invoiced) of the invoices dated in [start, end), per month
    (`by_day`: per day)."""
    d = dialect(db)
    sql = f"""
    SELECT {d.period("created_at", by_day)} AS month, currency, COUNT(*) AS invoices,
           SUM(amount) AS invoiced
    FROM payments
    WHERE created_at >= :start AND created_at < :end
    GROUP BY 1, currency
    ORDER BY 1, currency
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    return run(db, sql, start=start, end=end)


def _sql_tuple(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


SETTLED_SQL = _sql_tuple(SETTLED_PAYMENT_STATUSES)
# what a settled payment lost for good: refunds and lost disputes, never more than its
# amount (Payment.net's arithmetic; patrons/reports/received.py has the definition)
TAKEN_BACK_SQL = (
    "CASE WHEN amount_refunded + amount_disputed > amount THEN amount "
    "ELSE amount_refunded + amount_disputed END"
)


def noteworthy_payments(
    db: Session, start: datetime, end: datetime, grace_days: int
) -> Sequence[Any]:
    """Per currency, of the invoices dated in [start, end) that failed at least once, are
    unpaid, refunded or disputed (read through their partial index, as a plain paid invoice
    needs no look): failed, recovered within the grace period or later; how many are in
    each state after payment (partially refunded, refunded, disputed, dispute won or lost);
    the amounts refunded and lost to disputes, what settled payments lost for good in all
    (`taken_back`), and the amount not settled (unpaid)."""
    d = dialect(db)
    in_grace = d.plus_days("created_at", "grace")
    failed = "(failure_notified_attempt > 0 OR status = 'failed')"
    states = ",\n".join(
        f"SUM(CASE WHEN status = '{s}' THEN 1 ELSE 0 END) AS {s}" for s in AFTER_PAYMENT
    )
    sql = f"""
    SELECT currency,
           SUM(CASE WHEN {failed} THEN 1 ELSE 0 END) AS failed,
           SUM(CASE WHEN {failed} AND paid_at IS NOT NULL AND paid_at <= {in_grace}
                    THEN 1 ELSE 0 END) AS recovered_in_grace,
           SUM(CASE WHEN {failed} AND paid_at IS NOT NULL AND paid_at > {in_grace}
                    THEN 1 ELSE 0 END) AS recovered_later,
           {states},
           SUM(amount_refunded) AS amount_refunded,
           SUM(amount_disputed) AS lost_to_disputes,
           SUM(CASE WHEN status IN {SETTLED_SQL} THEN {TAKEN_BACK_SQL} ELSE 0 END) AS taken_back,
           SUM(CASE WHEN status IN {SETTLED_SQL} THEN 0 ELSE amount END) AS unpaid
    FROM payments
    WHERE created_at >= :start AND created_at < :end AND ({NOTEWORTHY_PAYMENT})
    GROUP BY currency
    ORDER BY currency
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    return run(db, sql, start=start, end=end, grace=grace_days)
