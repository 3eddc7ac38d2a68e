"""Pledges mirrored from Stripe: the customer, the subscription, its invoices, the events.

Correctness under duplicate and concurrent webhooks comes from the constraints here
(docs/security.md threats 4-5): one row per Stripe customer, subscription, invoice and
event id, and at most one open pledge per reader.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from patrons.core.db import Base


class PledgeStatus(StrEnum):
    """A pledge's status: Stripe's subscription statuses, and two of our own. `pending`: the
    row exists, the subscription does not yet; `abandoned`: a start given up before any
    payment (the reader's "Start again", or a first payment that can no longer succeed)."""

    PENDING = "pending"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"
    ABANDONED = "abandoned"


# A pledge in one of these states is over: the reader may pledge again. The one set, used by
# the partial unique index below, the pledge pages, the webhook and the reports.
ENDED_STATUSES: tuple[str, ...] = (
    PledgeStatus.CANCELED,
    PledgeStatus.INCOMPLETE_EXPIRED,
    PledgeStatus.ABANDONED,
)
# the subscription statuses that give a patron's rights (past_due: within the grace period)
ENTITLED_STATUSES: tuple[str, ...] = (PledgeStatus.ACTIVE, PledgeStatus.TRIALING)
_OPEN = "status NOT IN ('canceled', 'incomplete_expired', 'abandoned')"


class PaymentStatus(StrEnum):
    """One payment (invoice) in the ledger. Unpaid: open, failed (an attempt was refused),
    void, uncollectible. Paid, then what happened to the money: partially_refunded, refunded,
    disputed (a dispute is open), dispute_won, dispute_lost."""

    OPEN = "open"
    FAILED = "failed"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    DISPUTE_WON = "dispute_won"
    DISPUTE_LOST = "dispute_lost"


# the money came in (whatever happened to it afterwards)
SETTLED_PAYMENT_STATUSES: tuple[str, ...] = (
    PaymentStatus.PAID,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
    PaymentStatus.DISPUTED,
    PaymentStatus.DISPUTE_WON,
    PaymentStatus.DISPUTE_LOST,
)
# the money came in and stayed: such a payment gives rights and votes (a partial refund
# keeps them unless PLEDGE_PARTIAL_REFUND_KEEPS_RIGHTS is off: patrons/pledges/ledger.py)
COUNTING_PAYMENT_STATUSES: tuple[str, ...] = (
    PaymentStatus.PAID,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.DISPUTE_WON,
)


class EventState(StrEnum):
    """A stored Stripe event: `pending` until applied (or retried after a failure), then
    `applied`; `failed` after the last attempt (staff may retry it); `ignored`: nothing to do."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    IGNORED = "ignored"


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
    status: Mapped[str] = mapped_column(String(32))  # a PaymentStatus
    amount_refunded: Mapped[int] = mapped_column(default=0)
    # the amount a dispute took back for good (a lost dispute); an open dispute holds
    # `dispute_amount` without taking it
    amount_disputed: Mapped[int] = mapped_column(default=0, server_default="0")
    dispute_status: Mapped[str | None] = mapped_column(String(32))  # Stripe's, latest dispute
    dispute_amount: Mapped[int] = mapped_column(default=0, server_default="0")
    billing_reason: Mapped[str | None] = mapped_column(String(32))  # subscription_create, ...
    created_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    # the first refused attempt of this invoice (Stripe's finalisation time, when the first
    # automatic attempt is made): the grace period of a past_due pledge counts from here
    first_failed_at: Mapped[datetime | None]
    failure_notified_attempt: Mapped[int] = mapped_column(default=0)
    receipt_sent_at: Mapped[datetime | None]

    @property
    def net(self) -> int:
        """What the newsroom keeps of this payment (0 unless it was paid)."""
        if self.status not in SETTLED_PAYMENT_STATUSES:
            return 0
        return max(self.amount - self.amount_refunded - self.amount_disputed, 0)


class PaymentChange(Base):
    """The ledger's history: every change of a payment's state or amounts, with its source."""

    __tablename__ = "payment_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int]
    amount_refunded: Mapped[int]
    amount_disputed: Mapped[int]
    changed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))  # webhook, sync, reader, staff
    stripe_event_id: Mapped[str | None] = mapped_column(String(255))


class StripeEvent(Base):
    """The webhook's inbox: each event id once, stored before it is acknowledged, applied
    afterwards (patrons/pledges/inbox.py). Only the ids in `object_id` and `type` are used:
    every effect comes from the object as Stripe has it when the event is applied."""

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime | None]
    received_at: Mapped[datetime]
    object_id: Mapped[str | None] = mapped_column(String(255))
    # the other ids the event names (a refund's charge, a dispute's charge), as JSON text
    related: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=EventState.PENDING,
                                       server_default=EventState.APPLIED)  # fmt: skip
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]  # a worker is applying it until then
    last_error: Mapped[str | None] = mapped_column(Text)
    applied_at: Mapped[datetime | None]


class StripeCallLease(Base):
    """One request at a time creates a reader's Stripe customer or a pledge's subscription:
    the first inserts the row (its primary key is the guard), the others see it and wait for
    the answer instead of calling Stripe again (patrons/pledges/concurrency.py). A lease older
    than its `expires_at` was left by a request that died and may be taken over."""

    __tablename__ = "stripe_call_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # "customer:12"
    token: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]


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
