"""One member's history for staff: pledges with their status changes, payments, votes and
the emails sent to the member's current address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import (
    Article,
    OutboundEmail,
    Payment,
    Pledge,
    PledgeStatusChange,
    Round,
    Topic,
    User,
    Vote,
)

EMAILS = 200  # the latest; older ones stay in the database


@dataclass
class MemberHistory:
    pledges: list[Pledge]
    changes: dict[int, list[PledgeStatusChange]]
    payments: list[Payment]
    votes: list[Any]  # (Vote, topic title, round title)
    emails: list[OutboundEmail]
    source_title: str | None


def history(db: Session, user: User) -> MemberHistory:
    pledges = list(db.scalars(
        select(Pledge).where(Pledge.user_id == user.id).order_by(Pledge.created_at.desc())
    ))  # fmt: skip
    ids = [p.id for p in pledges]
    changes: dict[int, list[PledgeStatusChange]] = {i: [] for i in ids}
    for change in db.scalars(
        select(PledgeStatusChange)
        .where(PledgeStatusChange.pledge_id.in_(ids))
        .order_by(PledgeStatusChange.changed_at, PledgeStatusChange.id)
    ):
        changes[change.pledge_id].append(change)
    payments = list(db.scalars(
        select(Payment).where(Payment.pledge_id.in_(ids))
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    ))  # fmt: skip
    votes = db.execute(
        select(Vote, Topic.title, Round.title)
        .join(Topic, Vote.topic_id == Topic.id)
        .join(Round, Vote.round_id == Round.id)
        .where(Vote.user_id == user.id)
        .order_by(Vote.created_at.desc())
    ).all()
    emails = list(db.scalars(
        select(OutboundEmail).where(OutboundEmail.to_address == user.email)
        .order_by(OutboundEmail.created_at.desc(), OutboundEmail.id.desc()).limit(EMAILS)
    ))  # fmt: skip
    source = db.get(Article, user.source_article_id) if user.source_article_id else None
    return MemberHistory(pledges, changes, payments, list(votes), emails,
                         source.title if source else None)  # fmt: skip
