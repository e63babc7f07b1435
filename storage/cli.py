"""`sentiment-stream db upgrade|downgrade|current|maintain`: the schema (Alembic) and its
time partitions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import psycopg
import structlog
from alembic.util.exc import CommandError
from sqlalchemy.exc import OperationalError

from storage.maintenance import MaintenanceReport, StoragePolicy, maintain_storage
from storage.partitions import PartitionPolicy, TableReport
from storage.refusals import refused_for_good
from storage.settings import StorageSettings
from storage.urls import libpq_url, redacted
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings, StartupSettings
from stream_core.shutdown import stop_on_signals
from stream_core.startup import StoppedWhileWaitingError, wait_for

log = structlog.get_logger(__name__)


class DbSettings(StorageSettings, StartupSettings, LoggingSettings):
    """What the `db` commands read from the environment and their setting flags."""


@contextmanager
def database_errors(database_url: str, missing: str) -> Iterator[None]:
    """For the commands that read and change tables (``watch``, the registry's ``model``
    commands): a missing table (``missing`` names it) and an unreachable database become one
    clear line each."""
    try:
        yield
    except psycopg.errors.UndefinedTable:
        raise click.ClickException(
            f"no {missing} in {redacted(database_url)}: run `sentiment-stream db upgrade` first"
        ) from None
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[0]
        raise click.ClickException(
            f"cannot reach the database at {redacted(database_url)}: {reason}"
        ) from None


@click.group()
def db() -> None:
    """Database schema management (Alembic migrations)."""


def _run(kwargs: dict[str, Any], action: Callable[[str], None], *, wait: bool = False) -> None:
    """``action(database_url)`` with clear errors; with ``wait``, a database that does not answer
    yet is waited for up to the start-up timeout (a migration is one transaction: a retry after
    a lost connection starts it over)."""
    from storage import migrate

    settings = load_settings(DbSettings, kwargs)
    configure_logging(settings.log_level, settings.log_format)
    url = settings.database_url_value()
    timeout_s = settings.startup_timeout_s if wait else 0.0
    try:
        with stop_on_signals(threading.Event()) as stop:
            wait_for(
                "PostgreSQL",
                lambda: action(url),
                timeout_s=timeout_s,
                worth_waiting=lambda e: (
                    isinstance(e, OperationalError | psycopg.OperationalError)
                    and not refused_for_good(e)
                ),
                stop=stop,
            )
    except (OperationalError, psycopg.OperationalError) as error:
        suffix = ""
        if timeout_s and not refused_for_good(error):
            suffix = f" (gave up after {timeout_s:g} s; see --startup-timeout-s)"
        raise click.ClickException(migrate.unreachable(url, error) + suffix) from None
    except CommandError as error:
        raise click.ClickException(str(error)) from None
    except StoppedWhileWaitingError as error:
        raise click.ClickException(str(error)) from None


db_settings = settings_options(DbSettings, "database_url", "log_level", "log_format")
partition_settings = settings_options(DbSettings, "partition_interval", "partitions_ahead")


@db.command()
@click.argument("revision", default="head")
@db_settings
@settings_options(DbSettings, "startup_timeout_s")
@partition_settings
def upgrade(revision: str, **kwargs: Any) -> None:
    """Upgrade the schema to REVISION (default: the newest), then create the time partitions
    ahead.

    Waits up to --startup-timeout-s for PostgreSQL to answer (a migrate job started beside its
    database comes up with it).
    """
    from storage import migrate

    policy = PartitionPolicy.from_settings(load_settings(DbSettings, kwargs))
    _run(kwargs, lambda url: migrate.upgrade(url, revision, policy), wait=True)
    click.echo(f"upgraded to {revision}")


@db.command()
@click.argument("revision")
@db_settings
def downgrade(revision: str, **kwargs: Any) -> None:
    """Downgrade the schema to REVISION ('base' removes every table)."""
    from storage import migrate

    _run(kwargs, lambda url: migrate.downgrade(url, revision))
    click.echo(f"downgraded to {revision}")


@db.command()
@db_settings
def current(**kwargs: Any) -> None:
    """Print the revision the database is at ('none' before the first upgrade)."""
    from storage import migrate

    found: list[str | None] = []
    _run(kwargs, lambda url: found.append(migrate.current_revision(url)))
    click.echo(found[0] or "none")


@db.command()
@db_settings
@partition_settings
@settings_options(DbSettings, "retention_days", "aggregate_retention_days")
def maintain(**kwargs: Any) -> None:
    """Create the time partitions ahead, drop the expired ones, refresh the hourly and daily
    counts and delete aggregates past their retention.

    Consumers run this every --maintenance-interval-s (one of the fleet at a time); run it
    from cron instead when they do not.
    """
    policy = StoragePolicy.from_settings(load_settings(DbSettings, kwargs))
    reports: list[MaintenanceReport] = []

    def run(url: str) -> None:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            reports.append(maintain_storage(conn, policy))

    _run(kwargs, run)
    (report,) = reports
    for table in report.tables:
        click.echo(describe(table))
    deleted = sum(report.aggregates_deleted.values())
    click.echo(
        f"aggregates: {report.rollups.hours} hours and {report.rollups.days} days refreshed,"
        f" {deleted} rows past the retention deleted"
    )
    click.echo(f"maintenance done in {report.seconds:.2f} s")


def describe(report: TableReport) -> str:
    """One line on what maintenance did to a table."""
    parts = [f"{report.table}: rows kept from {report.kept_from:%Y-%m-%d %H:%M} UTC"]
    if report.created:
        parts.append(f"created {', '.join(p.name for p in report.created)}")
    if report.moved_rows:
        parts.append(f"moved {report.moved_rows} rows out of the default partition")
    if report.dropped:
        size = sum(d.bytes for d in report.dropped) / 1e6
        seconds = sum(d.seconds for d in report.dropped)
        names = ", ".join(d.name for d in report.dropped)
        parts.append(f"dropped {names} ({size:.1f} MB in {seconds:.3f} s)")
    if report.stray_rows_deleted:
        parts.append(f"deleted {report.stray_rows_deleted} expired rows of the default partition")
    if report.busy:
        parts.append(f"left for the next run (locked): {', '.join(report.busy)}")
    if report.untimed_rows:
        parts.append(f"{report.untimed_rows} rows without a timestamp kept (default partition)")
    return "; ".join(parts)
