from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from patrons.core.db import Base

# First-party, aggregate counters: no person, no cookie, just how often per article and day.
EVENT_KINDS = (
    "view",
    "banner_impression",
    "banner_click",
    "banner_dismiss",
    "notice_impression",
    "notice_click",
    "notice_dismiss",
)


class DailyCount(Base):
    __tablename__ = "daily_counts"
    __table_args__ = (CheckConstraint("count >= 0", name="count_non_negative"),)

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class BeaconSeen(Base):
    """One visitor (a daily keyed hash of address and browser, never stored raw) counted for
    one article, event and day: the beacon counts each at most once (articles/counters.py)."""

    __tablename__ = "beacon_seen"

    day: Mapped[dt.date] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    visitor: Mapped[str] = mapped_column(String(32), primary_key=True)
