"""The growth funnel's queries: the first-party counters (views, prompts shown, clicked,
dismissed), sign-ups and first payments by prompt, and the same per article (attribution)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from patrons.reports.queries.sql import run


def counter_totals(db: Session, first: date, last: date) -> Sequence[Any]:
    """(kind, count) of the first-party counters on the days [first, last]."""
    sql = """
    SELECT kind, SUM(count) AS total FROM daily_counts
    WHERE day >= :first AND day <= :last
    GROUP BY kind
    """
    return run(db, sql, first=first, last=last)


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
    return run(db, sql, start=start, end=end)


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
    return run(db, sql, **params)
