"""`sentiment-stream db upgrade|downgrade|current`: the schema, via Alembic."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import click
import structlog
from alembic.util.exc import CommandError
from sqlalchemy.exc import OperationalError

from storage.refusals import refused_for_good
from storage.settings import DatabaseSettings
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings, StartupSettings
from stream_core.shutdown import stop_on_signals
from stream_core.startup import StoppedWhileWaitingError, wait_for

log = structlog.get_logger(__name__)


class DbSettings(DatabaseSettings, StartupSettings, LoggingSettings):
    """What the `db` commands read from the environment and their setting flags."""


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
                worth_waiting=lambda e: isinstance(e, OperationalError) and not refused_for_good(e),
                stop=stop,
            )
    except OperationalError as error:
        suffix = ""
        if timeout_s and not refused_for_good(error):
            suffix = f" (gave up after {timeout_s:g} s; see --startup-timeout-s)"
        raise click.ClickException(migrate.unreachable(url, error) + suffix) from None
    except CommandError as error:
        raise click.ClickException(str(error)) from None
    except StoppedWhileWaitingError as error:
        raise click.ClickException(str(error)) from None


db_settings = settings_options(DbSettings, "database_url", "log_level", "log_format")


@db.command()
@click.argument("revision", default="head")
@db_settings
@settings_options(DbSettings, "startup_timeout_s")
def upgrade(revision: str, **kwargs: Any) -> None:
    """Upgrade the schema to REVISION (default: the newest).

    Waits up to --startup-timeout-s for PostgreSQL to answer (a migrate job started beside its
    database comes up with it).
    """
    from storage import migrate

    _run(kwargs, lambda url: migrate.upgrade(url, revision), wait=True)
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
