"""Readers taking part: voting rounds with their voters, votes and results, and correction
suggestions per article and status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from patrons.reports.queries.sql import run


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
    return run(db, sql, timestamps=when, start=start, end=end, limit=limit)


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
    return run(db, sql, **params)


def corrections_totals(db: Session, start: datetime, end: datetime) -> Sequence[Any]:
    """(status, suggestions) sent in [start, end)."""
    sql = """
    SELECT status, COUNT(*) AS suggestions FROM correction_suggestions
    WHERE created_at >= :start AND created_at < :end
    GROUP BY status
    """
    return run(db, sql, start=start, end=end)
