from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patrons.core.db import Base

OUTBOUND_STATUSES = ("queued", "sent", "failed")


class OutboundEmail(Base):
    """One message in the outgoing queue, rendered when queued; patrons.mail sends it."""

    __tablename__ = "outbound_emails"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sent', 'failed')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_outbound_emails_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))  # the template's name, e.g. "verify_email"
    status: Mapped[str] = mapped_column(String(10), default="queued")
    # sending tries so far, counted when a sender claims the message (a crash counts too)
    attempts: Mapped[int] = mapped_column(default=0)
    # exception class and a short message; never the body, the server password or a token
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # due time; a sender claiming the message pushes it ahead (a lease) while it sends
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
