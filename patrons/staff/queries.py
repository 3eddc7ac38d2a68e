"""The staff pages' own lists: the articles table and the open subscriptions the offline
Stripe's simulations act on. Every other staff page asks a feature's service."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import Article, Pledge, User
from patrons.models.pledges import ENDED_STATUSES

LIMIT = 500  # rows a staff list shows
ARTICLE_STATUSES = ("draft", "published")


def articles(db: Session, status: str | None = None) -> list[Article]:
    """The latest changed articles first; only drafts or published ones when `status` says
    so (any other value: all)."""
    query = select(Article).order_by(Article.updated_at.desc().nulls_last(), Article.id.desc())
    if status in ARTICLE_STATUSES:
        query = query.where(Article.status == status)
    return list(db.scalars(query.limit(LIMIT)))


def open_subscriptions(db: Session) -> list[tuple[Pledge, str | None]]:
    """(pledge, the reader's email; None once the account is deleted) of the pledges not
    ended that have a Stripe subscription, newest first."""
    rows = db.execute(
        select(Pledge, User.email)
        .outerjoin(User, Pledge.user_id == User.id)
        .where(Pledge.status.not_in(ENDED_STATUSES), Pledge.stripe_subscription_id.is_not(None))
        .order_by(Pledge.id.desc())
        .limit(LIMIT)
    )
    return [(pledge, email) for pledge, email in rows]
