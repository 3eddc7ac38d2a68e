"""worker: one heartbeat row per worker process, the scheduled jobs' leases, and the moment a
closed voting round's results were mailed (once)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("last_seen", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index(op.f("ix_worker_heartbeats_last_seen"), "worker_heartbeats", ["last_seen"])
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", _TZ, nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", _TZ, nullable=True),
        sa.Column("last_started_at", _TZ, nullable=True),
        sa.Column("last_finished_at", _TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduled_jobs")),
    )
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("results_mailed_at", _TZ, nullable=True))
    # the purges' conditions (sessions and tokens by expiry, sent mail by its sending time)
    op.create_index(op.f("ix_user_sessions_expires_at"), "user_sessions", ["expires_at"])
    op.create_index(op.f("ix_email_tokens_expires_at"), "email_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_email_tokens_expires_at"), table_name="email_tokens")
    op.drop_index(op.f("ix_user_sessions_expires_at"), table_name="user_sessions")
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.drop_column("results_mailed_at")
    op.drop_table("scheduled_jobs")
    op.drop_index(op.f("ix_worker_heartbeats_last_seen"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
