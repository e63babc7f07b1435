"""sentiment_alerts: negative-spike alerts raised by the consumers' detectors.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sentiment_alerts",
        # Chosen by the detector when the alert fires: writing it again is a no-op.
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("negative_share", sa.Float(), nullable=False),
        sa.Column("baseline_share", sa.Float(), nullable=False),
        sa.Column("peak_share", sa.Float(), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("zscore", sa.Float(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column(
            "details", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.CheckConstraint("negative_share BETWEEN 0 AND 1", name="ck_alerts_share"),
        sa.CheckConstraint("volume > 0", name="ck_alerts_volume"),
    )
    # Dashboards list recent alerts, newest first.
    op.create_index("ix_sentiment_alerts_detected_at", "sentiment_alerts", ["detected_at"])


def downgrade() -> None:
    op.drop_index("ix_sentiment_alerts_detected_at", table_name="sentiment_alerts")
    op.drop_table("sentiment_alerts")
