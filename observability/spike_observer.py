"""Wires the spike detector to the pipeline: committed batches in; metrics and alerts out."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from observability.metrics import PipelineMetrics
from observability.spike import AlertKind, SpikeAlert, SpikeDetector
from stream_core.events import CommittedBatch

log = structlog.get_logger(__name__)

NEGATIVE = "negative"


class SpikeObserver:
    """A :class:`~stream_core.events.BatchObserver` that runs the detector on committed posts.

    Alerts go to ``deliver`` (the :class:`~observability.alert_sink.AlertSink`), which must not
    block. ``tick`` is called about once a second by the runtime so that an alert still clears
    when the stream stops.
    """

    def __init__(
        self,
        detector: SpikeDetector,
        metrics: PipelineMetrics,
        deliver: Callable[[SpikeAlert], None],
    ) -> None:
        self._detector = detector
        self._metrics = metrics
        self._deliver = deliver
        self._lock = threading.Lock()
        for kind in AlertKind:  # export 0 rather than nothing before the first alert
            metrics.alerts.labels(kind=kind.value)
        metrics.alert_active.set(0)
        metrics.negative_share.set(math.nan)

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        labels = [post.label for post in batch.posts if post.label is not None]  # scored ones
        negative = sum(label == NEGATIVE for label in labels)
        with self._lock:
            alerts = self._detector.observe(batch.committed_at, negative, len(labels))
            self._publish(alerts)

    def tick(self, now: datetime | None = None) -> None:
        with self._lock:
            self._publish(self._detector.tick(now or datetime.now(UTC)))

    def _publish(self, alerts: list[SpikeAlert]) -> None:
        reading = self._detector.reading
        share = reading.share if reading is not None else None
        self._metrics.negative_share.set(math.nan if share is None else share)
        self._metrics.alert_active.set(1 if self._detector.active is not None else 0)
        for alert in alerts:
            if alert.firing:
                self._metrics.alerts.labels(kind=alert.kind.value).inc()
                log.warning(
                    "negative sentiment spike",
                    alert_id=str(alert.alert_id),
                    negative_share=round(alert.negative_share, 4),
                    baseline_share=round(alert.baseline_share, 4),
                    zscore=round(alert.zscore, 2),
                    volume=alert.volume,
                )
            else:
                log.info(
                    "negative sentiment spike resolved",
                    alert_id=str(alert.alert_id),
                    peak_share=round(alert.peak_share, 4),
                )
            self._deliver(alert)
