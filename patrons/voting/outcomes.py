"""Outcomes: what became of a closed round's topics. Staff choose topics, link the articles
they produced and mark them covered, which emails the patrons who backed them.

The mail's links start from the SITE_URL setting the caller passes in, never from the
request's Host header (docs/security.md): `article_link` and `round_link` are the paths of
the article page and the round page (tests/voting/test_outcomes.py checks they match the
routes).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlsplit

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons import mail
from patrons.models import Article, Topic, TopicArticle, User
from patrons.voting.participation import topic_voter_ids
from patrons.voting.rules import NEXT_STATUSES, OUTCOMES, VotingError, existing_topic


def article_link(site_url: str, slug: str) -> str:
    """The address of an article's page (articles.article) under the site's address."""
    return f"{site_url}/articles/{quote(slug)}"


def round_link(site_url: str, round_id: int) -> str:
    """The address of a round's public page (voting.round_page) under the site's address."""
    return f"{site_url}/topics/rounds/{round_id}"


def set_topic_status(
    db: Session, topic_id: int, status: str, now: datetime, site_url: str = ""
) -> int:
    """Move a topic of a closed round along: chosen, in reporting, covered (or back). Marking it
    covered (it needs its articles linked first) emails its voters; returns how many.

    `site_url` is the SITE_URL setting, which the mail's links start with (left empty, they
    are paths on the site)."""
    topic = existing_topic(db, topic_id)
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
    return _tell_voters(db, topic, site_url)


def _tell_voters(db: Session, topic: Topic, site_url: str) -> int:
    voters = db.scalars(select(User).where(User.id.in_(topic_voter_ids(topic)))).all()
    articles = [
        (link.article.title, article_link(site_url, link.article.slug)) for link in topic.articles
    ]
    round_url = round_link(site_url, topic.round_id or 0)
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
    topic = existing_topic(db, topic_id)
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
