"""Reading ``sentiment_alerts`` back: what a newly elected detector must know of the alerts
its predecessor raised (``observability.fleet_spikes``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

ALERT_COLUMNS = (
    "id, kind, entity, detected_at, resolved_at, window_start, window_end, negative_share, "
    "baseline_share, peak_share, volume, zscore, details"
)

# The open alerts, and those raised since ``since`` (their spikes may still be in the window).
RECENT_ALERTS = f"""
SELECT {ALERT_COLUMNS} FROM sentiment_alerts
WHERE resolved_at IS NULL OR detected_at >= %s
ORDER BY detected_at
"""


def recent_alerts(conn: psycopg.Connection[Any], since: datetime) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(RECENT_ALERTS, (since,)).fetchall()
