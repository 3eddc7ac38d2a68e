"""Results: votes per topic, frozen at the first read after the close; turnout; the CSV rows.

A round's results are the votes cast before `closes_at` (nothing can add or withdraw one
after it) and are copied onto the topics on the first read after the close (`frozen_at`),
so later changes, such as a deleted account, leave them as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.models import Round, Topic, Vote
from patrons.pledges.entitlement import active_patron_ids
from patrons.voting.rules import LISTED


def vote_counts(db: Session, found: Round) -> dict[int, int]:
    """Votes per topic, counting only votes cast before the round closed."""
    rows = db.execute(
        select(Vote.topic_id, func.count())
        .where(Vote.round_id == found.id, Vote.created_at < found.closes_at)
        .group_by(Vote.topic_id)
    )
    return {topic_id: count for topic_id, count in rows}


def results(db: Session, found: Round, now: datetime) -> dict[int, int]:
    """Votes per topic; once the round has closed, frozen on the topics at the first read."""
    if found.frozen_at is not None:
        return {t.id: t.final_votes or 0 for t in found.topics}
    counts = vote_counts(db, found)
    if found.is_closed(now):
        for topic in found.topics:
            topic.final_votes = counts.get(topic.id, 0)
        found.frozen_at = now
        db.flush()
    return counts


def listed_topics(found: Round, counts: dict[int, int] | None = None) -> list[Topic]:
    """The round's topics readers see; by votes (most first) when counts are given."""
    topics = [t for t in found.topics if t.status in LISTED]
    if counts is not None:
        topics.sort(key=lambda t: (-counts.get(t.id, 0), t.id))
    return topics


def eligible_patrons(db: Session, now: datetime, grace_days: int) -> int:
    """How many readers are active patrons now (patrons/pledges/entitlement.py)."""
    ids = active_patron_ids(now, grace_days).subquery()
    return int(db.scalar(select(func.count()).select_from(ids)) or 0)


@dataclass(frozen=True)
class Turnout:
    voters: int
    eligible: int

    @property
    def share(self) -> float | None:
        return self.voters / self.eligible if self.eligible else None


def turnout(db: Session, found: Round, now: datetime, grace_days: int) -> Turnout:
    """Patrons who voted in the round ÷ active patrons now."""
    voters = db.scalar(
        select(func.count(func.distinct(Vote.user_id))).where(Vote.round_id == found.id)
    )
    return Turnout(voters or 0, eligible_patrons(db, now, grace_days))


def results_table(db: Session, found: Round, now: datetime) -> list[list[object]]:
    """The CSV export's rows: a header, then one row per topic, most votes first."""
    counts = results(db, found, now)
    rows: list[list[object]] = [["round_id", "round", "topic_id", "topic", "status", "votes"]]
    for topic in listed_topics(found, counts):
        rows.append([found.id, found.title, topic.id, topic.title, topic.status,
                     counts.get(topic.id, 0)])  # fmt: skip
    return rows
