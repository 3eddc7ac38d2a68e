"""pledges mirrored from Stripe: customers, status history, events; payment and pledge details

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 23:31:51.954605
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "billing_customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_billing_customers_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_customers")),
        sa.UniqueConstraint(
            "stripe_customer_id", name=op.f("uq_billing_customers_stripe_customer_id")
        ),
        sa.UniqueConstraint("user_id", name=op.f("uq_billing_customers_user_id")),
    )
    op.create_table(
        "pledge_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stripe_event_id", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pledge_id"],
            ["pledges.id"],
            name=op.f("fk_pledge_status_changes_pledge_id_pledges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pledge_status_changes")),
    )
    with op.batch_alter_table("pledge_status_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pledge_status_changes_changed_at"), ["changed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pledge_status_changes_pledge_id"), ["pledge_id"], unique=False
        )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True)
        )
        batch_op.add_column(sa.Column("stripe_charge_id", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column(
                "amount_refunded",
                sa.Integer(),
                nullable=False,
                server_default="0",
            )
        )
        # nullable: SQLite adds no column with a non-constant default; backfilled below
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("failure_notified_attempt", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("receipt_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_payments_stripe_charge_id"), ["stripe_charge_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_payments_stripe_payment_intent_id"),
            ["stripe_payment_intent_id"],
            unique=False,
        )

    op.execute("UPDATE payments SET created_at = paid_at WHERE created_at IS NULL")
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("stripe_setup_intent_id", sa.String(length=255), nullable=True)
        )
        batch_op.add_column(
            sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("card_brand", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("card_last4", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "uq_pledges_one_open_per_user",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("status NOT IN ('canceled', 'incomplete_expired', 'abandoned')"),
            postgresql_where=sa.text(
                "status NOT IN ('canceled', 'incomplete_expired', 'abandoned')"
            ),
        )


def downgrade() -> None:
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_pledges_one_open_per_user",
            sqlite_where=sa.text("status NOT IN ('canceled', 'incomplete_expired', 'abandoned')"),
            postgresql_where=sa.text(
                "status NOT IN ('canceled', 'incomplete_expired', 'abandoned')"
            ),
        )
        batch_op.drop_column("ended_at")
        batch_op.drop_column("started_at")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("card_last4")
        batch_op.drop_column("card_brand")
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("cancel_at_period_end")
        batch_op.drop_column("stripe_setup_intent_id")
        batch_op.drop_column("plan_id")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_stripe_payment_intent_id"))
        batch_op.drop_index(batch_op.f("ix_payments_stripe_charge_id"))
        batch_op.drop_column("receipt_sent_at")
        batch_op.drop_column("failure_notified_attempt")
        batch_op.drop_column("created_at")
        batch_op.drop_column("amount_refunded")
        batch_op.drop_column("stripe_charge_id")
        batch_op.drop_column("stripe_payment_intent_id")

    with op.batch_alter_table("pledge_status_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pledge_status_changes_pledge_id"))
        batch_op.drop_index(batch_op.f("ix_pledge_status_changes_changed_at"))

    op.drop_table("pledge_status_changes")
    op.drop_table("billing_customers")
    op.drop_table("stripe_events")
