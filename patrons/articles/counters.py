"""Aggregate, first-party counters per article and day: one upsert, no personal data."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from patrons.core import clock
from patrons.models import DailyCount
from patrons.models.events import EVENT_KINDS


def count_event(db: Session, article_id: int, kind: str) -> None:
    """Add one to today's counter; concurrent calls never lose a count or fail on the key."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(DailyCount).values(
        article_id=article_id, day=clock.now().date(), kind=kind, count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["article_id", "day", "kind"],
        set_={"count": DailyCount.count + 1},
    )
    db.execute(stmt)
