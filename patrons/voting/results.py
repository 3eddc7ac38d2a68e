"""Results: the topics readers see in a round's results, and the CSV rows. The figures
themselves (counted votes, frozen results, voters, turnout) have one definition each, in
participation.py; this module only lays them out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from patrons.models import Round, Topic
from patrons.voting.participation import (
    Turnout,
    active_patrons,
    results,
    turnout,
    vote_counts,
)
from patrons.voting.rules import LISTED

__all__ = [
    "Turnout",
    "eligible_patrons",
    "listed_topics",
    "results",
    "results_table",
    "turnout",
    "vote_counts",
]

eligible_patrons = active_patrons  # the name the staff pages and older callers know


def listed_topics(found: Round, counts: dict[int, int] | None = None) -> list[Topic]:
    """The round's topics readers see; by votes (most first) when counts are given."""
    topics = [t for t in found.topics if t.status in LISTED]
    if counts is not None:
        topics.sort(key=lambda t: (-counts.get(t.id, 0), t.id))
    return topics


def results_table(db: Session, found: Round, now: datetime, grace_days: int) -> list[list[object]]:
    """The CSV export's rows: a header, then one row per topic, most votes first (the
    results page's figures: participation.results)."""
    counts = results(db, found, now, grace_days)
    rows: list[list[object]] = [["round_id", "round", "topic_id", "topic", "status", "votes"]]
    for topic in listed_topics(found, counts):
        rows.append([found.id, found.title, topic.id, topic.title, topic.status,
                     counts.get(topic.id, 0)])  # fmt: skip
    return rows
