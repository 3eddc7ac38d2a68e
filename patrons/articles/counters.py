"""Aggregate, first-party counters per article and day: one upsert, no personal data.

The beacon counts a reader at most once per article, event and day (docs/security.md, the
beacon): `beacon_seen` keeps a keyed hash of the day, the client's address and its browser,
never the address itself, and is useless after the day is over (`prune_seen`).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from patrons.articles.service import is_published
from patrons.core import clock
from patrons.core.db import insert_or_ignore, upsert
from patrons.models import BeaconSeen, DailyCount
from patrons.models.events import EVENT_KINDS

VISITOR_HEX = 32  # beacon_seen.visitor: 128 bits of the keyed hash
USER_AGENT_MAX = 512  # of the User-Agent header hashed: any longer tells no two browsers apart
KEEP_DAYS = 2  # today's and yesterday's rows: the day's count is decided by then


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


def visitor(secret: str, day: date, address: str, user_agent: str) -> str:
    """Who sent a beacon, as far as counting goes: HMAC-SHA256 under the app's SECRET_KEY of
    the day, the client address and the browser, cut to VISITOR_HEX hex digits. Without the
    key nobody can test an address against it, and tomorrow the same reader is a stranger."""
    message = "\n".join(("beacon-visitor", day.isoformat(), address, user_agent[:USER_AGENT_MAX]))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return digest[:VISITOR_HEX]


def count_beacon(
    db: Session, article_id: int, kind: str, *, secret: str, address: str, user_agent: str
) -> bool:
    """A reader's beacon: False (a 404) if the kind is unknown or the article is not published
    (a draft, a future date, no such id). Otherwise True, whether it counted or this visitor
    was already counted for the article and event today: the answer tells a script nothing."""
    if kind not in EVENT_KINDS or not is_published(db, article_id):
        return False
    today = clock.now().date()
    first = insert_or_ignore(
        db,
        BeaconSeen,
        {
            "day": today,
            "article_id": article_id,
            "kind": kind,
            "visitor": visitor(secret, today, address, user_agent),
        },
    ).returning(BeaconSeen.visitor)
    if db.execute(first).first() is not None:  # no row back: seen already (ON CONFLICT)
        count_event(db, article_id, kind)
    return True


def prune_seen(db: Session, today: date) -> int:
    """Delete the beacon_seen rows of the days before yesterday; how many went."""
    cutoff = today - timedelta(days=KEEP_DAYS - 1)
    result = db.execute(delete(BeaconSeen).where(BeaconSeen.day < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a DELETE's CursorResult
