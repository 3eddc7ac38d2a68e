"""Readers taking part: correction suggestions per article and status. (A voting round's
voters, votes, results and turnout have one definition, patrons/voting/participation.py,
which the reports call.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patrons.reports.queries.sql import run


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
    return run(db, sql, **params)


def corrections_totals(db: Session, start: datetime, end: datetime) -> Sequence[Any]:
    """(status, suggestions) sent in [start, end)."""
    sql = """
    SELECT status, COUNT(*) AS suggestions FROM correction_suggestions
    WHERE created_at >= :start AND created_at < :end
    GROUP BY status
    """
    return run(db, sql, start=start, end=end)
