"""Pledges mirrored from Stripe: the customer, the subscription, its invoices, the events.

Correctness under duplicate and concurrent webhooks comes from the constraints here
(docs/security.md threats 4-5): one row per Stripe customer, subscription, invoice and
event id, and at most one open pledge per reader.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from patrons.core.db import Base

# A pledge in one of these states is over: the reader may pledge again.
ENDED_STATUSES = ("canceled", "incomplete_expired", "abandoned")
_OPEN = "status NOT IN ('canceled', 'incomplete_expired', 'abandoned')"


class BillingCustomer(Base):
    """A reader's Stripe customer. The row is written before the customer is created, and its
    id is the idempotency key, so a double click or a retry never makes two customers."""

    __tablename__ = "billing_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True
    )
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]


class Pledge(Base):
    """A patron's monthly pledge, mirrored from its Stripe subscription.

    `pending` is local only: the row exists, the subscription does not yet. Other statuses
    are Stripe's; `abandoned` marks a pending pledge given up before any payment.
    """

    __tablename__ = "pledges"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("uq_pledges_one_open_per_user", "user_id", unique=True,
              sqlite_where=text(_OPEN), postgresql_where=text(_OPEN)),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    amount: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    plan_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_setup_intent_id: Mapped[str | None] = mapped_column(String(255))
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]  # first paid invoice
    ended_at: Mapped[datetime | None]
    # the article and prompt (banner, notice) that brought the pledge (patrons/reports)
    source_article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL")
    )
    source_prompt: Mapped[str | None] = mapped_column(String(16))

    @property
    def is_open(self) -> bool:
        return self.status not in ENDED_STATUSES


class Payment(Base):
    """One invoice of a pledge, paid or not; keyed by the Stripe invoice id."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), index=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))  # paid, open, failed, refunded, disputed
    amount_refunded: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    failure_notified_attempt: Mapped[int] = mapped_column(default=0)
    receipt_sent_at: Mapped[datetime | None]


class StripeEvent(Base):
    """Each webhook event id once: inserted in the same transaction as its effects."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime | None]
    received_at: Mapped[datetime]


class PledgeStatusChange(Base):
    """Every status change of a pledge: from, to, when, and what caused it."""

    __tablename__ = "pledge_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(index=True)
    stripe_event_id: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # webhook, sync, reader, staff
    amount: Mapped[int | None]  # the pledge's amount after the change (for reports)
