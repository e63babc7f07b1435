"""Hourly and daily label counts, derived from the per-minute counts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from migrations.rollups import (
    add_rollups,
    create_rollup_machinery,
    drop_rollup_machinery,
    drop_rollups,
)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_rollup_machinery()
    add_rollups("sentiment_minute_counts")  # sentiment_hour_counts, sentiment_day_counts


def downgrade() -> None:
    drop_rollups("sentiment_minute_counts")
    drop_rollup_machinery()
