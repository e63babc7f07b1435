"""What the demo reads back from PostgreSQL: row counts, alerts and label counts over time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from storage import alerts, minute_counts, scored_posts
from storage.urls import libpq_url


@dataclass(frozen=True)
class Alert:
    detected_at: datetime
    resolved_at: datetime | None
    window_start: datetime
    window_end: datetime
    negative_share: float
    baseline_share: float
    peak_share: float
    volume: int
    entity: str | None = None  # the watched entity; None: the whole stream

    def to_dict(self) -> dict[str, Any]:
        return {
            "detected_at": self.detected_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "negative_share": round(self.negative_share, 4),
            "baseline_share": round(self.baseline_share, 4),
            "peak_share": round(self.peak_share, 4),
            "volume": self.volume,
            "entity": self.entity,
        }


# Label counts per time bucket: bucket start -> label -> count.
LabelSeries = dict[datetime, dict[str, int]]


class DemoDatabase:
    """Short read-only queries (storage's), each on its own connection: the demo polls every
    few seconds."""

    def __init__(self, database_url: str) -> None:
        self._conninfo = libpq_url(database_url)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._conninfo, connect_timeout=5)

    def scored_rows(self) -> int:
        with self._connect() as conn:
            return scored_posts.count(conn)

    def scoring_span_s(self) -> float:
        """Seconds between the first and the last committed batch."""
        with self._connect() as conn:
            return scored_posts.scoring_span_s(conn)

    def rows_by_version(self) -> dict[str, tuple[int, datetime, datetime]]:
        with self._connect() as conn:
            return scored_posts.rows_by_version(conn)

    def alerts(self) -> list[Alert]:
        with self._connect() as conn:
            return [Alert(**row) for row in alerts.alert_timeline(conn)]

    def entity_counts(self) -> dict[str, dict[str, int]]:
        """Posts per watched entity and label, over the whole run."""
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        with self._connect() as conn:
            for entity, label, count in minute_counts.entity_totals(conn):
                counts[entity][label] = int(count)
        return dict(counts)

    def minute_counts(self) -> LabelSeries:
        """The aggregate table dashboards read: counts per minute and label."""
        with self._connect() as conn:
            return _series(minute_counts.minute_series(conn))

    def counts_every(self, seconds: int) -> LabelSeries:
        """Finer buckets straight from scored_posts (by when posted), for short runs."""
        with self._connect() as conn:
            return _series(scored_posts.label_counts_every(conn, seconds))


def _series(rows: Iterable[tuple[datetime, str, int]]) -> LabelSeries:
    series: LabelSeries = defaultdict(dict)
    for bucket, label, count in rows:
        series[bucket][label] = int(count)
    return dict(sorted(series.items()))
