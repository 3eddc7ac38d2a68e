"""Rounds: which are open, upcoming or closed, and staff opening, changing and closing them.

A round is open from `opens_at` until `closes_at`, by the clock alone; closing one early is
moving its `closes_at` to now. Its results are results.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from patrons.models import Round, Topic, Vote
from patrons.voting.rules import VOTES_PER_PATRON_MAX, VotingError
from patrons.voting.votes import lock_voters


@dataclass(frozen=True)
class RoundDraft:
    title: str
    introduction: str
    opens_at: datetime
    closes_at: datetime
    votes_per_patron: int = 3
    live_counts: bool = False


def open_rounds(db: Session, now: datetime) -> list[Round]:
    return list(
        db.scalars(
            select(Round)
            .where(Round.opens_at <= now, Round.closes_at > now)
            .order_by(Round.closes_at, Round.id)
            .options(selectinload(Round.topics))
        )
    )


def upcoming_round(db: Session, now: datetime) -> Round | None:
    return db.scalar(select(Round).where(Round.opens_at > now).order_by(Round.opens_at).limit(1))


def closed_rounds(db: Session, now: datetime, limit: int = 100) -> list[Round]:
    return list(
        db.scalars(
            select(Round)
            .where(Round.closes_at <= now)
            .order_by(Round.closes_at.desc(), Round.id.desc())
            .limit(limit)
            .options(selectinload(Round.topics).selectinload(Topic.articles))
        )
    )


def all_rounds(db: Session, limit: int = 500) -> list[Round]:
    return list(
        db.scalars(select(Round).order_by(Round.opens_at.desc(), Round.id.desc()).limit(limit))
    )


def started_round(db: Session, round_id: int, now: datetime) -> Round | None:
    """The round if it has opened (a round not open yet has no public page)."""
    found = db.get(Round, round_id)
    return found if found is not None and found.opens_at <= now else None


def save_round(db: Session, draft: RoundDraft, now: datetime, found: Round | None = None) -> Round:
    """Open a new round, or change one whose results are not frozen yet."""
    _check_draft(db, draft, now, found)
    target = found or Round()
    target.title = draft.title.strip()
    target.introduction = draft.introduction.strip()
    target.opens_at, target.closes_at = draft.opens_at, draft.closes_at
    target.votes_per_patron, target.live_counts = draft.votes_per_patron, draft.live_counts
    db.add(target)
    db.flush()
    return target


def _check_draft(db: Session, draft: RoundDraft, now: datetime, found: Round | None) -> None:
    if draft.closes_at <= draft.opens_at:
        raise VotingError(_("The round must close after it opens."))
    if not 1 <= draft.votes_per_patron <= VOTES_PER_PATRON_MAX:
        raise VotingError(
            _("Votes per patron must be between 1 and %(max)d.", max=VOTES_PER_PATRON_MAX)
        )
    if found is not None and found.is_closed(now):
        raise VotingError(_("This round has closed; its results are frozen."), 409)
    if (
        found is not None
        and draft.votes_per_patron < found.votes_per_patron
        and _has_votes(db, found)
    ):
        raise VotingError(
            _("Patrons have voted already: the number of votes per patron can only go up."), 409
        )
    if found is None and draft.closes_at <= now:
        raise VotingError(_("The closing time has passed already."))


def close_round(db: Session, found: Round, now: datetime) -> None:
    """Close an open round now: the same as its closing time arriving."""
    if not found.is_open(now):
        raise VotingError(_("Only an open round can be closed."), 409)
    lock_voters(db, select(Vote.user_id).where(Vote.round_id == found.id))
    found.closes_at = now
    db.flush()


def _has_votes(db: Session, found: Round) -> bool:
    return bool(db.scalar(select(exists().where(Vote.round_id == found.id))))
