"""Model monitoring: late gold labels, when they arrived, and drift reports.

* ``scored_posts.gold_label_at``: when the post's gold label reached the stream (the Kafka
  timestamp of the label message, or of the post for a label in its header); online quality
  windows are taken on it. A partial index holds only the labelled posts, with what the
  quality query reads, so a window is an index-only range scan however large the table.
* ``gold_labels``: every gold label from the labels topic, keyed by post id, kept whether or
  not its post is stored yet (``applied_at`` NULL: waiting for the post). It carries the Kafka
  position of the label message, which makes re-applying a replayed label a no-op.
* ``drift_reports``: one row per computation, window and feature: PSI and Jensen-Shannon
  distance of the online profile against the model's reference profile.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
LABEL_CHECK = "label IN ('negative', 'neutral', 'positive')"


def upgrade() -> None:
    op.add_column("scored_posts", sa.Column("gold_label_at", TZ))
    op.create_index(
        "ix_scored_posts_gold_label_at",
        "scored_posts",
        ["gold_label_at"],
        postgresql_where=sa.text("gold_label IS NOT NULL"),
        postgresql_include=["model_version", "gold_label", "label"],
    )

    op.create_table(
        "gold_labels",
        sa.Column("post_id", sa.Text, primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("labelled_at", TZ),  # as the label message says, when it says
        sa.Column("received_at", TZ, nullable=False),  # the label message's Kafka timestamp
        sa.Column("kafka_topic", sa.Text, nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("applied_at", TZ),  # NULL while its post is not stored
        sa.CheckConstraint(LABEL_CHECK, name="ck_gold_labels_label"),
    )
    # The labels still waiting for their post: few, read by the sweep and the pending gauge.
    op.create_index(
        "ix_gold_labels_pending",
        "gold_labels",
        ["received_at"],
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    op.create_index("ix_gold_labels_received_at", "gold_labels", ["received_at"])

    op.create_table(
        "drift_reports",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("computed_at", TZ, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("time_window", sa.Text, nullable=False),  # "15m", "1h", "24h"
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("window_end", TZ, nullable=False),
        sa.Column("feature", sa.Text, nullable=False),
        sa.Column("psi", sa.Float, nullable=False),
        sa.Column("js_distance", sa.Float, nullable=False),
        sa.Column("online_posts", sa.Integer, nullable=False),
        sa.Column("reference_posts", sa.Integer, nullable=False),
        # Bins, reference and online shares: what a report draws and a person checks.
        sa.Column("details", postgresql.JSONB, nullable=False),
        sa.UniqueConstraint(
            "computed_at",
            "model_version",
            "time_window",
            "feature",
            name="uq_drift_reports_computation",
        ),
        sa.CheckConstraint("psi >= 0", name="ck_drift_reports_psi"),
        sa.CheckConstraint("online_posts > 0", name="ck_drift_reports_online_posts"),
    )
    # GET /drift reads the latest computation; reports and dashboards read a time range.
    op.create_index("ix_drift_reports_computed_at", "drift_reports", ["computed_at"])


def downgrade() -> None:
    op.drop_table("drift_reports")
    op.drop_table("gold_labels")
    op.drop_index("ix_scored_posts_gold_label_at", table_name="scored_posts")
    op.drop_column("scored_posts", "gold_label_at")
