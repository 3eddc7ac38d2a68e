"""pledges: the ledger (payment amounts, disputes, history), the webhook's inbox, leases;
votes: the payment behind each vote, a closed round's voters and eligible patrons

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def _add_payment_id_to_votes() -> None:
    fk_name = "fk_votes_payment_id_payments"
    context = op.get_context()
    if context.dialect.name == "sqlite" and context.as_sql:
        # an offline script cannot reflect the table for a batch copy (see 0006)
        op.execute(
            f"ALTER TABLE votes ADD COLUMN payment_id INTEGER "
            f"CONSTRAINT {fk_name} REFERENCES payments (id) ON DELETE SET NULL"
        )
    else:
        with op.batch_alter_table("votes", schema=None) as batch_op:
            batch_op.add_column(sa.Column("payment_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                batch_op.f(fk_name), "payments", ["payment_id"], ["id"], ondelete="SET NULL"
            )
    op.create_index(op.f("ix_votes_payment_id"), "votes", ["payment_id"], unique=False)


def upgrade() -> None:
    for column in (
        sa.Column("amount_disputed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("dispute_status", sa.String(length=32), nullable=True),
        sa.Column("dispute_amount", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("billing_reason", sa.String(length=32), nullable=True),
        sa.Column("first_failed_at", _TZ, nullable=True),
    ):
        op.add_column("payments", column)
    for column in (
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("related", sa.Text(), nullable=True),
        # events stored before this revision were applied when they came in
        sa.Column("state", sa.String(length=16), nullable=False, server_default="applied"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TZ, nullable=True),
        sa.Column("claimed_until", _TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("applied_at", _TZ, nullable=True),
    ):
        op.add_column("stripe_events", column)
    op.create_index(
        "ix_stripe_events_state_next_attempt_at", "stripe_events",
        ["state", "next_attempt_at"], unique=False,
    )  # fmt: skip
    op.create_table(
        "payment_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("amount_refunded", sa.Integer(), nullable=False),
        sa.Column("amount_disputed", sa.Integer(), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("stripe_event_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], ondelete="CASCADE",
                                name=op.f("fk_payment_changes_payment_id_payments")),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], ondelete="CASCADE",
                                name=op.f("fk_payment_changes_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_changes")),
    )  # fmt: skip
    op.create_index(op.f("ix_payment_changes_payment_id"), "payment_changes", ["payment_id"])
    op.create_index(op.f("ix_payment_changes_pledge_id"), "payment_changes", ["pledge_id"])
    op.create_table(
        "stripe_call_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stripe_call_leases")),
    )
    _add_payment_id_to_votes()
    op.add_column("rounds", sa.Column("final_voters", sa.Integer(), nullable=True))
    op.add_column("rounds", sa.Column("final_eligible", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.drop_column("final_eligible")
        batch_op.drop_column("final_voters")
    op.drop_index(op.f("ix_votes_payment_id"), table_name="votes")
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_constraint("fk_votes_payment_id_payments", type_="foreignkey")
        batch_op.drop_column("payment_id")
    op.drop_table("stripe_call_leases")
    op.drop_index(op.f("ix_payment_changes_pledge_id"), table_name="payment_changes")
    op.drop_index(op.f("ix_payment_changes_payment_id"), table_name="payment_changes")
    op.drop_table("payment_changes")
    op.drop_index("ix_stripe_events_state_next_attempt_at", table_name="stripe_events")
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        for name in ("applied_at", "last_error", "claimed_until", "next_attempt_at", "attempts",
                     "state", "related", "object_id"):  # fmt: skip
            batch_op.drop_column(name)
    with op.batch_alter_table("payments", schema=None) as batch_op:
        for name in ("first_failed_at", "billing_reason", "dispute_amount", "dispute_status",
                     "amount_disputed"):  # fmt: skip
            batch_op.drop_column(name)
