"""Monitoring runs, and drift reports read as time series.

* ``monitoring_runs``: one row per monitoring task (``quality``, ``drift``) and model version:
  when the elected replica last measured it, how long it took, and its outcome (``ok``, or
  ``unavailable`` with the reason: a model folder without a reference profile, too few posts).
  ``GET /drift`` reads it, so every replica says the same, and "unavailable" is never
  mistaken for "no drift".
* ``drift_reports`` (created by 0003) gets an index for time series of one feature and window
  (the report and the Grafana panels).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_runs",
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("finished_at", TZ, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("task", "model_version", name="pk_monitoring_runs"),
        sa.CheckConstraint("status IN ('ok', 'unavailable')", name="ck_monitoring_runs_status"),
        sa.CheckConstraint("duration_s >= 0", name="ck_monitoring_runs_duration"),
    )
    op.create_index(
        "ix_drift_reports_window_feature_computed_at",
        "drift_reports",
        ["time_window", "feature", "computed_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_drift_reports_window_feature_computed_at", table_name="drift_reports")
    op.drop_table("monitoring_runs")
