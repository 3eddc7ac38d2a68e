"""Topics and their moderation: staff add topics to a round; patrons propose topics, which
staff approve into a round, decline with a public reason, or merge into another topic."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from patrons.models import Round, Topic, Vote
from patrons.pledges.entitlement import user_is_active_patron
from patrons.voting.rules import (
    DESCRIPTION_MAX,
    REASON_MAX,
    TITLE_MAX,
    WAITING_PROPOSALS_MAX,
    VotingError,
    existing_topic,
)
from patrons.voting.votes import lock_voters, rows_touched


def _clean(title: str, description: str, title_max: int = TITLE_MAX) -> tuple[str, str]:
    title, description = " ".join(title.split()), description.strip()
    if not title:
        raise VotingError(_("Give the topic a title."))
    if len(title) > title_max:
        raise VotingError(_("Keep the title under %(max)d characters.", max=title_max))
    if len(description) > DESCRIPTION_MAX:
        raise VotingError(_("Keep the description under %(max)d characters.", max=DESCRIPTION_MAX))
    return title, description


def add_topic(db: Session, found: Round, title: str, description: str, now: datetime) -> Topic:
    """A staff topic, straight into a round that has not closed."""
    if found.is_closed(now):
        raise VotingError(_("This round has closed; its results are frozen."), 409)
    title, description = _clean(title, description, title_max=200)
    topic = Topic(round_id=found.id, title=title, description=description, status="in_round",
                  created_at=now)  # fmt: skip
    db.add(topic)
    db.flush()
    return topic


def propose_topic(
    db: Session, user_id: int, title: str, description: str, now: datetime, grace_days: int
) -> Topic:
    """A patron's proposal, waiting for moderation."""
    if not user_is_active_patron(db, user_id, now, grace_days):
        raise VotingError(_("Only patrons can propose topics."), 403)
    title, description = _clean(title, description)
    waiting = db.scalar(
        select(func.count()).where(Topic.proposed_by_id == user_id, Topic.status == "proposed")
    )
    if (waiting or 0) >= WAITING_PROPOSALS_MAX:
        raise VotingError(
            _("You have %(count)d proposals waiting for the newsroom already. Please wait "
              "until they have been read.", count=WAITING_PROPOSALS_MAX), 409,
        )  # fmt: skip
    topic = Topic(title=title, description=description, status="proposed",
                  proposed_by_id=user_id, created_at=now)  # fmt: skip
    db.add(topic)
    db.flush()
    return topic


def proposals(db: Session, user_id: int | None = None, limit: int = 500) -> list[Topic]:
    """Proposals waiting for moderation (all of them, or one patron's)."""
    query = select(Topic).where(Topic.status == "proposed")
    if user_id is not None:
        query = query.where(Topic.proposed_by_id == user_id)
    return list(db.scalars(query.order_by(Topic.id).limit(limit)))


def own_proposals(db: Session, user_id: int, limit: int = 20) -> list[Topic]:
    """A patron's proposals, whatever became of them, newest first."""
    query = select(Topic).where(Topic.proposed_by_id == user_id)
    return list(db.scalars(query.order_by(Topic.id.desc()).limit(limit)))


def declined_topics(db: Session, limit: int = 20) -> list[Topic]:
    query = select(Topic).where(Topic.status == "declined")
    return list(db.scalars(query.order_by(Topic.id.desc()).limit(limit)))


def approve_topic(db: Session, topic_id: int, round_id: int, now: datetime) -> Topic:
    """Move a proposal into a round that has not closed."""
    topic = existing_topic(db, topic_id)
    found = db.get(Round, round_id)
    if topic.status != "proposed":
        raise VotingError(_("Only a waiting proposal can be approved."), 409)
    if found is None or found.is_closed(now):
        raise VotingError(_("Choose a round that has not closed."))
    topic.round_id, topic.status = found.id, "in_round"
    db.flush()
    return topic


def decline_topic(db: Session, topic_id: int, reason: str) -> Topic:
    """Decline a proposal; the reason is shown publicly."""
    topic = existing_topic(db, topic_id)
    reason = reason.strip()
    if topic.status != "proposed":
        raise VotingError(_("Only a waiting proposal can be declined."), 409)
    if not reason or len(reason) > REASON_MAX:
        raise VotingError(
            _("Give a reason readers can see, under %(max)d characters.", max=REASON_MAX)
        )
    topic.status, topic.decline_reason = "declined", reason
    db.flush()
    return topic


def merge_topic(db: Session, duplicate_id: int, kept_id: int, now: datetime) -> int:
    """Merge a duplicate into the kept topic; its votes move there, but a patron who backed
    both keeps one vote on the kept topic. Returns how many votes moved."""
    duplicate, kept = existing_topic(db, duplicate_id), existing_topic(db, kept_id)
    _check_merge(duplicate, kept, now)
    lock_voters(db, select(Vote.user_id).where(Vote.topic_id.in_((duplicate.id, kept.id))))
    backs_kept = select(Vote.user_id).where(Vote.topic_id == kept.id)
    db.execute(delete(Vote).where(Vote.topic_id == duplicate.id, Vote.user_id.in_(backs_kept)))
    moved = rows_touched(
        db.execute(update(Vote).where(Vote.topic_id == duplicate.id).values(topic_id=kept.id))
    )
    duplicate.status, duplicate.merged_into_id = "merged", kept.id
    db.flush()
    return moved


def _check_merge(duplicate: Topic, kept: Topic, now: datetime) -> None:
    if duplicate.id == kept.id:
        raise VotingError(_("A topic cannot be merged into itself."))
    if duplicate.status not in ("proposed", "in_round"):
        raise VotingError(_("Only a proposal or a topic in an open round can be merged."), 409)
    if kept.status in ("declined", "merged"):
        raise VotingError(_("Keep a topic that is neither declined nor merged."), 409)
    if duplicate.round_id is None:
        return
    if kept.round_id != duplicate.round_id:
        raise VotingError(
            _("A topic in a round can only be merged into one of the same round."), 409
        )
    if duplicate.round is not None and duplicate.round.is_closed(now):
        raise VotingError(_("This round has closed; its results are frozen."), 409)
