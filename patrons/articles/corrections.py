"""Correction suggestions: readers send them, staff resolve or decline them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrons.articles.service import strip_controls
from patrons.core import clock
from patrons.models import Article, CorrectionSuggestion, User

SELECTION_MAX = 1000
CONTEXT_MAX = 2000
COMMENT_MAX = 2000


@dataclass(frozen=True)
class CorrectionCounts:
    article: Article
    open: int
    resolved: int
    declined: int


def suggest_correction(
    db: Session,
    article: Article | None,
    selection: str,
    context: str,
    comment: str,
    email: str | None,
) -> CorrectionSuggestion:
    """Store a reader's suggestion for staff; inputs were length-checked by the form."""
    suggestion = CorrectionSuggestion(
        article_id=article.id if article else None,
        selection=strip_controls(selection).strip(),
        context=strip_controls(context).strip(),
        comment=strip_controls(comment).strip(),
        email=(email or "").strip().lower() or None,
        status="open",
        created_at=clock.now(),
    )
    db.add(suggestion)
    return suggestion


def suggestions(
    db: Session, article_id: int | None = None, status: str | None = "open"
) -> list[CorrectionSuggestion]:
    query = select(CorrectionSuggestion).order_by(CorrectionSuggestion.created_at.desc())
    if article_id is not None:
        query = query.where(CorrectionSuggestion.article_id == article_id)
    if status:
        query = query.where(CorrectionSuggestion.status == status)
    return list(db.scalars(query.limit(500)))


def counts_per_article(db: Session) -> list[CorrectionCounts]:
    status = CorrectionSuggestion.status
    rows = db.execute(
        select(
            Article,
            func.count().filter(status == "open"),
            func.count().filter(status == "resolved"),
            func.count().filter(status == "declined"),
        )
        .join(CorrectionSuggestion, CorrectionSuggestion.article_id == Article.id)
        .group_by(Article.id)
        .order_by(func.count().filter(status == "open").desc(), Article.id.desc())
    )
    return [CorrectionCounts(a, o, r, d) for a, o, r, d in rows]


def handle_suggestion(
    db: Session, suggestion: CorrectionSuggestion, status: str, staff: User
) -> None:
    """Mark a suggestion resolved or declined (or open again)."""
    if status not in ("open", "resolved", "declined"):
        raise ValueError(status)
    suggestion.status = status
    suggestion.handled_at = None if status == "open" else clock.now()
    suggestion.handled_by_id = None if status == "open" else staff.id
