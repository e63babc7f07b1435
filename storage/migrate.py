"""Alembic, driven from code: the Config points at the installed ``migrations`` package."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import OperationalError

import migrations
from storage.partitions import PartitionPolicy, maintain
from storage.urls import libpq_url, redacted


def alembic_config(database_url: str) -> Config:
    """A Config that needs no alembic.ini: script location and URL are set here."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # Kept out of the ini options, where '%' in a password would be read as interpolation.
    config.attributes["url"] = database_url
    return config


def unreachable(database_url: str, error: OperationalError | psycopg.OperationalError) -> str:
    """What to tell a user whose database did not answer (the password masked)."""
    cause = error.orig if isinstance(error, OperationalError) else None
    reason = " ".join(str(cause or error).split())  # one line: libpq adds a hint line
    return f"cannot reach the database at {redacted(database_url)}: {reason}"


def upgrade(
    database_url: str, revision: str = "head", policy: PartitionPolicy | None = None
) -> None:
    """Migrate to ``revision``, then create the time partitions ahead (it never drops any)."""
    command.upgrade(alembic_config(database_url), revision)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        maintain(conn, policy or PartitionPolicy(), expire=False)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
