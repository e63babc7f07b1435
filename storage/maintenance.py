"""Storage maintenance: what `db maintain` does, and the same on timers inside the consumers.

:func:`maintain_storage` creates and drops time partitions (``storage.partitions``), refreshes
the hourly and daily counts and deletes aggregates past their retention (``storage.rollups``).
In the consumers, one replica of the fleet runs it every ``maintenance_interval_s`` and refreshes
the rollups every ``rollup_interval_s``: the replicas elect the runner through a PostgreSQL
advisory lock (``storage.coordination``); when it dies its session ends, and another takes the
role over within seconds. Every step is idempotent and takes its own locks, so a takeover in the
middle is harmless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import structlog

from storage import rollups
from storage.coordination import ElectedJobs
from storage.partitions import PartitionPolicy, TableReport, floor, maintain
from storage.settings import StorageSettings

log = structlog.get_logger(__name__)

ROLE = "storage-maintenance"


@dataclass(frozen=True)
class StoragePolicy:
    partitions: PartitionPolicy = field(default_factory=PartitionPolicy)
    aggregate_retention: timedelta = timedelta(days=365)

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> StoragePolicy:
        return cls(
            PartitionPolicy.from_settings(settings),
            timedelta(days=settings.aggregate_retention_days),
        )

    def aggregate_horizon(self, now: datetime) -> datetime:
        """Aggregates from here on are kept: whole UTC days, at least the retention."""
        return floor(now - self.aggregate_retention, "day")


@dataclass
class MaintenanceReport:
    tables: list[TableReport]
    rollups: rollups.RefreshReport
    aggregates_deleted: dict[str, int]
    seconds: float


def _now(conn: psycopg.Connection[Any]) -> datetime:
    (now,) = conn.execute("SELECT now()").fetchone() or (datetime.now(UTC),)
    assert isinstance(now, datetime)
    return now


def refresh_rollups(
    conn: psycopg.Connection[Any], policy: StoragePolicy, *, now: datetime | None = None
) -> rollups.RefreshReport:
    return rollups.refresh(conn, policy.aggregate_horizon(now or _now(conn)))


def maintain_storage(
    conn: psycopg.Connection[Any], policy: StoragePolicy, *, now: datetime | None = None
) -> MaintenanceReport:
    """Partitions ahead and expired, rollups refreshed, old aggregates deleted (``conn`` in
    autocommit mode; ``now`` from the database unless given)."""
    started = time.perf_counter()
    now = now or _now(conn)
    tables = maintain(conn, policy.partitions, now=now)
    refreshed = refresh_rollups(conn, policy, now=now)
    with conn.transaction():
        deleted = rollups.expire(conn, policy.aggregate_horizon(now))
    return MaintenanceReport(tables, refreshed, deleted, time.perf_counter() - started)


def log_report(report: MaintenanceReport) -> None:
    for table in report.tables:
        log.info(
            "table maintained",
            table=table.table,
            kept_from=table.kept_from.isoformat() if table.kept_from else None,
            created=[p.name for p in table.created],
            moved_rows=table.moved_rows,
            dropped=[d.name for d in table.dropped],
            dropped_bytes=sum(d.bytes for d in table.dropped),
            busy=table.busy,
            stray_rows_deleted=table.stray_rows_deleted,
            untimed_rows=table.untimed_rows,
        )
    log.info(
        "aggregates maintained",
        hours_refreshed=report.rollups.hours,
        days_refreshed=report.rollups.days,
        rows_deleted=sum(report.aggregates_deleted.values()),
        seconds=round(report.seconds, 3),
    )


def maintenance_jobs(settings: StorageSettings) -> ElectedJobs:
    """The fleet's storage maintenance, to ``start()`` beside the pipeline and ``stop()`` after
    it: rollups refreshed every ``rollup_interval_s``, and :func:`maintain_storage` every
    ``maintenance_interval_s`` unless that is 0 (`db maintain` then runs from cron)."""
    policy = StoragePolicy.from_settings(settings)

    def refresh(conn: psycopg.Connection[Any]) -> None:
        report = refresh_rollups(conn, policy)
        log.debug("rollups refreshed", hours=report.hours, days=report.days)

    jobs = ElectedJobs(settings.database_url_value(), ROLE)
    jobs.add("refresh rollups", settings.rollup_interval_s, refresh)
    if settings.maintenance_interval_s:
        jobs.add(
            "maintain",
            settings.maintenance_interval_s,
            lambda c: log_report(maintain_storage(c, policy)),
        )
    return jobs
