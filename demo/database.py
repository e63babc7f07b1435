"""What the demo reads back from PostgreSQL: row counts, alerts and label counts over time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

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
        }


# Label counts per time bucket: bucket start -> label -> count.
LabelSeries = dict[datetime, dict[str, int]]


class DemoDatabase:
    """Short read-only queries, each on its own connection (the demo polls every few seconds)."""

    def __init__(self, database_url: str) -> None:
        self._conninfo = libpq_url(database_url)

    def _rows(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self._conninfo, connect_timeout=5, row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchall()

    def scored_rows(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM scored_posts")[0]["n"])

    def scoring_span_s(self) -> float:
        """Seconds between the first and the last committed batch."""
        row = self._rows(
            "SELECT extract(epoch FROM max(scored_at) - min(scored_at)) AS span FROM scored_posts"
        )[0]
        return float(row["span"] or 0.0)

    def alerts(self) -> list[Alert]:
        rows = self._rows(
            "SELECT detected_at, resolved_at, window_start, window_end, negative_share,"
            " baseline_share, peak_share, volume FROM sentiment_alerts ORDER BY detected_at"
        )
        return [Alert(**row) for row in rows]

    def minute_counts(self) -> LabelSeries:
        """The aggregate table dashboards read: counts per minute and label."""
        return _series(
            self._rows("SELECT minute AS bucket, label, count FROM sentiment_minute_counts")
        )

    def counts_every(self, seconds: int) -> LabelSeries:
        """Finer buckets straight from scored_posts (by when posted), for short runs."""
        return _series(
            self._rows(
                "SELECT date_bin(make_interval(secs => %s), coalesce(created_at, scored_at),"
                " timestamptz '2000-01-01') AS bucket, label, count(*) AS count"
                " FROM scored_posts GROUP BY 1, 2",
                (seconds,),
            )
        )


def _series(rows: list[dict[str, Any]]) -> LabelSeries:
    series: LabelSeries = defaultdict(dict)
    for row in rows:
        series[row["bucket"]][row["label"]] = int(row["count"])
    return dict(sorted(series.items()))
