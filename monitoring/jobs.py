"""The monitoring jobs: online quality and drift, measured from PostgreSQL on a timer.

:func:`monitoring_jobs` returns an ``ElectedJobs`` (role ``monitoring``): exactly one replica
of the fleet runs them, whatever the number of consumers, and never in the hot path. Each tick
(``SENTIMENT_MONITOR_INTERVAL_S``) measures the windows that are due: a window is measured
again once 1/96 of its span has passed (15m: every ~9 s, bounded by the tick; 24h: every
15 min), and a newly elected replica measures every window at once.

* quality: applies gold labels whose post arrived meanwhile (``storage.gold_labels``), then
  ``storage.quality.quality_by_version`` per window, into the ``sentiment_quality_*`` gauges;
* drift: the served model's reference profile against the profile of the window's newest
  posts (``model.profile``), one ``drift_reports`` row and one ``sentiment_drift_psi`` series
  per feature. No reference profile or too few posts: ``monitoring_runs`` says
  ``unavailable`` and why, and no PSI is exported (never a 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import structlog

from model.profile import PROFILE_FILE, Profile, ProfileBuilder, ProfileError, compare
from monitoring.metrics import MonitoringMetrics
from monitoring.settings import MonitoringSettings
from storage import drift as drift_store
from storage.coordination import ElectedJobs
from storage.gold_labels import apply_pending, pending_count
from storage.quality import quality_by_version

log = structlog.get_logger(__name__)

ROLE = "monitoring"
SPAN_FRACTION = 96  # a window is re-measured once 1/96 of its span has passed
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Due:
    """When each window was last measured (monotonic seconds)."""

    windows: Mapping[str, timedelta]
    last: dict[str, float] = field(default_factory=dict)

    def due(self, now: float) -> list[str]:
        return [
            name
            for name, span in self.windows.items()
            if now - self.last.get(name, -math.inf) >= span.total_seconds() / SPAN_FRACTION
        ]

    def reset(self) -> None:
        self.last.clear()


@dataclass(frozen=True)
class ServedModel:
    """What the jobs need of the served model."""

    version: str
    labels: tuple[str, ...]
    reference_macro_recall: float | None
    profile: Profile | None
    builder: ProfileBuilder | None
    unavailable_reason: str | None = None


class MonitoringJobs:
    """The quality and drift tasks of one replica; ``jobs`` runs them while elected."""

    def __init__(
        self,
        settings: MonitoringSettings,
        served: ServedModel,
        metrics: MonitoringMetrics,
        *,
        clock: Clock = _utc_now,
    ) -> None:
        self.settings = settings
        self.served = served
        self.metrics = metrics
        self._clock = clock
        self._quality_due = _Due(settings.windows())
        self._drift_due = _Due(settings.windows())
        metrics.quality_alert_margin.set(settings.quality_alert_margin)
        metrics.quality_alert_min_labelled.set(settings.quality_alert_min_labelled)
        metrics.drift_psi_threshold.set(settings.drift_psi_threshold)
        for task in ("quality", "drift"):
            metrics.monitoring_interval.labels(task).set(settings.monitor_interval_s)
        self.serve(served)

    def serve(self, served: ServedModel) -> None:
        """Measure ``served`` from the next run on (the model registry swapped the version)."""
        self.served = served
        if served.reference_macro_recall is not None:
            self.metrics.quality_reference_macro_recall.labels(served.version).set(
                served.reference_macro_recall
            )
        self._drift_due.reset()

    # --- leadership ---

    def elected(self) -> None:
        self._quality_due.reset()
        self._drift_due.reset()
        self.metrics.monitoring_leader.set(1)

    def deposed(self) -> None:
        self.metrics.monitoring_leader.set(0)
        for gauge in self.metrics.measured():
            gauge.clear()
        self.metrics.gold_labels_pending.set(math.nan)

    # --- quality ---

    def run_quality(self, conn: psycopg.Connection[Any]) -> None:
        """Apply pending labels whose post arrived, then measure the due quality windows."""
        started = time.monotonic()
        applied = apply_pending(conn)
        self.metrics.gold_labels_pending.set(pending_count(conn))
        due = self._quality_due.due(started)
        now = self._clock()
        for name in due:
            span = self._quality_due.windows[name]
            measured = quality_by_version(conn, since=now - span, until=now)
            m = self.metrics
            _set_window(
                m.quality_labelled_posts, name, {(v, name): q.total for v, q in measured.items()}
            )
            _set_window(
                m.quality_macro_recall,
                name,
                {(v, name): q.macro_recall for v, q in measured.items()},
            )
            _set_window(
                m.quality_accuracy, name, {(v, name): q.accuracy for v, q in measured.items()}
            )
            _set_window(
                m.quality_recall,
                name,
                {
                    (v, name, label): float(recall)
                    for v, q in measured.items()
                    for label, recall in zip(q.labels, q.recall, strict=True)
                },
            )
            self._quality_due.last[name] = started
        self._finished("quality", started, {"windows": due, "labels_applied": applied})

    # --- drift ---

    def run_drift(self, conn: psycopg.Connection[Any]) -> None:
        """Measure the due drift windows of the served model."""
        started = time.monotonic()
        due = self._drift_due.due(started)
        now = self._clock()
        outcomes: dict[str, str] = {}
        for name in due:
            outcomes[name] = self._drift_window(conn, name, now)
            self._drift_due.last[name] = started
        if outcomes:
            failed = {w: o for w, o in outcomes.items() if o != "ok"}
            reason = "; ".join(f"{w}: {o}" for w, o in failed.items()) or None
            drift_store.record_run(
                conn,
                drift_store.MonitoringRun(
                    "drift",
                    self.served.version,
                    now,
                    time.monotonic() - started,
                    "unavailable" if failed else "ok",
                    reason,
                    {"windows": outcomes},
                ),
            )
        self._finished("drift", started, {"windows": due})

    def _drift_window(self, conn: psycopg.Connection[Any], name: str, now: datetime) -> str:
        """Measure one window; 'ok', or why it is unavailable."""
        served = self.served
        span = self._drift_due.windows[name]
        if served.profile is None or served.builder is None:
            self._unavailable(name)
            return served.unavailable_reason or "the model folder has no reference profile"
        posts = drift_store.window_posts(
            conn, served.version, now - span, now, self.settings.drift_max_posts
        )
        if len(posts.texts) < self.settings.drift_min_posts:
            self._unavailable(name)
            return f"{len(posts.texts)} posts, fewer than {self.settings.drift_min_posts}"
        online = served.builder.build(posts.texts, posts.probabilities)
        drifts = compare(served.profile, online)
        with conn.transaction():  # one computation lands whole or not at all
            drift_store.insert_reports(
                conn,
                [
                    drift_store.DriftReport(
                        computed_at=now,
                        model_version=served.version,
                        time_window=name,
                        window_start=now - span,
                        window_end=now,
                        feature=d.feature,
                        psi=d.psi,
                        js_distance=d.js_distance,
                        online_posts=d.online_posts,
                        reference_posts=d.reference_posts,
                        details=d.details(),
                    )
                    for d in drifts
                ],
            )
        _set_window(self.metrics.drift_psi, name, {(d.feature, name): d.psi for d in drifts})
        _set_window(
            self.metrics.drift_js_distance, name, {(d.feature, name): d.js_distance for d in drifts}
        )
        self.metrics.drift_available.labels(name).set(1)
        return "ok"

    def _unavailable(self, window: str) -> None:
        _set_window(self.metrics.drift_psi, window, {})
        _set_window(self.metrics.drift_js_distance, window, {})
        self.metrics.drift_available.labels(window).set(0)

    def _finished(self, task: str, started: float, details: dict[str, Any]) -> None:
        duration = time.monotonic() - started
        self.metrics.monitoring_run_seconds.labels(task).set(duration)
        self.metrics.monitoring_last_run.labels(task).set(time.time())
        log.debug("monitoring task done", task=task, duration_s=round(duration, 3), **details)


def _set_window(gauge: Any, window: str, values: Mapping[tuple[str, ...], float]) -> None:
    """Set ``values`` (label values -> value), then remove the window's other series (a version
    or feature that left the window must not linger). Set before removed: a scrape between the
    two never misses a series that still exists, which would reset an alert's `for:`."""
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    position = list(gauge._labelnames).index("window")
    for labels in list(gauge._metrics):
        if labels[position] == window and labels not in values:
            gauge.remove(*labels)


