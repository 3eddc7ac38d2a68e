"""Voting on coverage: rounds, proposals and their moderation, votes, results, covered topics.

Services take the session and never commit; the view commits once. Two rules hold whatever
the requests do at the same moment (security.md threats 16-17):

- one vote per patron and topic: the `UNIQUE(user_id, topic_id)` key, with an insert that
  does nothing on conflict (a double submit is the same vote, not an error);
- the per-round budget and the patron check: a vote takes the voter's lock first (the user
  row `FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` on SQLite, where writers queue anyway),
  and only then counts the voter's votes and checks that they are an active patron. The
  refund/dispute withdrawal takes the same lock, so a vote and a refund never interleave.

A round is open from `opens_at` until `closes_at`, by the clock alone. Its results are the
votes cast before `closes_at` (nothing can add or withdraw one after it) and are copied onto
the topics on the first read after the close (`frozen_at`), so later changes, such as a
deleted account, leave them as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, selectinload

from patrons import mail
from patrons.core.db import insert_or_ignore
from patrons.models import Article, Payment, Pledge, Round, Topic, TopicArticle, User, Vote
from patrons.pledges.entitlement import is_active_patron, user_is_active_patron

TITLE_MAX = 120  # a proposal's title (staff may use the column's 200)
DESCRIPTION_MAX = 600
REASON_MAX = 500
WAITING_PROPOSALS_MAX = 5  # proposals of one patron waiting for moderation at once
VOTES_PER_PATRON_MAX = 20
# topics a reader sees in a round (not the merged or declined ones)
LISTED = ("in_round", "chosen", "in_reporting", "covered")
OUTCOMES = ("chosen", "in_reporting", "covered")
# what staff may move a topic of a closed round to, from each status
NEXT_STATUSES = {
    "in_round": ("chosen",),
    "chosen": ("in_round", "in_reporting", "covered"),
    "in_reporting": ("chosen", "covered"),
    "covered": (),
}


class VotingError(Exception):
    """What went wrong, in words for the reader, and the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# -- locks -----------------------------------------------------------------------------------


def _lock_voters(db: Session, user_ids: Iterable[int] | object) -> None:
    """Serialise with every other vote of these users (see the module's docstring)."""
    if db.get_bind().dialect.name == "sqlite":
        conn = db.connection()
        # pysqlite opens a transaction at the first write only (patrons/core/db.py): none open means
        # nothing written yet, so take the write lock now; one open already holds it.
        if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    ids = select(User.id).where(User.id.in_(user_ids)).order_by(User.id)  # type: ignore[arg-type]
    db.execute(ids.with_for_update())


# -- rounds ----------------------------------------------------------------------------------


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


def save_round(db: Session, draft: RoundDraft, now: datetime, found: Round | None = None) -> Round:
    """Open a new round, or change one whose results are not frozen yet."""
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
    target = found or Round()
    target.title = draft.title.strip()
    target.introduction = draft.introduction.strip()
    target.opens_at, target.closes_at = draft.opens_at, draft.closes_at
    target.votes_per_patron, target.live_counts = draft.votes_per_patron, draft.live_counts
    db.add(target)
    db.flush()
    return target


def close_round(db: Session, found: Round, now: datetime) -> None:
    """Close an open round now: the same as its closing time arriving."""
    if not found.is_open(now):
        raise VotingError(_("Only an open round can be closed."), 409)
    _lock_voters(db, select(Vote.user_id).where(Vote.round_id == found.id))
    found.closes_at = now
    db.flush()


def _has_votes(db: Session, found: Round) -> bool:
    return bool(db.scalar(select(exists().where(Vote.round_id == found.id))))


# -- topics and proposals --------------------------------------------------------------------


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


def _topic(db: Session, topic_id: int) -> Topic:
    topic = db.get(Topic, topic_id)
    if topic is None:
        raise VotingError(_("There is no such topic."), 404)
    return topic


