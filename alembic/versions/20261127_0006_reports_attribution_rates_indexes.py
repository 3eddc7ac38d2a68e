"""reports: attribution of sign-ups and pledges, exchange rates, daily rollup, indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 03:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the payments payment health reads one by one (patrons/models/reports.py)
NOTEWORTHY_PAYMENT = "failure_notified_attempt > 0 OR status <> 'paid' OR amount_refunded > 0"
# (table, index name, columns)
INDEXES = (
    ("payments", "ix_payments_created_at_currency_amount", ["created_at", "currency", "amount"]),
    ("payments", "ix_payments_pledge_id_status", ["pledge_id", "status"]),
    ("pledges", "ix_pledges_started_at", ["started_at"]),
    ("pledges", "ix_pledges_source_article_id", ["source_article_id"]),
    ("users", "ix_users_created_at", ["created_at"]),
    ("users", "ix_users_source_article_id", ["source_article_id"]),
    (
        "pledge_status_changes",
        "ix_pledge_status_changes_pledge_id_changed_at",
        ["pledge_id", "changed_at"],
    ),
    ("daily_counts", "ix_daily_counts_day_kind", ["day", "kind"]),
    ("outbound_emails", "ix_outbound_emails_to_address", ["to_address"]),
    ("correction_suggestions", "ix_correction_suggestions_created_at", ["created_at"]),
)


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reporting_currency", sa.String(length=3), nullable=False),
        sa.Column("rate_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rate_micros > 0", name=op.f("ck_exchange_rates_rate_positive")),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_exchange_rates")),
    )
    op.create_table(
        "report_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("patrons", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("recovered", sa.Integer(), nullable=False),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("invoiced", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", name=op.f("pk_report_days")),
    )
    context = op.get_context()
    for table in ("users", "pledges"):
        fk_name = f"fk_{table}_source_article_id_articles"
        if context.dialect.name == "sqlite" and context.as_sql:
            # an offline script cannot reflect the table for a batch copy: one ADD COLUMN
            # with its reference does the same on SQLite
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN source_article_id INTEGER "
                f"CONSTRAINT {fk_name} REFERENCES articles (id) ON DELETE SET NULL"
            )
        else:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(sa.Column("source_article_id", sa.Integer(), nullable=True))
                batch_op.create_foreign_key(
                    batch_op.f(fk_name), "articles", ["source_article_id"], ["id"],
                    ondelete="SET NULL",
                )  # fmt: skip
        op.add_column(table, sa.Column("source_prompt", sa.String(length=16), nullable=True))
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_index(
        "ix_payments_created_at_noteworthy", "payments",
        ["created_at", "currency", "status", "failure_notified_attempt", "amount",
         "amount_refunded", "paid_at"], unique=False,
        sqlite_where=sa.text(NOTEWORTHY_PAYMENT), postgresql_where=sa.text(NOTEWORTHY_PAYMENT),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_payments_created_at_noteworthy", table_name="payments")
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    for table in ("pledges", "users"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("source_prompt")
            batch_op.drop_column("source_article_id")
    op.drop_table("report_days")
    op.drop_table("exchange_rates")
