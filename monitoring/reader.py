"""What ``GET /quality``, ``GET /drift`` and ``/stats`` serve: read from PostgreSQL on request,
so every replica answers the same whichever one runs the jobs.

Quality is measured on request (an index-only scan of the labelled rows per window); drift is
the last computation the elected job stored, with ``available: false`` and the reason when it
could not be measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from storage import drift as drift_store
from storage.quality import quality_by_version
from storage.urls import libpq_url

CONNECT_TIMEOUT_S = 5


class MonitoringReader:
    """Reads quality and drift documents for ``version`` over ``windows``."""

    def __init__(
        self,
        database_url: str,
        version: str,
        windows: Mapping[str, timedelta],
        *,
        offline_metrics: Mapping[str, Any] | None = None,
        psi_threshold: float = 0.2,
    ) -> None:
        self._url = libpq_url(database_url)
        self.version = version
        self.windows = dict(windows)
        self.offline_metrics = offline_metrics
        self.psi_threshold = psi_threshold

    def serve(self, version: str, offline_metrics: Mapping[str, Any] | None) -> None:
        """Read ``version``'s documents from now on (the model registry swapped it)."""
        self.version, self.offline_metrics = version, offline_metrics

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)

    def quality(self, windows: Mapping[str, timedelta] | None = None) -> dict[str, Any]:
        """Per window, per model version with gold labels in it: count, macro recall,
        accuracy, per-class figures and confusion matrix; beside the offline reference."""
        now = datetime.now(UTC)
        found: dict[str, Any] = {}
        with self._connect() as conn:
            for name, span in (windows or self.windows).items():
                measured = quality_by_version(conn, since=now - span, until=now)
                found[name] = {v: q.document() for v, q in measured.items()}
        reference = self.offline_metrics
        return {
            "model_version": self.version,
            "measured_at": now.isoformat(),
            "offline_reference": {
                key: reference.get(key) for key in ("macro_recall", "accuracy", "splits", "n")
            }
            if reference
            else None,
            "windows": found,
        }

    def drift(self) -> dict[str, Any]:
        """The last drift computation of every window and feature of the served version."""
        with self._connect() as conn:
            reports = drift_store.latest_reports(conn, self.version)
            runs = drift_store.runs(conn, self.version)
        run = next((r for r in runs if r.task == "drift"), None)
        outcomes: dict[str, str] = dict(run.details.get("windows") or {}) if run else {}
        features: dict[str, dict[str, Any]] = {name: {} for name in self.windows}
        for report in reports:
            if report.time_window in features:
                features[report.time_window][report.feature] = report.document()
        windows = {
            name: self._window(found, outcomes.get(name)) for name, found in features.items()
        }
        return {
            "model_version": self.version,
            "available": any(w["available"] for w in windows.values()),
            "psi_threshold": self.psi_threshold,
            "last_run": None
            if run is None
            else {
                "finished_at": run.finished_at.isoformat(),
                "duration_s": round(run.duration_s, 4),
                "status": run.status,
                "reason": run.reason,
            },
            "windows": windows,
        }

    def _window(self, features: dict[str, dict[str, Any]], outcome: str | None) -> dict[str, Any]:
        """One window: available only when its last computation measured it; then its
        features, highest PSI and the features over the threshold. Never a 0 for "unknown"."""
        if outcome not in (None, "ok") or not features:
            return {"available": False, "reason": outcome or "not measured yet"}
        psis = {name: doc["psi"] for name, doc in features.items()}
        return {
            "available": True,
            "computed_at": max(doc["computed_at"] for doc in features.values()),
            "max_psi": max(psis.values()),
            "drifted": sorted(name for name, value in psis.items() if value > self.psi_threshold),
            "features": features,
        }
