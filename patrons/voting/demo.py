"""Voting's share of the demo data (`flask --app patrons seed-demo`): a closed round whose
winning topic was covered by a demo article, another chosen topic still in reporting, and a
patron's proposal waiting for moderation. The open round and its topics come from demo.py.

Every text here was written for this demo. Running it again changes nothing it made before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import Article, Round, Topic, TopicArticle

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


def seed(db: Session, now: datetime, created: list[str]) -> None:
    """Add the past round and the waiting proposal unless they exist; note what was made."""
    if db.scalar(select(Round).where(Round.title == PAST_ROUND["title"])) is None:
        past = Round(
            **PAST_ROUND,
            opens_at=now - timedelta(days=60),
            closes_at=now - timedelta(days=46),
            votes_per_patron=3,
            frozen_at=now - timedelta(days=46),
        )
        db.add(past)
        db.flush()
        for title, description, status, votes, slug in PAST_TOPICS:
            topic = Topic(round_id=past.id, title=title, description=description, status=status,
                          final_votes=votes, created_at=past.opens_at)  # fmt: skip
            article = db.scalar(select(Article).where(Article.slug == slug)) if slug else None
            if article is not None:
                topic.articles.append(TopicArticle(article_id=article.id))
                topic.covered_at = now - timedelta(days=10)
            db.add(topic)
        created.append(f"closed round “{past.title}” with covered topics")
    if db.scalar(select(Topic).where(Topic.title == PROPOSAL[0])) is None:
        db.add(Topic(title=PROPOSAL[0], description=PROPOSAL[1], status="proposed",
                     created_at=now - timedelta(hours=5)))  # fmt: skip
        created.append(f"proposal “{PROPOSAL[0]}” waiting for moderation")
