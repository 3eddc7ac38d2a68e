"""Demo data for `make run`: articles, a voting round with topics, a staff account.

Every text here was written for this demo; none is copied from a real outlet.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.accounts import auth
from patrons.articles import service
from patrons.core import clock
from patrons.demo.content import ARTICLES, ROUND, TOPICS
from patrons.models import Round, Topic
from patrons.reports import demo as reports_demo
from patrons.voting import demo as voting_demo

DEMO_STAFF_EMAIL = "staff@example.org"
DEMO_STAFF_PASSWORD = "demo-staff-password"  # noqa: S105  (demo only; seed-demo refuses production)


def seed(db: Session) -> str:
    """Create what is missing; running it again changes nothing it made before."""
    created: list[str] = []
    if auth.find_user_by_email(db, DEMO_STAFF_EMAIL) is None:
        auth.create_or_promote_staff(db, DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD)
        created.append(f"staff {DEMO_STAFF_EMAIL} (password: {DEMO_STAFF_PASSWORD})")
    now = clock.now()
    for days_ago, data in ARTICLES:
        key = f"demo:{data['slug']}"
        if service.article_by_slug(db, data["slug"]) is not None:
            continue
        published = now - timedelta(days=days_ago, hours=3)
        draft = service.ArticleDraft(**data, published_at=published, updated_at=published)
        article = service.save_article(db, draft)
        article.source_key = key
        service.publish(article)
        created.append(f"article /articles/{article.slug}")
    demo_round = db.scalar(select(Round).where(Round.title == ROUND["title"]))
    if demo_round is None:
        demo_round = Round(
            title=ROUND["title"],
            introduction=ROUND["introduction"],
            opens_at=now - timedelta(days=2),
            closes_at=now + timedelta(days=12),
        )
        db.add(demo_round)
        created.append(f"round “{demo_round.title}”")
    for title, description in TOPICS:
        if db.scalar(select(Topic).where(Topic.title == title)) is None:
            db.add(Topic(title=title, description=description, status="in_round", round=demo_round))
            created.append(f"topic “{title}”")
    db.flush()
    reports_demo.seed(db, now, created)  # a year of patrons, payments and counters
    # then what the patrons did: a closed round with its votes and covered topics, votes in
    # the open round, a proposal
    voting_demo.seed(db, now, created, demo_round)
    if not created:
        return "Demo data already loaded; nothing to do."
    return "Created:\n  " + "\n  ".join(created)
