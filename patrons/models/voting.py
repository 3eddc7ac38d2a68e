"""Voting on coverage: rounds, topics (staff's and patrons' proposals), votes, article links.

Correctness under double submits and concurrent requests comes from the constraints here
(docs/security.md threat 16): one vote per patron and topic (`uq_votes_user_id`), whatever
the code above does; the per-round budget is held by the vote transaction's lock
(patrons/voting/service.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from patrons.core.db import Base

if TYPE_CHECKING:
    from patrons.models.articles import Article

# A topic's life: proposed → in_round → chosen → in_reporting → covered; or declined (with a
# public reason), or merged into another topic (a duplicate).
TOPIC_STATUSES = (
    "proposed",
    "in_round",
    "chosen",
    "in_reporting",
    "covered",
    "declined",
    "merged",
)
# what became of a chosen topic: an article page says patrons chose the story it came from
TOPIC_OUTCOMES = ("chosen", "in_reporting", "covered")


class Round(Base):
    """A voting round on future coverage; closed from `closes_at` on, by the clock alone."""

    __tablename__ = "rounds"
    __table_args__ = (
        CheckConstraint("votes_per_patron > 0", name="votes_per_patron_positive"),
        CheckConstraint("closes_at > opens_at", name="closes_after_opening"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    introduction: Mapped[str] = mapped_column(Text, default="")
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    votes_per_patron: Mapped[int] = mapped_column(default=3)
    # counts shown to readers while the round is open (otherwise only after it closes)
    live_counts: Mapped[bool] = mapped_column(default=False, server_default="0")
    # set on the first read after closing, with each topic's `final_votes`
    frozen_at: Mapped[datetime | None]
    # frozen with the results: voters, and active patrons then (the turnout of a closed round)
    final_voters: Mapped[int | None]
    final_eligible: Mapped[int | None]
    # when the worker queued the results mail to the round's voters (once: voting/closing.py)
    results_mailed_at: Mapped[datetime | None]

    topics: Mapped[list[Topic]] = relationship(back_populates="round", order_by="Topic.id")

    def is_open(self, now: datetime) -> bool:
        return self.opens_at <= now < self.closes_at

    def is_closed(self, now: datetime) -> bool:
        return now >= self.closes_at


class Topic(Base):
    """A coverage topic patrons can back."""

    __tablename__ = "topics"
    __table_args__ = (Index("ix_topics_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="proposed")
    proposed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime | None]
    decline_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="SET NULL"))
    final_votes: Mapped[int | None]  # frozen when the round closes
    covered_at: Mapped[datetime | None]

    round: Mapped[Round | None] = relationship(back_populates="topics")
    articles: Mapped[list[TopicArticle]] = relationship(
        cascade="all, delete-orphan", order_by="TopicArticle.article_id"
    )


class Vote(Base):
    """One patron backing one topic of a round. `round_id` is the topic's, kept here so the
    budget query and the refund withdrawal need no join."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("user_id", "topic_id"),
        Index("ix_votes_round_id_user_id", "round_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    # the payment that gave the right to cast it: a vote counts while that payment does
    # (refunded or lost to a dispute: never again; an open dispute: not until it is won)
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payments.id", ondelete="SET NULL"), index=True
    )


class TopicArticle(Base):
    """An article a covered topic produced."""

    __tablename__ = "topic_articles"

    topic_id: Mapped[int] = mapped_column(
        ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    article: Mapped[Article] = relationship()
