"""What the public voting pages show, each gathered in one call for its view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from patrons.models import Round, Topic
from patrons.pledges.entitlement import user_is_active_patron
from patrons.voting.proposals import declined_topics, own_proposals
from patrons.voting.results import listed_topics, results, vote_counts
from patrons.voting.rounds import closed_rounds, open_rounds, upcoming_round
from patrons.voting.votes import votes_of


@dataclass(frozen=True)
class TopicsPage:
    """/topics: the open rounds, what the reader backs there, proposals, the next round."""

    rounds: list[Round]
    counts: dict[int, dict[int, int]]  # per round with live counts: votes per topic
    mine: set[int]  # the topics the reader backs
    is_patron: bool
    own_proposals: list[Topic]
    declined: list[Topic]
    upcoming: Round | None


def topics_page(db: Session, user_id: int | None, now: datetime, grace_days: int) -> TopicsPage:
    """The page for a reader (`user_id`), or for someone not signed in (None)."""
    rounds = open_rounds(db, now)
    mine: set[int] = set()
    is_patron, own = False, []
    if user_id is not None:
        mine = votes_of(db, user_id, [r.id for r in rounds])
        is_patron = user_is_active_patron(db, user_id, now, grace_days)
        own = own_proposals(db, user_id)
    return TopicsPage(
        rounds=rounds,
        counts={r.id: vote_counts(db, r) for r in rounds if r.live_counts},
        mine=mine,
        is_patron=is_patron,
        own_proposals=own,
        declined=declined_topics(db),
        upcoming=upcoming_round(db, now),
    )


@dataclass(frozen=True)
class PastRounds:
    rounds: list[Round]
    results: dict[int, dict[int, int]]  # per round: votes per topic


def past_rounds(db: Session, now: datetime, grace_days: int) -> PastRounds:
    """The closed rounds with their results (the first read after a close freezes them)."""
    rounds = closed_rounds(db, now)
    return PastRounds(rounds, {r.id: results(db, r, now, grace_days) for r in rounds})


@dataclass(frozen=True)
class RoundResults:
    counts: dict[int, int]  # votes per topic
    topics: list[Topic]  # the listed ones, most votes first


def round_results(db: Session, found: Round, now: datetime, grace_days: int) -> RoundResults:
    """A closed round's results (the first read after the close freezes them)."""
    counts = results(db, found, now, grace_days)
    return RoundResults(counts, listed_topics(found, counts))
