"""Articles: reading them (public) and writing them (staff, feed import)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from patrons.articles.sanitize import render_body
from patrons.core import clock
from patrons.core.urls import is_http_url, safe_next
from patrons.models import Article, ArticleTag, Round, Tag, Topic, TopicArticle
from patrons.models.voting import TOPIC_OUTCOMES

PAGE_SIZE = 10
SLUG_MAX = 120
_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


class ArticleError(ValueError):
    """Article data that cannot be saved; the message is shown to staff next to `field`."""

    def __init__(self, message: str, field: str = "title") -> None:
        super().__init__(message)
        self.field = field


# C0 control characters other than tab and newlines: invalid in XML feeds, NUL in PostgreSQL
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_controls(text: str) -> str:
    return _CONTROL.sub("", text)


def slugify(text: str, max_length: int = SLUG_MAX) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SLUG_STRIP.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


@dataclass(frozen=True)
class Page:
    items: list[Article]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def _published() -> Select[Article]:
    return select(Article).where(Article.status == "published", Article.published_at <= clock.now())


def latest_articles(db: Session, page: int = 1, tag: Tag | None = None) -> Page:
    """One page of published articles, newest first; `has_next` without a COUNT."""
    query = _published()
    if tag is not None:
        query = query.join(ArticleTag).where(ArticleTag.tag_id == tag.id)
    query = query.order_by(Article.published_at.desc(), Article.id.desc())
    rows = list(db.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return Page(items=rows[:PAGE_SIZE], number=page, has_next=len(rows) > PAGE_SIZE)


def published_article(db: Session, slug: str) -> Article | None:
    return db.scalar(_published().where(Article.slug == slug))


def is_published(db: Session, article_id: int) -> bool:
    """Whether readers can see this article now (what `published_article` finds)."""
    return bool(db.scalar(select(_published().where(Article.id == article_id).exists())))


def article_by_slug(db: Session, slug: str) -> Article | None:
    return db.scalar(select(Article).where(Article.slug == slug))


def article_by_source_key(db: Session, key: str) -> Article | None:
    """The article an import (or the demo) made from the item with this key."""
    return db.scalar(select(Article).where(Article.source_key == key))


def tag_by_slug(db: Session, slug: str) -> Tag | None:
    return db.scalar(select(Tag).where(Tag.slug == slug))


def related_articles(db: Session, article: Article, limit: int = 3) -> list[Article]:
    """Articles sharing the most tags first, then the most recent."""
    tag_ids = [t.id for t in article.tags]
    chosen: list[Article] = []
    if tag_ids:
        shared = (
            select(ArticleTag.article_id, func.count().label("shared"))
            .where(ArticleTag.tag_id.in_(tag_ids), ArticleTag.article_id != article.id)
            .group_by(ArticleTag.article_id)
            .subquery()
        )
        query = (
            _published()
            .join(shared, shared.c.article_id == Article.id)
            .order_by(shared.c.shared.desc(), Article.published_at.desc())
            .limit(limit)
        )
        chosen = list(db.scalars(query))
    if len(chosen) < limit:
        skip = [article.id, *(a.id for a in chosen)]
        recent = (
            _published()
            .where(Article.id.not_in(skip))
            .order_by(Article.published_at.desc())
            .limit(limit - len(chosen))
        )
        chosen.extend(db.scalars(recent))
    return chosen


@dataclass(frozen=True)
class PatronChoice:
    """A round in which patrons chose a topic this article came from (the article page says so)."""

    round_id: int
    round_title: str


def patron_choices(db: Session, article_id: int) -> list[PatronChoice]:
    """The rounds whose chosen topics produced this article (staff link them: voting/outcomes),
    one statement, computed by the view before the page renders (no query from a template)."""
    rows = db.execute(
        select(Round.id, Round.title)
        .join(Topic, Topic.round_id == Round.id)
        .join(TopicArticle, TopicArticle.topic_id == Topic.id)
        .where(TopicArticle.article_id == article_id, Topic.status.in_(TOPIC_OUTCOMES))
        .order_by(Topic.id)
    )
    return [PatronChoice(round_id, title) for round_id, title in rows]


def recent_for_feed(db: Session, limit: int = 30) -> list[Article]:
    return list(db.scalars(_published().order_by(Article.published_at.desc()).limit(limit)))


@dataclass
class ArticleDraft:
    """What staff (or an import) send for one article; validated by `save_article`."""

    title: str
    body_source: str
    body_format: str = "markdown"
    slug: str = ""
    summary: str = ""
    author_name: str = ""
    editor_name: str = ""
    tags: tuple[str, ...] = ()
    lead_image_url: str = ""
    lead_image_alt: str = ""
    lead_image_caption: str = ""
    lead_image_credit: str = ""
    canonical_url: str = ""
    published_at: datetime | None = None
    updated_at: datetime | None = None


def _clean_url(value: str, field: str, error: str, allow_path: bool = False) -> str | None:
    value = value.strip()
    if not value:
        return None
    if allow_path and safe_next(value, "") == value and len(value) <= 1000:
        return value  # a path on this site, e.g. /static/...
    if not is_http_url(value) or len(value) > 1000:
        raise ArticleError(error, field)
    return value


def save_article(db: Session, draft: ArticleDraft, article: Article | None = None) -> Article:
    """Create or update an article from a draft; the body is rendered and sanitised here."""
    title = " ".join(strip_controls(draft.title).split())
    if not title:
        raise ArticleError(_("An article needs a title."))
    slug = slugify(draft.slug or title)
    if not slug:
        raise ArticleError(_("The slug must contain letters or digits."), "slug")
    other = article_by_slug(db, slug)
    if other is not None and other is not article:
        raise ArticleError(
            _("Another article already uses the address /articles/%(slug)s.", slug=slug), "slug"
        )
    # every check before anything is changed: a refused draft leaves the session untouched
    lead_image_url = _clean_url(
        draft.lead_image_url,
        "lead_image_url",
        _("The lead image must be an http(s) address."),
        allow_path=True,
    )
    canonical_url = _clean_url(
        draft.canonical_url, "canonical_url", _("The canonical URL must be an http(s) address.")
    )
    if article is None:
        article = Article(slug=slug, status="draft")
        db.add(article)
    article.slug = slug
    article.title = title[:300]
    article.summary = strip_controls(draft.summary).strip()
    article.body_format = draft.body_format
    article.body_source = strip_controls(draft.body_source)
    article.body_html = render_body(article.body_source, draft.body_format)
    article.author_name = strip_controls(draft.author_name).strip()[:200]
    article.editor_name = strip_controls(draft.editor_name).strip()[:200]
    article.lead_image_url = lead_image_url
    article.lead_image_alt = strip_controls(draft.lead_image_alt).strip()[:300]
    article.lead_image_caption = strip_controls(draft.lead_image_caption).strip()[:500]
    article.lead_image_credit = strip_controls(draft.lead_image_credit).strip()[:200]
    article.canonical_url = canonical_url
    if draft.published_at is not None:
        article.published_at = draft.published_at
    article.updated_at = draft.updated_at or clock.now()
    article.tags = [tag_for_name(db, name) for name in _unique_tags(draft.tags)]
    return article


def _unique_tags(names: tuple[str, ...]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        name = " ".join(strip_controls(name).split())[:80]
        if name and slugify(name) and slugify(name) not in seen:
            seen[slugify(name)] = name
    return list(seen.values())[:20]


def tag_for_name(db: Session, name: str) -> Tag:
    slug = slugify(name, 80)
    tag = db.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None:
        tag = Tag(slug=slug, name=name)
        db.add(tag)
    return tag


def publish(article: Article) -> None:
    article.status = "published"
    if article.published_at is None:
        article.published_at = clock.now()


def unpublish(article: Article) -> None:
    article.status = "draft"
