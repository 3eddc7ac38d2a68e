"""Voting's share of the demo data (`flask --app patrons seed-demo`): a closed round whose
winning topic was covered by a demo article, another chosen topic still in reporting, and a
patron's proposal waiting for moderation; votes by the demo patrons in it and in the open
round (which, with its topics, comes from patrons/demo). Seeded after the demo patrons
(patrons/reports/demo.py).

The closed round's results are real votes, each with the payment that gave its patron the
right to cast it, frozen as any round is (participation.results): every screen counts them
the same way. (Its results used to be written straight into `final_votes` with no votes
behind them, so the reports, which counted votes, said 0 voters and 0 votes.)

Every text here was written for this demo. Running it again changes nothing it made before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from patrons.models import Article, Payment, Pledge, Round, Topic, TopicArticle, User, Vote
from patrons.models.pledges import COUNTING_PAYMENT_STATUSES
from patrons.pledges.entitlement import GRACE_DAYS, rights_payment_id
from patrons.voting.participation import results

DEMO_VOTERS = "%@demo.example.org"  # the demo patrons' addresses (patrons/reports/demo.py)
OPEN_ROUND_VOTERS = 24

PAST_ROUND = {
    "title": "Autumn: which stories from the river towns?",
    "introduction": (
        "Patrons backed up to three topics from the towns along the river. Votes guided our "
        "editors; they did not buy coverage."
    ),
}
# (title, description, status, final votes, slug of the article it produced)
PAST_TOPICS = [
    ("The ferry crossing at Bilyi Brid",
     "Since the bridge went, one ferry carries a town to work and school. Who keeps it going?",
     "covered", 41, "bilyi-brid-ferry-returns"),
    ("Village libraries after the blackouts",
     "How small libraries became warm rooms with Wi-Fi, and what they need for the winter.",
     "covered", 33, "sosnivka-library-generator"),
    ("Grain that cannot reach the port",
     "A cooperative looks for new routes for its harvest.",
     "in_reporting", 27, None),
    ("Bus timetables in the outer villages",
     "Fewer buses, longer walks: who decided, and what it costs the people who ride them.",
     "in_round", 12, None),
]  # fmt: skip
PROPOSAL = (
    "Water quality in the old wells",
    "Several villages went back to wells when the mains failed. Has anyone tested them?",
)


def seed(db: Session, now: datetime, created: list[str], open_round: Round | None = None) -> None:
    """Add the past round (with its votes) and the waiting proposal unless they exist, and
    votes in the open round if it has none; note what was made."""
    if db.scalar(select(Round).where(Round.title == PAST_ROUND["title"])) is None:
        past = Round(
            **PAST_ROUND,
            opens_at=now - timedelta(days=60),
            closes_at=now - timedelta(days=46),
            votes_per_patron=3,
        )
        db.add(past)
        db.flush()
        for title, description, status, _votes, slug in PAST_TOPICS:
            topic = Topic(round_id=past.id, title=title, description=description, status=status,
                          created_at=past.opens_at)  # fmt: skip
            article = db.scalar(select(Article).where(Article.slug == slug)) if slug else None
            if article is not None:
                topic.articles.append(TopicArticle(article_id=article.id))
                topic.covered_at = now - timedelta(days=10)
            db.add(topic)
        db.flush()
        _past_votes(db, past)
        results(db, past, past.closes_at, GRACE_DAYS)  # frozen as the first read after the close
        created.append(f"closed round “{past.title}” with covered topics and its votes")
    if open_round is not None and open_round.id is not None:
        _open_votes(db, open_round, now, created)
    if db.scalar(select(Topic).where(Topic.title == PROPOSAL[0])) is None:
        db.add(Topic(title=PROPOSAL[0], description=PROPOSAL[1], status="proposed",
                     created_at=now - timedelta(hours=5)))  # fmt: skip
        created.append(f"proposal “{PROPOSAL[0]}” waiting for moderation")


def _paid_during(db: Session, found: Round) -> list[tuple[int, int]]:
    """(user id, payment id) of the demo patrons with a payment that counts, paid in the
    month before the round closed: the payment that gave them the right to vote in it."""
    rows = db.execute(
        select(Pledge.user_id, Payment.id)
        .join(Payment, Payment.pledge_id == Pledge.id)
        .join(User, User.id == Pledge.user_id)
        .where(
            User.email.like(DEMO_VOTERS),
            Payment.status.in_(COUNTING_PAYMENT_STATUSES),
            Payment.paid_at < found.opens_at + timedelta(days=1),
            Payment.paid_at >= found.opens_at - timedelta(days=30),
        )
        .order_by(Pledge.user_id, Payment.paid_at.desc())
    )
    latest: dict[int, int] = {}
    for user_id, payment_id in rows:
        if user_id is not None:
            latest.setdefault(user_id, payment_id)
    return sorted(latest.items())


def _past_votes(db: Session, past: Round) -> None:
    """Votes giving PAST_TOPICS' counts (as many as the demo patrons allow): the first N
    voters back a topic of N votes, the last topic's voters are taken after the third's,
    so nobody casts more than the round's three votes."""
    voters = _paid_during(db, past)
    start = 0
    counts = [wanted for *_rest, wanted, _slug in PAST_TOPICS]
    for n, (topic, wanted) in enumerate(zip(past.topics, counts, strict=True)):
        if n == len(PAST_TOPICS) - 1:
            start = counts[2]  # after the third topic's voters: at most three votes each
        for i, (user_id, payment_id) in enumerate(voters[start : start + wanted]):
            db.add(Vote(user_id=user_id, topic_id=topic.id, round_id=past.id,
                        payment_id=payment_id,
                        created_at=past.opens_at + timedelta(hours=1 + i)))  # fmt: skip
    db.flush()


def _open_votes(db: Session, found: Round, now: datetime, created: list[str]) -> None:
    """A few demo patrons back one to three topics of the open round."""
    if db.scalar(select(exists().where(Vote.round_id == found.id))) or not found.topics:
        return
    users = db.scalars(select(User.id).where(User.email.like(DEMO_VOTERS)).order_by(User.id)).all()
    cast = 0
    for n, user_id in enumerate(users):
        payment_id = rights_payment_id(db, user_id, now)
        if payment_id is None:
            continue
        topics = {found.topics[(n + 2 * k) % len(found.topics)].id for k in range(1 + n % 3)}
        for topic_id in sorted(topics):
            at = now - timedelta(minutes=10 + n)
            db.add(Vote(user_id=user_id, topic_id=topic_id, round_id=found.id,
                        payment_id=payment_id, created_at=at))  # fmt: skip
        cast += 1
        if cast == OPEN_ROUND_VOTERS:
            break
    db.flush()
    created.append(f"votes of {cast} demo patrons in the open round")
