"""``sentiment_alerts``: spike alerts, written by the elected detector's alert sink, read by
the demo, the dashboards and the next elected detector. Each alert is keyed by the id its
detector chose, so writing it again (a retry, a replay) changes nothing; and at most one alert
per kind and scope (the stream, or one entity) is open at a time (``uq_sentiment_alerts_one_open``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

# No conflict target on purpose: a retry hits the primary key, and an alert for a kind and
# scope that already has an open one (two detectors racing in a takeover) hits
# uq_sentiment_alerts_one_open; neither writes a second row.
INSERT_ALERT = """
INSERT INTO sentiment_alerts (
    id, kind, entity, detected_at, window_start, window_end, negative_share, baseline_share,
    volume, zscore, peak_share, model_version, details
) VALUES (
    %(id)s, %(kind)s, %(entity)s, %(detected_at)s, %(window_start)s, %(window_end)s,
    %(negative_share)s, %(baseline_share)s, %(volume)s, %(zscore)s, %(peak_share)s,
    %(model_version)s, %(details)s
)
ON CONFLICT DO NOTHING
"""

RESOLVE_ALERT = """
UPDATE sentiment_alerts SET resolved_at = %(resolved_at)s, peak_share = %(peak_share)s
WHERE id = %(id)s
"""

# The columns a timeline of alerts shows (the demo's dashboard and chart).
ALERT_TIMELINE = """
SELECT detected_at, resolved_at, window_start, window_end, negative_share, baseline_share,
    peak_share, volume, entity
FROM sentiment_alerts ORDER BY detected_at
"""

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


def insert_alert(conn: psycopg.Connection[Any], alert: Mapping[str, Any]) -> None:
    """A fired alert: every column of ``INSERT_ALERT`` (``details`` as ``Jsonb``)."""
    conn.execute(INSERT_ALERT, alert)


def resolve_alert(
    conn: psycopg.Connection[Any], alert_id: uuid.UUID, resolved_at: datetime, peak_share: float
) -> None:
    conn.execute(
        RESOLVE_ALERT, {"id": alert_id, "resolved_at": resolved_at, "peak_share": peak_share}
    )


def alert_timeline(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every alert, oldest first, as the columns of ``ALERT_TIMELINE`` by name."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(ALERT_TIMELINE).fetchall()


def recent_alerts(conn: psycopg.Connection[Any], since: datetime) -> list[dict[str, Any]]:
    """What a newly elected detector must know of its predecessor's alerts
    (``observability.fleet_spikes``): every column of ``ALERT_COLUMNS`` by name."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(RECENT_ALERTS, (since,)).fetchall()
