"""`db maintain` on a timer inside the consumers, run by one replica of the fleet at a time.

The replicas elect the runner through a PostgreSQL advisory lock (``storage.coordination``):
when it dies its session ends, and another replica takes the role over within seconds. Every
step of the work is idempotent and takes its own locks, so a takeover in the middle is harmless.
"""

from __future__ import annotations

from typing import Any

import psycopg
import structlog

from storage.coordination import ElectedJobs
from storage.partitions import PartitionPolicy, TableReport, maintain
from stream_core.settings import Settings

log = structlog.get_logger(__name__)

ROLE = "storage-maintenance"


def log_report(report: TableReport) -> None:
    log.info(
        "table maintained",
        table=report.table,
        kept_from=report.kept_from.isoformat() if report.kept_from else None,
        created=[p.name for p in report.created],
        moved_rows=report.moved_rows,
        dropped=[d.name for d in report.dropped],
        dropped_bytes=sum(d.bytes for d in report.dropped),
        busy=report.busy,
        stray_rows_deleted=report.stray_rows_deleted,
        untimed_rows=report.untimed_rows,
    )


def maintenance_jobs(settings: Settings) -> ElectedJobs | None:
    """The fleet's storage maintenance, to ``start()`` beside the pipeline and ``stop()`` after
    it; None when ``maintenance_interval_s`` is 0 (`db maintain` runs from cron instead)."""
    if not settings.maintenance_interval_s:
        return None
    policy = PartitionPolicy.from_settings(settings)

    def partitions(conn: psycopg.Connection[Any]) -> None:
        for report in maintain(conn, policy):
            log_report(report)

    jobs = ElectedJobs(settings.database_url_value(), ROLE)
    jobs.add("partitions", settings.maintenance_interval_s, partitions)
    return jobs