def approve_topic(db: Session, topic_id: int, round_id: int, now: datetime) -> Topic:
    """Move a proposal into a round that has not closed."""
    topic = _topic(db, topic_id)
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
    topic = _topic(db, topic_id)
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
    duplicate, kept = _topic(db, duplicate_id), _topic(db, kept_id)
    if duplicate.id == kept.id:
        raise VotingError(_("A topic cannot be merged into itself."))
    if duplicate.status not in ("proposed", "in_round"):
        raise VotingError(_("Only a proposal or a topic in an open round can be merged."), 409)
    if kept.status in ("declined", "merged"):
        raise VotingError(_("Keep a topic that is neither declined nor merged."), 409)
    if duplicate.round_id is not None:
        if kept.round_id != duplicate.round_id:
            raise VotingError(
                _("A topic in a round can only be merged into one of the same round."), 409
            )
        if duplicate.round is not None and duplicate.round.is_closed(now):
            raise VotingError(_("This round has closed; its results are frozen."), 409)
    _lock_voters(db, select(Vote.user_id).where(Vote.topic_id.in_((duplicate.id, kept.id))))
    backs_kept = select(Vote.user_id).where(Vote.topic_id == kept.id)
    db.execute(delete(Vote).where(Vote.topic_id == duplicate.id, Vote.user_id.in_(backs_kept)))
    moved = db.execute(
        update(Vote).where(Vote.topic_id == duplicate.id).values(topic_id=kept.id)
    ).rowcount
    duplicate.status, duplicate.merged_into_id = "merged", kept.id
    db.flush()
    return moved or 0


def set_topic_status(db: Session, topic_id: int, status: str, now: datetime) -> int:
    """Move a topic of a closed round along: chosen, in reporting, covered (or back). Marking it
    covered (it needs its articles linked first) emails its voters; returns how many."""
    topic = _topic(db, topic_id)
    if topic.round is None or not topic.round.is_closed(now):
        raise VotingError(_("Topics are chosen once their round has closed."), 409)
    if status not in NEXT_STATUSES.get(topic.status, ()):
        raise VotingError(_("A topic cannot go from this status to that one."), 409)
    if status == "covered" and not topic.articles:
        raise VotingError(
            _("Link the articles this topic produced before marking it covered."), 409
        )
    topic.status = status
    if status != "covered":
        db.flush()
        return 0
    topic.covered_at = now
    db.flush()
    return _tell_voters(db, topic)


def _tell_voters(db: Session, topic: Topic) -> int:
    voters = db.scalars(
        select(User).join(Vote, Vote.user_id == User.id).where(Vote.topic_id == topic.id)
    ).all()
    articles = [
        (link.article.title, url_for("articles.article", slug=link.article.slug, _external=True))
        for link in topic.articles
    ]
    round_url = url_for("voting.round_page", round_id=topic.round_id, _external=True)
    for voter in voters:
        mail.queue_message(
            db, voter.email, "topic_covered",
            _("The story you voted for is out: %(title)s", title=topic.title),
            topic_title=topic.title, articles=articles, round_url=round_url,
        )  # fmt: skip
    return len(voters)


def article_slug(text: str) -> str:
    """The slug from what staff paste: a slug, a path or a full address of an article page."""
    try:
        path = urlsplit(text.strip()).path.rstrip("/")
    except ValueError:  # e.g. "http://[::1" : not an address at all
        return ""
    return path.rpartition("/articles/")[2] if "/articles/" in path else path.strip("/")


def link_article(db: Session, topic_id: int, address: str) -> Article:
    """Link an article the topic produced (a chosen, in-reporting or covered topic)."""
    topic = _topic(db, topic_id)
    if topic.status not in OUTCOMES:
        raise VotingError(_("Only a chosen topic can have articles linked."), 409)
    slug = article_slug(address)[:200]
    article = db.scalar(select(Article).where(Article.slug == slug)) if slug else None
    if article is None or not article.is_published:
        raise VotingError(_("No published article has that address."))
    if not any(link.article_id == article.id for link in topic.articles):
        topic.articles.append(TopicArticle(article_id=article.id))
        db.flush()
    return article


