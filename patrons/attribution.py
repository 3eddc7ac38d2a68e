"""Which article and which prompt brought a reader: remembered from the banner's or the
notice's link to /support, copied onto the sign-up and onto the pledge.

The links carry `?src=banner|notice&article=<slug>` (the same for every reader: the article
page is cached for anonymous readers). /support keeps the pair in a small first-party cookie
of its own for a week; sign-up and pledge creation read it. Anything unknown is ignored,
never an error: attribution is a report's nicety, not a reason to refuse a reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrons.models import Article, Pledge, User

COOKIE = "pledge_source"
COOKIE_DAYS = 7
PROMPTS = ("banner", "notice")


@dataclass(frozen=True)
class Source:
    article_id: int
    prompt: str

    @property
    def cookie_value(self) -> str:
        return f"{self.article_id}:{self.prompt}"


def _published_article_id(db: Session, **where: Any) -> int | None:
    clauses = [getattr(Article, name) == value for name, value in where.items()]
    return db.scalar(select(Article.id).where(Article.status == "published", *clauses))


def from_link(db: Session, args: Any) -> Source | None:
    """The source named by /support's query string, if it names a prompt and an article."""
    prompt, slug = args.get("src"), args.get("article")
    if prompt not in PROMPTS or not isinstance(slug, str) or not 0 < len(slug) <= 120:
        return None
    article_id = _published_article_id(db, slug=slug)
    return Source(article_id, prompt) if article_id is not None else None


def from_cookie(db: Session, cookies: Any) -> Source | None:
    """The remembered source, if the cookie still names a prompt and a published article."""
    number, _sep, prompt = str(cookies.get(COOKIE, ""))[:24].partition(":")
    if prompt not in PROMPTS or not number.isascii() or not number.isdigit():
        return None
    article_id = int(number)
    if not 0 < article_id < 2**31 or _published_article_id(db, id=article_id) is None:
        return None
    return Source(article_id, prompt)


def remember(response: Any, source: Source | None, secure: bool) -> Any:
    """Set the cookie on `response` when the request came from a prompt's link."""
    if source is not None:
        response.set_cookie(
            COOKIE, source.cookie_value, max_age=COOKIE_DAYS * 86400,
            httponly=True, samesite="Lax", secure=secure,
        )  # fmt: skip
    return response


def stamp_user(db: Session, user: User, cookies: Any) -> None:
    """A new member remembers the source that brought them (if any)."""
    source = from_cookie(db, cookies)
    if source is not None and user.source_prompt is None:
        user.source_article_id, user.source_prompt = source.article_id, source.prompt


def stamp_pledge(db: Session, pledge_id: int, user: User, cookies: Any) -> None:
    """A pledge not yet attributed takes the remembered source, else its reader's sign-up
    source (the last prompt the reader followed wins)."""
    pledge = db.get(Pledge, pledge_id)
    if pledge is None or pledge.source_prompt is not None or pledge.user_id != user.id:
        return
    source = from_cookie(db, cookies)
    if source is not None:
        pledge.source_article_id, pledge.source_prompt = source.article_id, source.prompt
    elif user.source_prompt is not None:
        pledge.source_article_id, pledge.source_prompt = user.source_article_id, user.source_prompt
