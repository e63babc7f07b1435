"""Fleet-wide spike detection: one elected replica judges the counts every replica writes.

Every replica adds its committed batches to ``sentiment_second_counts`` (a write part, so the
counts are exact). The replica that holds the ``spike-detector`` role
(``storage.coordination.ElectedJobs``) runs :meth:`FleetSpikes.run` every
``SENTIMENT_ALERT_TICK_S``: it re-reads the last :data:`REREAD_S` seconds of counts, feeds
each detector what is new since its last read (a batch that committed late is counted when it
shows up, in the newest bucket, as the in-process detector always did), and lets every detector
judge. One detector for the whole stream and one per watched entity, each with its own
baseline; the maths is ``observability.spike``'s, unchanged. So one spike is one alert row
however many replicas run.

A newly elected detector first replays the ``SENTIMENT_ALERT_HISTORY_S`` seconds of counts
kept, silently, to rebuild its baselines, then reconciles with the alerts its predecessor left:
a spike still on carries on under the open alert's id (its resolution updates that row), an
open alert whose spike is over is resolved, and a spike nobody reported yet is reported.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog

from observability.metrics import PipelineMetrics
from observability.spike import AlertKind, DetectorConfig, SpikeAlert, SpikeDetector
from storage import alerts as alert_rows
from storage import second_counts
from storage.second_counts import ALL_POSTS, SecondCount

log = structlog.get_logger(__name__)

ROLE = "spike-detector"  # the advisory lock's name: one holder in the fleet
# Counts of the last REREAD_S seconds are read at every tick: a batch whose transaction began
# that long before it became visible (a stalled database) still reaches the detectors.
REREAD_S = 30.0
PRUNE_EVERY_S = 60.0


class FleetSpikes:
    """The detectors of the elected replica; :meth:`run` is its job, :meth:`prune` another."""

    def __init__(
        self,
        stream_config: DetectorConfig,
        entity_config: DetectorConfig,
        metrics: PipelineMetrics,
        deliver: Callable[[SpikeAlert], None],
        *,
        watched: Callable[[], Collection[str]],
        metric_entities: Callable[[], Collection[str]] = frozenset,
        history_s: float = 900.0,
    ) -> None:
        self._stream_config = stream_config
        self._entity_config = entity_config
        self._metrics = metrics
        self._deliver = deliver
        self._watched = watched
        self._metric_entities = metric_entities
        self._history = timedelta(seconds=history_s)
        self._detectors: dict[str, SpikeDetector] = {}
        self._fed: dict[tuple[datetime, str], tuple[int, int]] = {}
        self._warm = False
        self._exported: set[str] = set()
        for kind in AlertKind:  # export 0 rather than nothing before the first alert
            for scope in ("stream", "entity"):
                metrics.alerts.labels(kind=kind.value, scope=scope)
        self.deposed()

    def elected(self) -> None:
        """A fresh start: the next run rebuilds every detector from the kept counts."""
        self._detectors.clear()
        self._fed.clear()
        self._warm = False
        self._metrics.detector_leader.set(1)

    def deposed(self) -> None:
        self._detectors.clear()
        self._fed.clear()
        self._warm = False
        self._metrics.detector_leader.set(0)
        self._metrics.negative_share.set(math.nan)
        self._metrics.alert_active.set(0)
        for entity in self._exported:
            self._metrics.entity_negative_share.remove(entity)
            self._metrics.entity_alert_active.remove(entity)
        self._exported.clear()

    def run(self, conn: psycopg.Connection[Any]) -> None:
        """One tick: read what is new, feed it, judge every window, deliver what changed."""
        now = second_counts.database_now(conn)
        watched = set(self._watched())
        if not self._warm:
            self._warm_up(conn, now, watched)
            self._warm = True
        else:
            rows = second_counts.read_since(conn, now - timedelta(seconds=REREAD_S))
            self._deliver_all(self._feed(rows, watched))
        self._deliver_all(self._forget_unwatched(watched, now))
        self._deliver_all(
            (scope, alert)
            for scope, detector in self._detectors.items()
            for alert in detector.tick(now)
        )
        self._publish_metrics()

    def prune(self, conn: psycopg.Connection[Any]) -> None:
        """Drop counts older than the history a new detector replays."""
        deleted = second_counts.prune(conn, self._history)
        if deleted:
            log.debug("second counts pruned", rows=deleted)

    @property
    def detectors(self) -> dict[str, SpikeDetector]:
        """Per scope (``''``: the whole stream), the detectors judging now (for tests)."""
        return self._detectors

    def _detector(self, scope: str) -> SpikeDetector:
        detector = self._detectors.get(scope)
        if detector is None:
            config = self._stream_config if scope == ALL_POSTS else self._entity_config
            detector = self._detectors[scope] = SpikeDetector(config)
        return detector

    def _feed(
        self, rows: Sequence[SecondCount], watched: Collection[str]
    ) -> list[tuple[str, SpikeAlert]]:
        """Give each detector the part of each second's counts it has not seen yet."""
        transitions = []
        for row in rows:
            if row.entity != ALL_POSTS and row.entity not in watched:
                continue
            key = (row.second, row.entity)
            seen_negative, seen_total = self._fed.get(key, (0, 0))
            if row.total > seen_total:
                self._fed[key] = (row.negative, row.total)
                detector = self._detector(row.entity)
                alerts = detector.observe(
                    row.second, row.negative - seen_negative, row.total - seen_total
                )
                transitions += [(row.entity, alert) for alert in alerts]
        if rows:
            oldest = max(row.second for row in rows) - timedelta(seconds=REREAD_S + 1)
            self._fed = {key: seen for key, seen in self._fed.items() if key[0] >= oldest}
        return transitions

    def _warm_up(self, conn: psycopg.Connection[Any], now: datetime, watched: set[str]) -> None:
        """Replay the kept counts silently, then take over what the last detector left."""
        since = now - self._history
        rows = second_counts.read_since(conn, since)
        self._feed(rows, watched)  # what the replay fires or clears is history, not news
        for detector in self._detectors.values():
            detector.tick(now)
        recent = alert_rows.recent_alerts(conn, since)
        log.info(
            "spike detector warmed up",
            seconds=len({row.second for row in rows}),
            scopes=len(self._detectors),
            open_alerts=sum(row["resolved_at"] is None for row in recent),
        )
        self._deliver_all(self._take_over(recent, now))

    def _take_over(
        self, recent: list[dict[str, Any]], now: datetime
    ) -> list[tuple[str, SpikeAlert]]:
        open_rows = {
            row["entity"] or ALL_POSTS: row for row in recent if row["resolved_at"] is None
        }
        news: list[tuple[str, SpikeAlert]] = []
        for scope, detector in self._detectors.items():
            active = detector.active
            row = open_rows.pop(scope, None)
            if active is not None and row is not None:
                detector.adopt(row["id"])
            elif active is not None and not any(
                (r["entity"] or ALL_POSTS) == scope and r["detected_at"] >= active.window_start
                for r in recent
            ):
                news.append((scope, active))  # a spike on now that nobody reported
        # Open alerts whose spike is over (or whose entity has no counts any more).
        news += [(scope, _resolved_row(row, now)) for scope, row in open_rows.items()]
        return news

    def _forget_unwatched(
        self, watched: Collection[str], now: datetime
    ) -> list[tuple[str, SpikeAlert]]:
        """Drop the detectors of entities taken off the watchlist, resolving an open alert."""
        gone = [scope for scope in self._detectors if scope != ALL_POSTS and scope not in watched]
        resolved = []
        for scope in gone:
            active = self._detectors.pop(scope).active
            if active is not None:
                resolved.append((scope, replace(active, resolved_at=now)))
        return resolved

    def _deliver_all(self, transitions: Iterable[tuple[str, SpikeAlert]]) -> None:
        for scope, transition in transitions:
            alert = replace(transition, entity=scope or None)
            fields = {"alert_id": str(alert.alert_id), "entity": alert.entity}
            if alert.firing:
                self._metrics.alerts.labels(
                    kind=alert.kind.value, scope="entity" if scope else "stream"
                ).inc()
                log.warning(
                    "negative sentiment spike",
                    **fields,
                    negative_share=round(alert.negative_share, 4),
                    baseline_share=round(alert.baseline_share, 4),
                    zscore=round(alert.zscore, 2),
                    volume=alert.volume,
                )
            else:
                log.info(
                    "negative sentiment spike resolved",
                    **fields,
                    peak_share=round(alert.peak_share, 4),
                )
            self._deliver(alert)

    def _publish_metrics(self) -> None:
        stream = self._detectors.get(ALL_POSTS)
        self._metrics.negative_share.set(_share(stream))
        self._metrics.alert_active.set(1 if stream is not None and stream.active else 0)
        exported = set(self._metric_entities())
        for entity in self._exported - exported:
            self._metrics.entity_negative_share.remove(entity)
            self._metrics.entity_alert_active.remove(entity)
        for entity in exported:
            detector = self._detectors.get(entity)
            self._metrics.entity_negative_share.labels(entity=entity).set(_share(detector))
            active = detector is not None and detector.active is not None
            self._metrics.entity_alert_active.labels(entity=entity).set(1 if active else 0)
        self._exported = exported


def _share(detector: SpikeDetector | None) -> float:
    reading = detector.reading if detector is not None else None
    share = reading.share if reading is not None else None
    return math.nan if share is None else share


def _resolved_row(row: dict[str, Any], now: datetime) -> SpikeAlert:
    """An open alert row, resolved now (what the alert sink and the alerts topic need)."""
    return SpikeAlert(
        alert_id=uuid.UUID(str(row["id"])),
        kind=AlertKind(row["kind"]),
        detected_at=row["detected_at"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        negative_share=row["negative_share"],
        baseline_share=row["baseline_share"],
        volume=row["volume"],
        zscore=row["zscore"],
        dispersion=float((row["details"] or {}).get("dispersion", 1.0)),
        peak_share=row["peak_share"],
        resolved_at=now,
        entity=row["entity"],
    )