def served_model(
    version: str,
    labels: tuple[str, ...],
    folder: Path | None,
    offline_metrics: Mapping[str, Any] | None,
) -> ServedModel:
    """What the jobs know of the model loaded from ``folder``: its reference macro recall and
    reference profile (None, with the reason, when the folder has none or an unreadable one)."""
    reference = (offline_metrics or {}).get("macro_recall")
    recall = float(reference) if isinstance(reference, int | float) else None
    if folder is None:
        return ServedModel(version, labels, recall, None, None, "the model has no folder")
    try:
        profile = Profile.read(folder)
    except ProfileError as error:
        log.warning("reference profile unreadable: drift unavailable", error=str(error))
        return ServedModel(version, labels, recall, None, None, str(error))
    if profile is None:
        log.warning(
            "the model folder has no reference profile: drift unavailable "
            "(write one with `sentiment-stream model profile`)",
            folder=str(folder),
        )
        return ServedModel(version, labels, recall, None, None, f"{folder} has no {PROFILE_FILE}")
    return ServedModel(version, labels, recall, profile, ProfileBuilder.for_folder(folder))


def monitoring_jobs(database_url: str, jobs: MonitoringJobs) -> ElectedJobs:
    """The elected runner of ``jobs`` (not started)."""
    elected = ElectedJobs(database_url, ROLE, on_elected=jobs.elected, on_deposed=jobs.deposed)
    every = jobs.settings.monitor_interval_s
    elected.add("quality", every, jobs.run_quality)
    elected.add("drift", every, jobs.run_drift)
    return elected
