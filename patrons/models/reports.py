"""Staff reports: the exchange rates staff set, and the indexes the report queries need.

The indexes sit here, beside the queries' other needs, rather than on the models of the
tables they index: each one exists for one report (patrons/reports/queries.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from patrons.core.db import Base
from patrons.models.accounts import User
from patrons.models.articles import CorrectionSuggestion
from patrons.models.events import DailyCount
from patrons.models.mail import OutboundEmail
from patrons.models.pledges import Payment, Pledge, PledgeStatusChange

RATE_SCALE = 1_000_000  # a rate is stored in millionths: 0.92 → 920000


class ExchangeRate(Base):
    """What one unit of `currency` is worth in `reporting_currency`, as staff set it.

    Every row is saved with the reporting currency of its time; rows of another reporting
    currency than the latest are ignored (they would convert into the wrong money)."""

    __tablename__ = "exchange_rates"
    __table_args__ = (CheckConstraint("rate_micros > 0", name="rate_positive"),)

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    reporting_currency: Mapped[str] = mapped_column(String(3))
    rate_micros: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class ReportDay(Base):
    """The daily rollup of days that can no longer change (patrons/reports/rollup.py): per
    currency, how MRR and the patron count changed on the day, and the invoices dated on it;
    on the day's own row (currency ''), its new, cancelled and recovered patrons. Computed
    with the grace period of its time: another grace period recomputes it."""

    __tablename__ = "report_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # 'YYYY-MM-DD', UTC
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    grace_days: Mapped[int]
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    patrons: Mapped[int] = mapped_column(default=0)
    new: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[int] = mapped_column(default=0)
    recovered: Mapped[int] = mapped_column(default=0)
    invoices: Mapped[int] = mapped_column(default=0)  # invoices dated in the month
    invoiced: Mapped[int] = mapped_column(BigInteger, default=0)  # their amounts
    computed_at: Mapped[datetime]


# payment health over a date range: the invoices that failed, are unpaid, refunded or
# disputed (a small share), with every column the query reads (PostgreSQL answers from the
# index alone); the plain paid ones are counted by the monthly rollup
NOTEWORTHY_PAYMENT = "failure_notified_attempt > 0 OR status <> 'paid' OR amount_refunded > 0"
Index(
    "ix_payments_created_at_noteworthy",
    Payment.created_at,
    Payment.currency,
    Payment.status,
    Payment.failure_notified_attempt,
    Payment.amount,
    Payment.amount_refunded,
    Payment.paid_at,
    Payment.amount_disputed,
    sqlite_where=text(NOTEWORTHY_PAYMENT),
    postgresql_where=text(NOTEWORTHY_PAYMENT),
)
# invoices per month for the rollup, and the unsettled days, from the index alone
Index(
    "ix_payments_created_at_currency_amount", Payment.created_at, Payment.currency, Payment.amount
)
# "has a paid invoice" (the entitlement rule), answered from the index
Index("ix_payments_pledge_id_status", Payment.pledge_id, Payment.status)
# a pledge's latest settled payment (the entitlement rule: today's patrons), newest first
# by (paid_at, id), read backwards from the index alone: one entry per pledge
Index(
    "ix_payments_pledge_id_paid_at_id_status",
    Payment.pledge_id,
    Payment.paid_at,
    Payment.id,
    Payment.status,
)
# new patrons per month, and first payments per article
Index("ix_pledges_started_at", Pledge.started_at)
Index("ix_pledges_source_article_id", Pledge.source_article_id)
# sign-ups per month and per article
Index("ix_users_created_at", User.created_at)
Index("ix_users_source_article_id", User.source_article_id)
# the status history read in order per pledge (the month-by-month figures)
Index(
    "ix_pledge_status_changes_pledge_id_changed_at",
    PledgeStatusChange.pledge_id,
    PledgeStatusChange.changed_at,
)
# counters over a date range, every article at once (the key starts with article_id)
Index("ix_daily_counts_day_kind", DailyCount.day, DailyCount.kind)
# a member's emails (member detail)
Index("ix_outbound_emails_to_address", OutboundEmail.to_address)
# corrections over a date range
Index("ix_correction_suggestions_created_at", CorrectionSuggestion.created_at)
