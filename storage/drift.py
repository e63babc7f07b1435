"""Drift monitoring's SQL: the posts of a window, ``drift_reports`` and ``monitoring_runs``.

The elected monitoring job reads a window's newest posts (:func:`window_posts`), writes one
``drift_reports`` row per feature (:func:`insert_reports`) and one ``monitoring_runs`` row per
task and model version (:func:`record_run`); ``GET /drift``, the report and the dashboards
read them back (:func:`latest_reports`, :func:`reports_over_time`, :func:`runs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.types.json import Jsonb

# Newest first, bounded: a window's profile is a sample of its last `limit` posts.
# Served by ix_scored_posts_scored_at on every partition.
WINDOW_POSTS = """
SELECT text, prob_negative, prob_neutral, prob_positive
FROM scored_posts
WHERE model_version = %(version)s AND scored_at >= %(since)s AND scored_at < %(until)s
ORDER BY scored_at DESC
LIMIT %(limit)s
"""

INSERT_REPORT = """
INSERT INTO drift_reports (computed_at, model_version, time_window, window_start, window_end,
    feature, psi, js_distance, online_posts, reference_posts, details)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT uq_drift_reports_computation DO NOTHING
"""

LATEST_REPORTS = """
SELECT DISTINCT ON (time_window, feature)
    computed_at, model_version, time_window, window_start, window_end, feature, psi,
    js_distance, online_posts, reference_posts, details
FROM drift_reports
WHERE model_version = %(version)s
ORDER BY time_window, feature, computed_at DESC
"""

REPORTS_OVER_TIME = """
SELECT computed_at, model_version, time_window, window_start, window_end, feature, psi,
    js_distance, online_posts, reference_posts, details
FROM drift_reports
WHERE time_window = %(window)s AND computed_at >= %(since)s AND computed_at < %(until)s
ORDER BY computed_at, feature
"""

RECORD_RUN = """
INSERT INTO monitoring_runs AS runs (task, model_version, finished_at, duration_s, status,
    reason, details)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (task, model_version) DO UPDATE SET finished_at = EXCLUDED.finished_at,
    duration_s = EXCLUDED.duration_s, status = EXCLUDED.status, reason = EXCLUDED.reason,
    details = EXCLUDED.details
"""

RUNS = """
SELECT task, model_version, finished_at, duration_s, status, reason, details
FROM monitoring_runs
WHERE %(version)s::text IS NULL OR model_version = %(version)s::text
ORDER BY task, model_version
"""


@dataclass(frozen=True)
class WindowPosts:
    texts: list[str]
    probabilities: npt.NDArray[np.float64]  # rows: negative, neutral, positive


@dataclass(frozen=True)
class DriftReport:
    """One row of ``drift_reports``."""

    computed_at: datetime
    model_version: str
    time_window: str
    window_start: datetime
    window_end: datetime
    feature: str
    psi: float
    js_distance: float
    online_posts: int
    reference_posts: int
    details: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "computed_at": self.computed_at.isoformat(),
            "window": self.time_window,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "feature": self.feature,
            "psi": round(self.psi, 5),
            "js_distance": round(self.js_distance, 5),
            "online_posts": self.online_posts,
            "reference_posts": self.reference_posts,
            "details": self.details,
        }


@dataclass(frozen=True)
class MonitoringRun:
    """One row of ``monitoring_runs``: a task's last run for a model version."""

    task: str
    model_version: str
    finished_at: datetime
    duration_s: float
    status: str
    reason: str | None
    details: dict[str, Any]


def window_posts(
    conn: psycopg.Connection[Any], version: str, since: datetime, until: datetime, limit: int
) -> WindowPosts:
    """The newest ``limit`` posts ``version`` scored in ``[since, until)``."""
    rows = conn.execute(
        WINDOW_POSTS, {"version": version, "since": since, "until": until, "limit": limit}
    ).fetchall()
    probabilities = np.array([row[1:] for row in rows], dtype=np.float64).reshape(len(rows), 3)
    return WindowPosts([row[0] for row in rows], probabilities)


def insert_reports(conn: psycopg.Connection[Any], reports: Sequence[DriftReport]) -> None:
    """Store one computation's rows (idempotent: a computation is keyed by its time)."""
    with conn.cursor() as cursor:
        cursor.executemany(
            INSERT_REPORT,
            [
                (
                    r.computed_at,
                    r.model_version,
                    r.time_window,
                    r.window_start,
                    r.window_end,
                    r.feature,
                    r.psi,
                    r.js_distance,
                    r.online_posts,
                    r.reference_posts,
                    Jsonb(r.details),
                )
                for r in reports
            ],
        )


def latest_reports(conn: psycopg.Connection[Any], version: str) -> list[DriftReport]:
    """The newest row of every window and feature measured for ``version``."""
    return [DriftReport(*row) for row in conn.execute(LATEST_REPORTS, {"version": version})]


def reports_over_time(
    conn: psycopg.Connection[Any], window: str, since: datetime, until: datetime
) -> list[DriftReport]:
    """Every row of ``window`` computed in ``[since, until)``, oldest first."""
    params = {"window": window, "since": since, "until": until}
    return [DriftReport(*row) for row in conn.execute(REPORTS_OVER_TIME, params)]


def record_run(conn: psycopg.Connection[Any], run: MonitoringRun) -> None:
    conn.execute(
        RECORD_RUN,
        (
            run.task,
            run.model_version,
            run.finished_at,
            run.duration_s,
            run.status,
            run.reason,
            Jsonb(run.details),
        ),
    )


def runs(conn: psycopg.Connection[Any], version: str | None = None) -> list[MonitoringRun]:
    """The last run of every task (of ``version`` only, when given)."""
    return [MonitoringRun(*row) for row in conn.execute(RUNS, {"version": version})]
