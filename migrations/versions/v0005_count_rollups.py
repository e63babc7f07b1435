"""Hourly and daily label counts, derived from the per-minute counts.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from migrations.rollups import (
    add_rollups,
    create_rollup_machinery,
    drop_rollup_machinery,
    drop_rollups,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_rollup_machinery()
    add_rollups("sentiment_minute_counts")  # sentiment_hour_counts, sentiment_day_counts


def downgrade() -> None:
    drop_rollups("sentiment_minute_counts")
    drop_rollup_machinery()
