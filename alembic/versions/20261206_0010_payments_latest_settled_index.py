"""payments: two indexes for the staff dashboard, each answering its query from the index

- `ix_payments_pledge_id_paid_at_id_status`: a pledge's latest settled payment (the
  entitlement rule, `entitlement._latest_settled`: newest first by paid_at, id, with its
  status). With only (pledge_id, status) PostgreSQL read and sorted every payment of every
  pledge (25 each in bench/reports.py); now one index entry per pledge, read backwards.
  Today's patrons on the dashboard (the reports, and the voting turnout), a vote's rights
  payment and the banner all ask it.
- `ix_payments_created_at_noteworthy` again, with `amount_disputed` (added by 0007, which
  payment health has read since): without it every noteworthy payment of the range was
  fetched from the table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LATEST_SETTLED = "ix_payments_pledge_id_paid_at_id_status"
NOTEWORTHY = "ix_payments_created_at_noteworthy"
# the payments payment health reads one by one (patrons/models/reports.py)
NOTEWORTHY_PAYMENT = "failure_notified_attempt > 0 OR status <> 'paid' OR amount_refunded > 0"
NOTEWORTHY_COLUMNS = ["created_at", "currency", "status", "failure_notified_attempt", "amount",
                      "amount_refunded", "paid_at"]  # fmt: skip


def _noteworthy(columns: list[str]) -> None:
    op.drop_index(NOTEWORTHY, table_name="payments")
    op.create_index(
        NOTEWORTHY, "payments", columns, unique=False,
        sqlite_where=sa.text(NOTEWORTHY_PAYMENT), postgresql_where=sa.text(NOTEWORTHY_PAYMENT),
    )  # fmt: skip


def upgrade() -> None:
    op.create_index(
        LATEST_SETTLED, "payments", ["pledge_id", "paid_at", "id", "status"], unique=False
    )
    _noteworthy([*NOTEWORTHY_COLUMNS, "amount_disputed"])


def downgrade() -> None:
    _noteworthy(NOTEWORTHY_COLUMNS)
    op.drop_index(LATEST_SETTLED, table_name="payments")
