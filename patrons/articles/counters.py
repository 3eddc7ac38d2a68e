"""Aggregate, first-party counters per article and day: one upsert, no personal data."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.core.db import upsert
from patrons.models import Article, DailyCount
from patrons.models.events import EVENT_KINDS


def count_event(db: Session, article_id: int, kind: str) -> None:
    """Add one to today's counter; concurrent calls never lose a count or fail on the key."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    stmt = upsert(db, DailyCount).values(
        article_id=article_id, day=clock.now().date(), kind=kind, count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["article_id", "day", "kind"],
        set_={"count": DailyCount.count + 1},
    )
    db.execute(stmt)


def count_beacon(db: Session, article_id: int, kind: str) -> bool:
    """A reader's beacon: count it, or False if the kind or the article is unknown."""
    if kind not in EVENT_KINDS:
        return False
    if not db.scalar(select(exists().where(Article.id == article_id))):
        return False
    count_event(db, article_id, kind)
    return True
