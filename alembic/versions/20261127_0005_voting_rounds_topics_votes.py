"""voting: votes (one per patron and topic), topic statuses and proposals, article links

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 03:29:40.352098
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "topic_articles",
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_topic_articles_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["topics.id"],
            name=op.f("fk_topic_articles_topic_id_topics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("topic_id", "article_id", name=op.f("pk_topic_articles")),
    )
    with op.batch_alter_table("topic_articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_topic_articles_article_id"), ["article_id"], unique=False
        )

    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_votes_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_votes_topic_id_topics"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_votes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
        sa.UniqueConstraint("user_id", "topic_id", name=op.f("uq_votes_user_id_topic_id")),
    )
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.create_index("ix_votes_round_id_user_id", ["round_id", "user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_votes_topic_id"), ["topic_id"], unique=False)

    # copy_from: SQLite rebuilds these tables, and `alembic upgrade --sql` cannot reflect them
    with op.batch_alter_table("rounds", schema=None, copy_from=_rounds_0004()) as batch_op:
        batch_op.add_column(
            sa.Column("live_counts", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint("votes_per_patron_positive", "votes_per_patron > 0")
        batch_op.create_check_constraint("closes_after_opening", "closes_at > opens_at")

    with op.batch_alter_table("topics", schema=None, copy_from=_topics_0004()) as batch_op:
        batch_op.add_column(sa.Column("proposed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("decline_reason", sa.Text(), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("final_votes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("covered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_topics_proposed_by_id"), ["proposed_by_id"])
        batch_op.create_index("ix_topics_status", ["status"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_topics_proposed_by_id_users"),
            "users",
            ["proposed_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_topics_merged_into_id_topics"),
            "topics",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )


def _rounds_0004() -> sa.Table:
    return sa.Table(
        "rounds",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("introduction", sa.Text(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("votes_per_patron", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rounds"),
    )


def _topics_0004() -> sa.Table:
    meta = sa.MetaData()
    sa.Table("rounds", meta, sa.Column("id", sa.Integer(), primary_key=True))
    return sa.Table(
        "topics",
        meta,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name="fk_topics_round_id_rounds", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_topics"),
    )


def downgrade() -> None:
    with op.batch_alter_table("topics", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_topics_merged_into_id_topics"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_topics_proposed_by_id_users"), type_="foreignkey")
        batch_op.drop_index("ix_topics_status")
        batch_op.drop_index(batch_op.f("ix_topics_proposed_by_id"))
        batch_op.drop_column("covered_at")
        batch_op.drop_column("final_votes")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("decline_reason")
        batch_op.drop_column("created_at")
        batch_op.drop_column("proposed_by_id")

    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_rounds_closes_after_opening"), type_="check")
        batch_op.drop_constraint(op.f("ck_rounds_votes_per_patron_positive"), type_="check")
        batch_op.drop_column("frozen_at")
        batch_op.drop_column("live_counts")

    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_votes_topic_id"))
        batch_op.drop_index("ix_votes_round_id_user_id")
    op.drop_table("votes")

    with op.batch_alter_table("topic_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_topic_articles_article_id"))
    op.drop_table("topic_articles")
