"""`sentiment-stream db upgrade|downgrade|current`: the schema, via Alembic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import structlog
from alembic.util.exc import CommandError
from sqlalchemy.exc import OperationalError

from stream_core.logs import configure_logging
from stream_core.settings import Settings, load_settings, settings_options

log = structlog.get_logger(__name__)


@click.group()
def db() -> None:
    """Database schema management (Alembic migrations)."""


def _run(kwargs: dict[str, Any], action: Callable[[str], None]) -> None:
    from storage import migrate

    settings: Settings = load_settings(kwargs)
    configure_logging(settings.log_level, settings.log_format)
    url = settings.database_url_value()
    try:
        action(url)
    except OperationalError as error:
        raise click.ClickException(migrate.unreachable(url, error)) from None
    except CommandError as error:
        raise click.ClickException(str(error)) from None


db_settings = settings_options("database_url", "log_level", "log_format")


@db.command()
@click.argument("revision", default="head")
@db_settings
def upgrade(revision: str, **kwargs: Any) -> None:
    """Upgrade the schema to REVISION (default: the newest)."""
    from storage import migrate

    _run(kwargs, lambda url: migrate.upgrade(url, revision))
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