def chosen_by_patrons(db: Session, article_id: int) -> list[Topic]:
    """The topics, chosen by patrons, that produced this article."""
    return list(
        db.scalars(
            select(Topic)
            .join(TopicArticle, TopicArticle.topic_id == Topic.id)
            .where(TopicArticle.article_id == article_id, Topic.status.in_(OUTCOMES))
            .options(selectinload(Topic.round))
        )
    )


# -- votes -----------------------------------------------------------------------------------


def _open_topic(db: Session, topic_id: int, now: datetime) -> tuple[Topic, Round]:
    topic = db.get(Topic, topic_id)
    found = db.get(Round, topic.round_id) if topic and topic.round_id else None
    if topic is None or found is None or topic.status != "in_round" or now < found.opens_at:
        raise VotingError(_("There is no such topic in an open round."), 404)
    if found.is_closed(now):
        raise VotingError(_("This round has closed: votes can no longer change."), 409)
    return topic, found


def cast_vote(db: Session, user_id: int, topic_id: int, now: datetime, grace_days: int) -> bool:
    """Back a topic. True if a vote was added, False if the patron backed it already."""
    topic, found = _open_topic(db, topic_id, now)
    _lock_voters(db, [user_id])
    if not user_is_active_patron(db, user_id, now, grace_days):
        raise VotingError(_("Only patrons whose payment has gone through can vote."), 403)
    mine = set(
        db.scalars(select(Vote.topic_id).where(Vote.user_id == user_id, Vote.round_id == found.id))
    )
    if topic.id in mine:
        return False
    if len(mine) >= found.votes_per_patron:
        raise VotingError(
            _("You have used all %(count)d of your votes in this round. Withdraw one to back "
              "another topic.", count=found.votes_per_patron), 409,
        )  # fmt: skip
    vote = {"user_id": user_id, "topic_id": topic.id, "round_id": found.id, "created_at": now}
    added = db.execute(insert_or_ignore(db, Vote, vote, [Vote.user_id, Vote.topic_id]))
    return bool(added.rowcount)


def withdraw_vote(db: Session, user_id: int, topic_id: int, now: datetime) -> bool:
    """Withdraw a vote while the round is open. False if there was none."""
    topic, _found = _open_topic(db, topic_id, now)
    _lock_voters(db, [user_id])
    gone = db.execute(delete(Vote).where(Vote.user_id == user_id, Vote.topic_id == topic.id))
    return bool(gone.rowcount)


def withdraw_votes_of_user(db: Session, user_id: int, now: datetime) -> int:
    """A patron's payment was refunded or disputed: their votes in open rounds go.

    Called by the pledge records in the transaction that records the refund or dispute.
    """
    _lock_voters(db, [user_id])
    still_open = select(Round.id).where(Round.closes_at > now)
    gone = db.execute(delete(Vote).where(Vote.user_id == user_id, Vote.round_id.in_(still_open)))
    return gone.rowcount or 0


def withdraw_votes_on_refund(db: Session, *, user_id: int, now: datetime) -> None:
    """The receiver of signals.payment_taken_back (connected in voting.register)."""
    withdraw_votes_of_user(db, user_id, now)


def votes_of(db: Session, user_id: int, round_ids: Iterable[int]) -> set[int]:
    """The topic ids this patron backs in these rounds."""
    ids = list(round_ids)
    if not ids:
        return set()
    query = select(Vote.topic_id).where(Vote.user_id == user_id, Vote.round_id.in_(ids))
    return set(db.scalars(query))


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


# -- staff figures ---------------------------------------------------------------------------


def eligible_patrons(db: Session, now: datetime, grace_days: int) -> int:
    """How many readers are active patrons now (the same rule as `user_is_active_patron`)."""
    paid = exists().where(Payment.pledge_id == Pledge.id, Payment.status == "paid")
    rows = db.execute(
        select(Pledge.user_id, Pledge.status, Pledge.current_period_end, paid.label("paid"))
        .where(Pledge.user_id.is_not(None))
    )  # fmt: skip
    return len(
        {
            r.user_id
            for r in rows
            if is_active_patron(r.status, r.paid, r.current_period_end, now, grace_days)
        }
    )


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
