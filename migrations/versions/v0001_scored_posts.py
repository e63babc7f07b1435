"""scored_posts and the per-minute label counts that dashboards read.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scored_posts",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("post_id", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("lang", sa.Text),
        sa.Column("created_at", TZ),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("prob_negative", sa.REAL, nullable=False),
        sa.Column("prob_neutral", sa.REAL, nullable=False),
        sa.Column("prob_positive", sa.REAL, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("scored_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("kafka_topic", sa.Text, nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("kafka_timestamp", TZ),
        sa.Column("gold_label", sa.Text),
        sa.Column("extra", postgresql.JSONB),  # message fields outside the contract, kept
        # The idempotency key: a replayed message hits it and is skipped (ON CONFLICT DO NOTHING).
        sa.UniqueConstraint(
            "kafka_topic", "kafka_partition", "kafka_offset", name="uq_scored_posts_kafka_position"
        ),
        sa.CheckConstraint(
            "label IN ('negative', 'neutral', 'positive')", name="ck_scored_posts_label"
        ),
    )
    # Dashboards filter by time (when posted, when scored) and look single posts up by id.
    op.create_index("ix_scored_posts_created_at", "scored_posts", ["created_at"])
    op.create_index("ix_scored_posts_scored_at", "scored_posts", ["scored_at"])
    op.create_index("ix_scored_posts_label_created_at", "scored_posts", ["label", "created_at"])
    op.create_index("ix_scored_posts_post_id", "scored_posts", ["post_id"])

    # Exact per-minute counts, fed in the same transaction by the rows actually inserted.
    # Bucketed by created_at, else by the Kafka timestamp. The primary key serves time ranges.
    op.create_table(
        "sentiment_minute_counts",
        sa.Column("minute", TZ, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("minute", "label", name="pk_sentiment_minute_counts"),
        sa.CheckConstraint(
            "label IN ('negative', 'neutral', 'positive')", name="ck_sentiment_minute_counts_label"
        ),
    )


def downgrade() -> None:
    op.drop_table("sentiment_minute_counts")
    op.drop_table("scored_posts")
