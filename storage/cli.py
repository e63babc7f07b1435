"""`sentiment-stream db ...`."""

import click


@click.group()
def db() -> None:
    """Database schema management (Alembic migrations)."""
