"""Who takes part in a round: the one definition of each figure, used by the public results
pages, the staff round page and its CSV, the reports (patrons/reports/participation.py) and
the mail to the voters of a covered topic.

- A **counted vote**: cast before the round closed, with a payment that still counts
  (`entitlement.payment_counts(Vote.payment_id)`; NULL for the votes cast before
  votes recorded their payment). A full refund or a lost dispute of that payment withdraws
  the vote for good, an open dispute suspends it until it is won: all derived, nothing is
  written or deleted. A vote that does not count still takes its place in the patron's
  budget for the round (votes.py), so it cannot be cast again with another payment.
- **Votes per topic** (the results): the counted votes; once the round has closed, copied
  onto the topics at the first read after the close (`Topic.final_votes`, `Round.frozen_at`)
  and read from there, so later changes leave a closed round's results as they were.
- A **voter**: a reader with at least one counted vote in the round.
- An **active patron**: `patrons.pledges.entitlement.active_patron_ids` (who may vote now).
- **Turnout**: voters ÷ active patrons. For an open round, both as they are now. For a closed
  round, both frozen with its results at the first read after the close (`Round.final_voters`,
  `Round.final_eligible`): the entitlement rule knows who is a patron at the moment it is
  asked, so the count taken then is the closest to "at the close" every screen can share,
  and it no longer moves (nor passes 100 %) as patrons come and go.

Reading never writes, except `results`, which freezes a closed round's results (its
callers commit: a GET that writes, see voting/views.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from patrons.models import Round, Topic, Vote
from patrons.pledges.entitlement import active_patron_ids, payment_counts


def counted() -> ColumnElement[bool]:
    """The condition on a `Vote` row that it counts (see the module's docstring)."""
    return or_(Vote.payment_id.is_(None), payment_counts(Vote.payment_id))


def _counted_in(found: Round) -> list[ColumnElement[bool]]:
    return [Vote.round_id == found.id, Vote.created_at < found.closes_at, counted()]


def vote_counts(db: Session, found: Round) -> dict[int, int]:
    """Counted votes per topic, as they stand now (never the frozen ones)."""
    rows = db.execute(
        select(Vote.topic_id, func.count()).where(*_counted_in(found)).group_by(Vote.topic_id)
    )
    return {topic_id: count for topic_id, count in rows}


def current_results(db: Session, found: Round) -> dict[int, int]:
    """Votes per topic without writing: the frozen ones if the round has them, else the
    counted votes (what the first read after the close will freeze)."""
    if found.frozen_at is not None:
        return {t.id: t.final_votes or 0 for t in found.topics}
    return vote_counts(db, found)


def results(db: Session, found: Round, now: datetime, grace_days: int) -> dict[int, int]:
    """Votes per topic; a closed round's are frozen on its topics at the first read, with
    its voters and the active patrons then (its turnout)."""
    counts = current_results(db, found)
    if found.frozen_at is None and found.is_closed(now):
        for topic in found.topics:
            topic.final_votes = counts.get(topic.id, 0)
        found.final_voters = voters(db, found)
        found.final_eligible = active_patrons(db, now, grace_days)
        found.frozen_at = now
        db.flush()
    return counts


def voters(db: Session, found: Round) -> int:
    """Readers with at least one counted vote in the round."""
    query = select(func.count(func.distinct(Vote.user_id))).where(*_counted_in(found))
    return int(db.scalar(query) or 0)


def topic_voter_ids(topic: Topic) -> Select[Any]:
    """The readers whose vote for this topic counts (the covered topic's mail goes to them)."""
    query = select(Vote.user_id).where(Vote.topic_id == topic.id, counted())
    if topic.round is not None:
        query = query.where(Vote.created_at < topic.round.closes_at)
    return query


def active_patrons(db: Session, now: datetime, grace_days: int) -> int:
    """How many readers are active patrons now (patrons/pledges/entitlement.py)."""
    ids = active_patron_ids(now, grace_days).subquery()
    return int(db.scalar(select(func.count()).select_from(ids)) or 0)


@dataclass(frozen=True)
class Turnout:
    voters: int
    eligible: int  # active patrons now

    @property
    def share(self) -> float | None:
        return self.voters / self.eligible if self.eligible else None


def turnout(db: Session, found: Round, now: datetime, grace_days: int) -> Turnout:
    """Voters ÷ active patrons: frozen for a closed round whose results are, else now."""
    return _turnout(db, found, lambda: active_patrons(db, now, grace_days))


def _turnout(db: Session, found: Round, eligible_now: Callable[[], int]) -> Turnout:
    if found.frozen_at is not None and found.final_voters is not None:
        return Turnout(found.final_voters, found.final_eligible or 0)
    return Turnout(voters(db, found), eligible_now())


@dataclass(frozen=True)
class RoundFigures:
    """Everything a staff screen or export says about a round's participation."""

    round: Round
    results: dict[int, int]  # votes per topic, as the results page shows them
    turnout: Turnout

    @property
    def votes(self) -> int:
        return sum(self.results.values())


def round_figures(
    db: Session, rounds: Sequence[Round], now: datetime, grace_days: int
) -> list[RoundFigures]:
    """The figures of each round, without writing (the reports only read)."""
    eligible: list[int] = []  # counted once, for the rounds that need it

    def eligible_now() -> int:
        if not eligible:
            eligible.append(active_patrons(db, now, grace_days))
        return eligible[0]

    return [RoundFigures(r, current_results(db, r), _turnout(db, r, eligible_now)) for r in rounds]
