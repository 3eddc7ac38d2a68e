"""The report queries: every aggregate is computed by the database, with the indexes of
patrons/models/reports.py; Python only receives grouped rows (a few per month, currency,
status or article) and does the running totals and the currency conversion.

Written as SQL text, because the same statements run on PostgreSQL and SQLite with only two
expressions differing (a timestamp's month, a timestamp plus days): see `Dialect`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Integer, bindparam, text
from sqlalchemy.orm import Session

from patrons.core.db import UTCDateTime
from patrons.models.reports import NOTEWORTHY_PAYMENT

# A pledge's statuses in which its reader counts as a patron (past_due: only within the grace
# period), and those that end it. Mirrors patrons/pledges/entitlement.py, which the
# tests compare this with.
COUNTED = ("active", "trialing", "past_due")
ENDED = ("canceled", "unpaid", "incomplete_expired")
_COUNTED_SQL = "('active', 'trialing', 'past_due')"
_ENDED_SQL = "('canceled', 'unpaid', 'incomplete_expired')"


@dataclass(frozen=True)
class Dialect:
    name: str

    def month(self, column: str) -> str:
        """'YYYY-MM' of a UTC timestamp column."""
        if self.name == "postgresql":
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
        return f"substr({column}, 1, 7)"  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff', in UTC

    def day(self, column: str) -> str:
        """'YYYY-MM-DD' of a UTC timestamp column."""
        if self.name == "postgresql":
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"substr({column}, 1, 10)"

    def period(self, column: str, by_day: bool) -> str:
        return self.day(column) if by_day else self.month(column)

    def plus_days(self, column: str, days_param: str) -> str:
        if self.name == "postgresql":
            return f"({column} + make_interval(days => :{days_param}))"
        return f"strftime('%Y-%m-%d %H:%M:%f', {column}, '+' || :{days_param} || ' days')"


def _dialect(db: Session) -> Dialect:
    return Dialect(db.get_bind().dialect.name)


def _run(db: Session, sql: str, *, timestamps: Sequence[str] = (), **params: Any) -> Sequence[Any]:
    """Execute with datetimes bound as the models bind them (UTC, SQLite's text format);
    the `timestamps` columns are read back as aware datetimes, as the models read them."""
    binds = []
    for name, value in params.items():
        if isinstance(value, datetime):
            binds.append(bindparam(name, type_=UTCDateTime()))
        elif isinstance(value, date):
            binds.append(bindparam(name, type_=Date()))
        elif isinstance(value, int):
            binds.append(bindparam(name, type_=Integer()))
    statement = text(sql).bindparams(*binds)
    if timestamps:
        statement = statement.columns(**dict.fromkeys(timestamps, UTCDateTime()))  # type: ignore[assignment]
    return db.execute(statement, params).all()


# -- patrons and recurring revenue --------------------------------------------------------


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
    d = _dialect(db)
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
        WHERE status IN {_COUNTED_SQL} AND start_at <= :now
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
    return _run(db, sql, **params)


def history_start(db: Session) -> datetime | None:
    """When the pledge history begins (its first change, first payment or invoice)."""
    sql = """
    SELECT MIN(at) AS at FROM (
        SELECT MIN(changed_at) AS at FROM pledge_status_changes
        UNION ALL SELECT MIN(started_at) AS at FROM pledges
        UNION ALL SELECT MIN(created_at) AS at FROM payments
    ) firsts
    """
    row = _run(db, sql, timestamps=("at",))
    return row[0].at if row else None


def monthly_flows(
    db: Session, start: datetime, end: datetime, by_day: bool = False
) -> Sequence[Any]:
    """(month, new, cancelled, recovered) per month of [start, end) (`by_day`: per day)."""
    d = _dialect(db)
    sql = f"""
    SELECT month, SUM(new) AS new, SUM(cancelled) AS cancelled, SUM(recovered) AS recovered
    FROM (
        SELECT {d.period("started_at", by_day)} AS month, 1 AS new, 0 AS cancelled, 0 AS recovered
        FROM pledges WHERE started_at >= :start AND started_at < :end
        UNION ALL
        SELECT {d.period("changed_at", by_day)} AS month, 0 AS new,
               CASE WHEN from_status IN {_COUNTED_SQL} AND to_status IN {_ENDED_SQL}
                    THEN 1 ELSE 0 END AS cancelled,
               CASE WHEN from_status = 'past_due' AND to_status IN ('active', 'trialing')
                    THEN 1 ELSE 0 END AS recovered
        FROM pledge_status_changes WHERE changed_at >= :start AND changed_at < :end
    ) flows
    GROUP BY month
    ORDER BY month
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    return _run(db, sql, start=start, end=end)


def active_pledges_now(db: Session, now: datetime, grace_days: int) -> Sequence[Any]:
    """(currency, amount, patrons): today's active patrons by the entitlement rule, grouped
    by pledge amount (the distribution; its sums are MRR and the patron count)."""
    sql = """
    SELECT p.currency AS currency, p.amount AS amount, COUNT(*) AS patrons
    FROM pledges p
    WHERE (p.status IN ('active', 'trialing')
           OR (p.status = 'past_due' AND p.current_period_end >= :cutoff))
      AND EXISTS (SELECT 1 FROM payments y WHERE y.pledge_id = p.id AND y.status = 'paid')
    GROUP BY p.currency, p.amount
    ORDER BY p.currency, p.amount
    """
    return _run(db, sql, cutoff=now - timedelta(days=grace_days))


# -- payment health -------------------------------------------------------------------------


def invoices_by_month(
    db: Session, start: datetime, end: datetime, by_day: bool = False
) -> Sequence[Any]:
    """(month, currency, invoices, invoiced) of the invoices dated in [start, end), per month
    (`by_day`: per day)."""
    d = _dialect(db)
    sql = f"""
    SELECT {d.period("created_at", by_day)} AS month, currency, COUNT(*) AS invoices,
           SUM(amount) AS invoiced
    FROM payments
    WHERE created_at >= :start AND created_at < :end
    GROUP BY 1, currency
    ORDER BY 1, currency
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    return _run(db, sql, start=start, end=end)


def noteworthy_payments(
    db: Session, start: datetime, end: datetime, grace_days: int
) -> Sequence[Any]:
    """Per currency, of the invoices dated in [start, end) that failed at least once, are
    unpaid, refunded or disputed (read through their partial index, as a plain paid invoice
    needs no look): failed, recovered within the grace period or later, refunds, disputes,
    and the amount still unpaid."""
    d = _dialect(db)
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
    return _run(db, sql, start=start, end=end, grace=grace_days)


# -- the growth funnel --------------------------------------------------------------------


def counter_totals(db: Session, first: date, last: date) -> Sequence[Any]:
    """(kind, count) of the first-party counters on the days [first, last]."""
    sql = """
    SELECT kind, SUM(count) AS total FROM daily_counts
    WHERE day >= :first AND day <= :last
    GROUP BY kind
    """
    return _run(db, sql, first=first, last=last)


def conversions_by_prompt(db: Session, start: datetime, end: datetime) -> Sequence[Any]:
    """(prompt, signups, first_payments) in [start, end); prompt NULL = not attributed."""
    sql = """
    SELECT prompt, SUM(signups) AS signups, SUM(firsts) AS first_payments FROM (
        SELECT source_prompt AS prompt, 1 AS signups, 0 AS firsts FROM users
        WHERE created_at >= :start AND created_at < :end
        UNION ALL
        SELECT source_prompt AS prompt, 0 AS signups, 1 AS firsts FROM pledges
        WHERE started_at >= :start AND started_at < :end
    ) conversions
    GROUP BY prompt
    ORDER BY prompt
    """
    return _run(db, sql, start=start, end=end)


def article_funnel(
    db: Session, first: date, last: date, start: datetime, end: datetime,
    min_views: int = 0, limit: int | None = None,
) -> Sequence[Any]:  # fmt: skip
    """Per article: views, prompt impressions and clicks, attributed sign-ups and first
    payments; best converting first (first payments per view, among articles with at least
    `min_views` views), then by first payments and views."""
    top = "LIMIT :limit" if limit else ""
    sql = f"""
    WITH counts AS (
        SELECT article_id,
               SUM(CASE WHEN kind = 'view' THEN count ELSE 0 END) AS views,
               SUM(CASE WHEN kind = 'banner_impression' THEN count ELSE 0 END) AS banner_seen,
               SUM(CASE WHEN kind = 'banner_click' THEN count ELSE 0 END) AS banner_clicks,
               SUM(CASE WHEN kind = 'notice_impression' THEN count ELSE 0 END) AS notice_seen,
               SUM(CASE WHEN kind = 'notice_click' THEN count ELSE 0 END) AS notice_clicks
        FROM daily_counts WHERE day >= :first AND day <= :last
        GROUP BY article_id
    ), signups AS (
        SELECT source_article_id AS article_id, COUNT(*) AS signups FROM users
        WHERE source_article_id IS NOT NULL AND created_at >= :start AND created_at < :end
        GROUP BY source_article_id
    ), firsts AS (
        SELECT source_article_id AS article_id, COUNT(*) AS first_payments FROM pledges
        WHERE source_article_id IS NOT NULL AND started_at >= :start AND started_at < :end
        GROUP BY source_article_id
    ), funnel AS (
        SELECT a.id AS article_id, a.title AS title, a.slug AS slug,
               COALESCE(c.views, 0) AS views,
               COALESCE(c.banner_seen, 0) AS banner_seen,
               COALESCE(c.banner_clicks, 0) AS banner_clicks,
               COALESCE(c.notice_seen, 0) AS notice_seen,
               COALESCE(c.notice_clicks, 0) AS notice_clicks,
               COALESCE(s.signups, 0) AS signups,
               COALESCE(f.first_payments, 0) AS first_payments
        FROM articles a
        LEFT JOIN counts c ON c.article_id = a.id
        LEFT JOIN signups s ON s.article_id = a.id
        LEFT JOIN firsts f ON f.article_id = a.id
        WHERE c.article_id IS NOT NULL OR s.article_id IS NOT NULL OR f.article_id IS NOT NULL
    )
    SELECT * FROM funnel
    WHERE views >= :min_views
    ORDER BY CASE WHEN views > 0 THEN CAST(first_payments AS FLOAT) / views ELSE 0 END DESC,
             first_payments DESC, views DESC, article_id
    {top}
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    params: dict[str, Any] = dict(first=first, last=last, start=start, end=end,
                                  min_views=min_views)  # fmt: skip
    if limit:
        params["limit"] = limit
    return _run(db, sql, **params)


# -- voting and corrections -----------------------------------------------------------------


def rounds_in_range(db: Session, start: datetime, end: datetime, limit: int) -> Sequence[Any]:
    """Rounds open at some time in [start, end), newest first, with voters and votes."""
    sql = """
    SELECT r.id AS id, r.title AS title, r.opens_at AS opens_at, r.closes_at AS closes_at,
           r.frozen_at AS frozen_at,
           (SELECT COUNT(DISTINCT v.user_id) FROM votes v WHERE v.round_id = r.id) AS voters,
           (SELECT COUNT(*) FROM votes v WHERE v.round_id = r.id) AS votes
    FROM rounds r
    WHERE r.opens_at < :end AND r.closes_at >= :start
    ORDER BY r.closes_at DESC, r.id DESC
    LIMIT :limit
    """
    when = ("opens_at", "closes_at", "frozen_at")
    return _run(db, sql, timestamps=when, start=start, end=end, limit=limit)


def round_results(db: Session, round_ids: Sequence[int]) -> Sequence[Any]:
    """(round_id, topic_id, title, status, votes) for the rounds' topics, most votes first;
    a closed round's frozen count when it has one."""
    if not round_ids:
        return []
    sql = text("""
    SELECT t.round_id AS round_id, t.id AS topic_id, t.title AS title, t.status AS status,
           COALESCE(t.final_votes, COUNT(v.id)) AS votes
    FROM topics t LEFT JOIN votes v ON v.topic_id = t.id
    WHERE t.round_id IN :ids
    GROUP BY t.round_id, t.id, t.title, t.status, t.final_votes
    ORDER BY t.round_id, votes DESC, t.id
    """).bindparams(bindparam("ids", expanding=True))
    return db.execute(sql, {"ids": list(round_ids)}).all()


def corrections_by_article(
    db: Session, start: datetime, end: datetime, limit: int | None = None
) -> Sequence[Any]:
    """(article_id, title, open, resolved, declined) for suggestions sent in [start, end);
    article_id NULL = the general corrections form. Most open first."""
    top = "LIMIT :limit" if limit else ""
    sql = f"""
    SELECT s.article_id AS article_id, a.title AS title,
           SUM(CASE WHEN s.status = 'open' THEN 1 ELSE 0 END) AS open,
           SUM(CASE WHEN s.status = 'resolved' THEN 1 ELSE 0 END) AS resolved,
           SUM(CASE WHEN s.status = 'declined' THEN 1 ELSE 0 END) AS declined
    FROM correction_suggestions s LEFT JOIN articles a ON a.id = s.article_id
    WHERE s.created_at >= :start AND s.created_at < :end
    GROUP BY s.article_id, a.title
    ORDER BY open DESC, resolved DESC, s.article_id
    {top}
    """  # noqa: S608  (fixed SQL fragments; values are bound)
    params: dict[str, Any] = {"start": start, "end": end}
    if limit:
        params["limit"] = limit
    return _run(db, sql, **params)


def corrections_totals(db: Session, start: datetime, end: datetime) -> Sequence[Any]:
    """(status, suggestions) sent in [start, end)."""
    sql = """
    SELECT status, COUNT(*) AS suggestions FROM correction_suggestions
    WHERE created_at >= :start AND created_at < :end
    GROUP BY status
    """
    return _run(db, sql, start=start, end=end)
