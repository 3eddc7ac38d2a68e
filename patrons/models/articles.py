from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from patrons.core.db import Base

ARTICLE_STATUSES = ("draft", "published")
BODY_FORMATS = ("markdown", "html")
CORRECTION_STATUSES = ("open", "resolved", "declined")


class ArticleTag(Base):
    __tablename__ = "article_tags"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(80))


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published')", name="status"),
        CheckConstraint("body_format IN ('markdown', 'html')", name="body_format"),
        Index("ix_articles_status_published_at", "status", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    body_format: Mapped[str] = mapped_column(String(10), default="markdown")
    body_source: Mapped[str] = mapped_column(Text, default="")
    # body_source rendered and sanitised with nh3 when saved; the only body ever shown
    body_html: Mapped[str] = mapped_column(Text, default="")
    author_name: Mapped[str] = mapped_column(String(200), default="")
    editor_name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(10), default="draft")
    published_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    lead_image_url: Mapped[str | None] = mapped_column(String(1000))
    lead_image_alt: Mapped[str] = mapped_column(String(300), default="")
    lead_image_caption: Mapped[str] = mapped_column(String(500), default="")
    lead_image_credit: Mapped[str] = mapped_column(String(200), default="")
    canonical_url: Mapped[str | None] = mapped_column(String(1000))
    # the feed item's guid / WordPress id, so importing again updates instead of duplicating
    source_key: Mapped[str | None] = mapped_column(String(1000), unique=True)

    tags: Mapped[list[Tag]] = relationship(
        secondary="article_tags", order_by="Tag.name", lazy="selectin"
    )

    @property
    def is_published(self) -> bool:
        return self.status == "published"


class CorrectionSuggestion(Base):
    __tablename__ = "correction_suggestions"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved', 'declined')", name="status"),
        Index("ix_correction_suggestions_article_id_status", "article_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for a message sent from the general corrections/contact form
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    selection: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    article: Mapped[Article | None] = relationship()
