"""The pledge history's queries: how MRR and the patron count change month by month (or day
by day, for the rollup), the new, cancelled and recovered patrons, and today's patrons.

Today's patrons are entitlement.py's active patrons. The months' ends come from the status
history (sql.py's COUNTED_SQL spans), which knows how statuses changed over time but not
what became of each payment: a past month's count is the patrons whose pledge was active,
trialing or past due within the grace period then."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.models import Pledge
from patrons.pledges.entitlement import entitled
from patrons.reports.queries.sql import COUNTED_SQL, ENDED_SQL, dialect, run


def monthly_deltas(
    db: Session, now: datetime, grace_days: int,
    since: datetime | None = None, until: datetime | None = None, by_day: bool = False,
) -> Sequence[Any]:  # fmt: skip
    """(month, currency, amount, patrons): how MRR and the patron count changed in each month
    (`by_day`: in each day, 'YYYY-MM-DD' in the `month` column).

    From the status history: each change opens a span that lasts until the pledge's next
    change. A span counts while its status is active or trialing, or past_due for at most
    the grace period, and never before the pledge's first paid invoice (`started_at`). A
    span adds its amount and one patron in the month it starts and takes them away in the
    month it ends, so a running total gives the figures at each month's end. Spans still
    running now have no end.

    `until`: only the changes before it (the monthly rollup). `since`: only the changes
    from it on (the live part next to the rollup), reading just the pledges that can have
    one (a change since the grace period before it, or a first payment since it).
    """
    d = dialect(db)
    grace_end = d.plus_days("start_at", "grace")
    params: dict[str, Any] = {"now": now, "grace": grace_days}
    # all of the history, or (since) the recent changes and, for each pledge that has one,
    # the change just before them: all the spans that can start or end from `since` on
    source, plus, minus = "pledge_status_changes", "", ""
    if since is not None:
        source = """(
            SELECT id, pledge_id, to_status, changed_at, amount FROM pledge_status_changes
            WHERE changed_at >= :changes_since
            UNION ALL
            SELECT id, pledge_id, to_status, changed_at, amount FROM pledge_status_changes
            WHERE id IN (
                SELECT (SELECT b.id FROM pledge_status_changes b
                        WHERE b.pledge_id = r.pledge_id AND b.changed_at < :changes_since
                        ORDER BY b.changed_at DESC, b.id DESC LIMIT 1)
                FROM (SELECT pledge_id FROM pledge_status_changes
                      WHERE changed_at >= :changes_since
                      UNION SELECT id FROM pledges WHERE started_at >= :since) r)
        )"""
        plus, minus = "AND from_at >= :since", "AND to_at >= :since"
        params.update(since=since, changes_since=since - timedelta(days=grace_days))
    if until is not None:
        plus, minus = f"{plus} AND from_at < :until", f"{minus} AND to_at < :until"
        params["until"] = until
    sql = f"""
    WITH changes AS (
        SELECT c.to_status AS status, COALESCE(c.amount, p.amount) AS amount,
               p.currency AS currency, p.started_at AS started_at, c.changed_at AS start_at,
               LEAD(c.changed_at) OVER (
                   PARTITION BY c.pledge_id ORDER BY c.changed_at, c.id) AS next_at
        FROM {source} c JOIN pledges p ON p.id = c.pledge_id
        WHERE p.started_at IS NOT NULL AND p.started_at <= :now
    ), counted AS (
        SELECT amount, currency,
               CASE WHEN start_at < started_at THEN started_at ELSE start_at END AS from_at,
               CASE WHEN status = 'past_due' AND (next_at IS NULL OR next_at > {grace_end})
                    THEN {grace_end} ELSE next_at END AS to_at
        FROM changes
        WHERE status IN {COUNTED_SQL} AND start_at <= :now
    ), spans AS (
        SELECT amount, currency, from_at,
               CASE WHEN to_at > :now THEN NULL ELSE to_at END AS to_at
        FROM counted
        WHERE to_at IS NULL OR to_at > from_at
    )
    SELECT month, currency, SUM(amount) AS amount, SUM(patrons) AS patrons FROM (
        SELECT {d.period("from_at", by_day)} AS month, currency, amount, 1 AS patrons
        FROM spans WHERE 1 = 1 {plus}
        UNION ALL
        SELECT {d.period("to_at", by_day)} AS month, currency, -amount AS amount, -1 AS patrons
        FROM spans WHERE to_at IS NOT NULL {minus}
    ) deltas
    GROUP BY month, currency
    ORDER BY month, currency
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    return run(db, sql, **params)


def history_start(db: Session) -> datetime | None:
    """When the pledge history begins (its first change, first payment or invoice)."""
    sql = """
    SELECT MIN(at) AS at FROM (
        SELECT MIN(changed_at) AS at FROM pledge_status_changes
        UNION ALL SELECT MIN(started_at) AS at FROM pledges
        UNION ALL SELECT MIN(created_at) AS at FROM payments
    ) firsts
    """
    row = run(db, sql, timestamps=("at",))
    return row[0].at if row else None


def monthly_flows(
    db: Session, start: datetime, end: datetime, by_day: bool = False
) -> Sequence[Any]:
    """(month, new, cancelled, recovered) per month of [start, end) (`by_day`: per day)."""
    d = dialect(db)
    sql = f"""
    SELECT month, SUM(new) AS new, SUM(cancelled) AS cancelled, SUM(recovered) AS recovered
    FROM (
        SELECT {d.period("started_at", by_day)} AS month, 1 AS new, 0 AS cancelled, 0 AS recovered
        FROM pledges WHERE started_at >= :start AND started_at < :end
        UNION ALL
        SELECT {d.period("changed_at", by_day)} AS month, 0 AS new,
               CASE WHEN from_status IN {COUNTED_SQL} AND to_status IN {ENDED_SQL}
                    THEN 1 ELSE 0 END AS cancelled,
               CASE WHEN from_status = 'past_due' AND to_status IN ('active', 'trialing')
                    THEN 1 ELSE 0 END AS recovered
        FROM pledge_status_changes WHERE changed_at >= :start AND changed_at < :end
    ) flows
    GROUP BY month
    ORDER BY month
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    return run(db, sql, start=start, end=end)


def active_pledges_now(db: Session, now: datetime, grace_days: int) -> Sequence[Any]:
    """(currency, amount, patrons): today's active patrons, by the one definition
    (`entitlement.entitled`: the readers `entitlement.active_patron_ids` lists), grouped by
    pledge amount (the distribution; its sums are MRR and the patron count). A reader has
    one open pledge at most (uq_pledges_one_open_per_user), so the groups add up to the
    active patrons."""
    query = (
        select(
            Pledge.currency.label("currency"),
            Pledge.amount.label("amount"),
            func.count(func.distinct(Pledge.user_id)).label("patrons"),
        )
        .where(Pledge.user_id.is_not(None), entitled(now, grace_days))
        .group_by(Pledge.currency, Pledge.amount)
        .order_by(Pledge.currency, Pledge.amount)
    )
    return db.execute(query).all()
