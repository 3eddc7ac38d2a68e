"""Plain factory functions for test data; each commits what it makes."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from patrons.articles import service
from patrons.core import clock
from patrons.models import Article, Payment, Pledge, Round, Topic, User
from tests.conftest import PRODUCTION_HASHING, TEST_HASHING

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def password_hash(cost: dict[str, int]) -> str:
    """PASSWORD hashed as an app with these PASSWORD_HASH_* settings hashes it (Argon2id)."""
    return PasswordHasher(
        time_cost=cost["password_hash_time_cost"],
        memory_cost=cost["password_hash_memory_cost"],
        parallelism=cost["password_hash_parallelism"],
    ).hash(PASSWORD)


# tests share one hash of the common password, at the test apps' cost (conftest's
# TEST_HASHING: a sign-in neither pays the production cost nor rehashes)
_PASSWORD_HASH = password_hash(TEST_HASHING)


@cache
def production_password_hash() -> str:
    """For a user of an app at the production cost (`@pytest.mark.production_hashing`):
    make_user(db, password_hash=production_password_hash())."""
    return password_hash(PRODUCTION_HASHING)


def make_user(db: Session, email: str | None = None, is_staff: bool = False, **kw: object) -> User:
    """A member whose address is confirmed (pass email_verified_at=None for one who has not
    confirmed it: such a reader cannot start a pledge)."""
    kw.setdefault("password_hash", _PASSWORD_HASH)
    kw.setdefault("email_verified_at", clock.now())
    user = User(
        email=email or f"reader{next(_seq)}@example.org",
        is_staff=is_staff,
        **kw,
    )
    db.add(user)
    db.commit()
    return user


def make_staff(db: Session, email: str = "editor@example.org") -> User:
    return make_user(db, email=email, is_staff=True)


def make_article(
    db: Session,
    title: str | None = None,
    body: str = "The first sentence. The second sentence here.",
    tags: tuple[str, ...] = (),
    published: bool = True,
    days_ago: float = 1,
    **kw: object,
) -> Article:
    n = next(_seq)
    draft = service.ArticleDraft(
        title=title or f"Article number {n}",
        body_source=body,
        tags=tags,
        published_at=clock.now() - timedelta(days=days_ago),
        **kw,  # type: ignore[arg-type]
    )
    article = service.save_article(db, draft)
    if published:
        service.publish(article)
    db.commit()
    return article


def make_patron(
    db: Session,
    status: str = "active",
    paid: bool = True,
    failed_at: datetime | None = None,
    **kw: object,
) -> User:
    """A member with a pledge in `status`, and a paid first invoice unless `paid` is False;
    `past_due` adds a renewal refused at `failed_at` (default now)."""
    user = make_user(db, **kw)
    pledge = Pledge(
        user_id=user.id,
        amount=500,
        currency="EUR",
        status=status,
        stripe_customer_id=f"cus_test{user.id}",
        stripe_subscription_id=f"sub_test{user.id}",
        current_period_end=clock.now() + timedelta(days=20),
        created_at=clock.now(),
    )
    db.add(pledge)
    db.flush()
    if paid:
        db.add(
            Payment(
                pledge_id=pledge.id,
                stripe_invoice_id=f"in_test{user.id}",
                amount=500,
                currency="EUR",
                status="paid",
                created_at=clock.now(),
                paid_at=clock.now(),
            )
        )
    if status == "past_due":  # the renewal that failed, just now: within the grace period
        db.add(
            Payment(
                pledge_id=pledge.id,
                stripe_invoice_id=f"in_test{user.id}_renewal",
                amount=500,
                currency="EUR",
                status="failed",
                billing_reason="subscription_cycle",
                created_at=clock.now(),
                first_failed_at=failed_at or clock.now(),
                failure_notified_attempt=1,
            )
        )
    db.commit()
    return user


def make_round(
    db: Session,
    title: str = "What should we cover next?",
    opens_in_days: float = -1,
    closes_in_days: float = 7,
    topics: tuple[str, ...] = (),
    **kw: object,
) -> Round:
    """A voting round (open now by default) with topics in it."""
    now = clock.now()
    found = Round(
        title=title,
        opens_at=now + timedelta(days=opens_in_days),
        closes_at=now + timedelta(days=closes_in_days),
        **kw,
    )
    db.add(found)
    db.flush()
    for topic_title in topics:
        db.add(Topic(round_id=found.id, title=topic_title, status="in_round", created_at=now))
    db.commit()
    return found


def make_proposal(db: Session, user: User | None = None, title: str = "Bus routes") -> Topic:
    topic = Topic(title=title, status="proposed", created_at=clock.now(),
                  proposed_by_id=user.id if user else None)  # fmt: skip
    db.add(topic)
    db.commit()
    return topic
