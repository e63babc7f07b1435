"""Online quality: how the stored predictions agree with the gold labels that came back.

The one place that measures a model on the stream (monitoring's gauges and ``GET /quality``,
the model registry's shadow comparison and rollback, retraining gates all call it)::

    with psycopg.connect(dsn) as conn:
        quality = online_quality(conn, "default-fdaa5aff653c", since=now - timedelta(hours=1))
        quality.macro_recall, quality.accuracy, quality.total, quality.per_class()

A window holds the posts whose gold label *arrived* in ``[since, until)`` (``gold_label_at``):
labels come late, so the freshest evidence about a model is the labels that came in lately,
whenever their posts were scored. Each stored row counts once (a post sent twice, under two
Kafka positions, counts twice). Gold labels outside the model's labels are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from stream_core.contract import LABELS
from stream_core.quality import Confusion

# Served by the partial index ix_scored_posts_gold_label_at (labelled rows only), index-only.
CONFUSION_BY_VERSION = """
SELECT model_version, gold_label, label, count(*)
FROM scored_posts
WHERE gold_label IS NOT NULL AND label IS NOT NULL  -- unscored posts have no label
  AND gold_label_at >= %(since)s AND gold_label_at < %(until)s
  AND (%(version)s::text IS NULL OR model_version = %(version)s::text)
GROUP BY 1, 2, 3
"""

CONFUSION_OVER_TIME = """
SELECT date_bin(%(bucket)s::interval, gold_label_at, %(since)s) AS bucket,
       model_version, gold_label, label, count(*)
FROM scored_posts
WHERE gold_label IS NOT NULL AND label IS NOT NULL  -- unscored posts have no label
  AND gold_label_at >= %(since)s AND gold_label_at < %(until)s
GROUP BY 1, 2, 3, 4
ORDER BY 1
"""


# The shadow version and the version that served, on the same labelled posts: shadow_scores
# joined to the stored post (its gold label and the label it was served with).
PAIRED_WITH_SHADOW = """
SELECT p.gold_label, p.label, s.label, count(*)
FROM shadow_scores s
JOIN scored_posts p USING (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)
WHERE s.model_version = %(version)s AND p.gold_label IS NOT NULL
  AND p.gold_label_at >= %(since)s AND p.gold_label_at < %(until)s
GROUP BY 1, 2, 3
"""


@dataclass(frozen=True, kw_only=True)
class WindowQuality(Confusion):
    """The confusion of one model version over the labels that arrived in ``[since, until)``."""

    model_version: str
    since: datetime
    until: datetime

    def document(self) -> dict[str, Any]:
        """JSON-ready: the window, then :meth:`~stream_core.quality.Confusion.figures`."""
        return {
            "model_version": self.model_version,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            **self.figures(),
        }


def _window(
    labels: Sequence[str], version: str, since: datetime, until: datetime, rows: list[Any]
) -> WindowQuality:
    confusion = Confusion.from_counts(labels, rows)
    return WindowQuality(
        confusion.labels, confusion.matrix, model_version=version, since=since, until=until
    )


def quality_by_version(
    conn: psycopg.Connection[Any],
    *,
    since: datetime,
    until: datetime | None = None,
    model_version: str | None = None,
    labels: Sequence[str] = LABELS,
) -> dict[str, WindowQuality]:
    """The quality of every model version with gold labels in ``[since, until)`` (until: now),
    or of ``model_version`` only."""
    until = until or datetime.now(UTC)
    params = {"since": since, "until": until, "version": model_version}
    counts: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for version, gold, predicted, count in conn.execute(CONFUSION_BY_VERSION, params):
        counts[version].append((gold, predicted, count))
    return {
        version: _window(labels, version, since, until, rows)
        for version, rows in sorted(counts.items())
    }


def online_quality(
    conn: psycopg.Connection[Any],
    model_version: str,
    *,
    since: datetime,
    until: datetime | None = None,
    labels: Sequence[str] = LABELS,
) -> WindowQuality:
    """The quality of ``model_version`` over the gold labels that arrived in ``[since, until)``
    (until: now). ``total`` is 0, and the figures NaN, when no label came back."""
    until = until or datetime.now(UTC)
    found = quality_by_version(
        conn, since=since, until=until, model_version=model_version, labels=labels
    )
    return found.get(model_version) or _window(labels, model_version, since, until, [])


def paired_with_shadow(
    conn: psycopg.Connection[Any],
    shadow_version: str,
    *,
    since: datetime,
    until: datetime | None = None,
    labels: Sequence[str] = LABELS,
) -> tuple[WindowQuality, WindowQuality]:
    """The serving versions' and ``shadow_version``'s quality on the same posts: those the
    shadow scored whose gold label arrived in ``[since, until)``."""
    until = until or datetime.now(UTC)
    params = {"version": shadow_version, "since": since, "until": until}
    served: list[tuple[str, str, int]] = []
    shadowed: list[tuple[str, str, int]] = []
    for gold, served_label, shadow_label, count in conn.execute(PAIRED_WITH_SHADOW, params):
        served.append((gold, served_label, count))
        shadowed.append((gold, shadow_label, count))
    return (
        _window(labels, "served", since, until, served),
        _window(labels, shadow_version, since, until, shadowed),
    )


def quality_over_time(
    conn: psycopg.Connection[Any],
    *,
    since: datetime,
    until: datetime,
    bucket: timedelta,
    labels: Sequence[str] = LABELS,
) -> list[WindowQuality]:
    """Quality per model version and per ``bucket`` of label arrival time, oldest first."""
    params = {"since": since, "until": until, "bucket": bucket}
    counts: dict[tuple[datetime, str], list[tuple[str, str, int]]] = defaultdict(list)
    for start, version, gold, predicted, count in conn.execute(CONFUSION_OVER_TIME, params):
        counts[(start, version)].append((gold, predicted, count))
    return [
        _window(labels, version, start, min(start + bucket, until), rows)
        for (start, version), rows in sorted(counts.items())
    ]
