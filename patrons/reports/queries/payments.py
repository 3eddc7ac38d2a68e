"""The invoices' queries: how many and how much per month and currency (for the rollup and
the unsettled days), and payment health (failures, recoveries, refunds, disputes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patrons.models.reports import NOTEWORTHY_PAYMENT
from patrons.reports.queries.sql import dialect, run


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


def noteworthy_payments(
    db: Session, start: datetime, end: datetime, grace_days: int
) -> Sequence[Any]:
    """Per currency, of the invoices dated in [start, end) that failed at least once, are
    unpaid, refunded or disputed (read through their partial index, as a plain paid invoice
    needs no look): failed, recovered within the grace period or later, refunds, disputes,
    and the amount still unpaid."""
    d = dialect(db)
    in_grace = d.plus_days("created_at", "grace")
    failed = "(failure_notified_attempt > 0 OR status = 'failed')"
    sql = f"""
    SELECT currency,
           SUM(CASE WHEN {failed} THEN 1 ELSE 0 END) AS failed,
           SUM(CASE WHEN {failed} AND paid_at IS NOT NULL AND paid_at <= {in_grace}
                    THEN 1 ELSE 0 END) AS recovered_in_grace,
           SUM(CASE WHEN {failed} AND paid_at IS NOT NULL AND paid_at > {in_grace}
                    THEN 1 ELSE 0 END) AS recovered_later,
           SUM(CASE WHEN amount_refunded > 0 THEN 1 ELSE 0 END) AS refunds,
           SUM(amount_refunded) AS refunded,
           SUM(CASE WHEN status = 'disputed' THEN 1 ELSE 0 END) AS disputes,
           SUM(CASE WHEN status = 'disputed' THEN amount ELSE 0 END) AS disputed,
           SUM(CASE WHEN paid_at IS NULL THEN amount ELSE 0 END) AS unpaid
    FROM payments
    WHERE created_at >= :start AND created_at < :end AND ({NOTEWORTHY_PAYMENT})
    GROUP BY currency
    ORDER BY currency
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    return run(db, sql, start=start, end=end, grace=grace_days)
