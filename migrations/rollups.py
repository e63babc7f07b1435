"""For migrations that add a family of counts: hourly and daily rollups of its minute table.

A counted family is a ``<name>_minute_counts`` table keyed by ``(minute, <dimensions>...)`` with
a ``count`` column, fed exactly by a write part. One line in its migration adds exact hourly and
daily counts derived from it, refreshed by `db maintain` and the consumers (``storage.rollups``)::

    add_rollups("language_minute_counts")      # language_hour_counts, language_day_counts

and ``drop_rollups("language_minute_counts")`` in the downgrade, before dropping the table.

How it stays exact: a statement-level trigger on the minute table notes which UTC hours each
write touched (``rollup_pending_hours``: an append, no lock another writer could wait on);
the refresh recomputes those hours from the minute counts, and their days from the hours.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

REGISTRY = "count_rollups"
PENDING = "rollup_pending_hours"
MARK_PENDING = "rollup_mark_pending"


def rollup_table(minute_table: str, resolution: str) -> str:
    """``sentiment_minute_counts`` -> ``sentiment_hour_counts`` (``resolution``: hour, day)."""
    if not minute_table.endswith("_minute_counts"):
        raise ValueError(f"{minute_table}: a counted family's table ends in _minute_counts")
    return minute_table.removesuffix("_minute_counts") + f"_{resolution}_counts"


def create_rollup_machinery() -> None:
    """The registry, the pending-hours log and the trigger function (once, in revision 0004)."""
    op.create_table(
        REGISTRY,
        sa.Column("minute_table", sa.Text, primary_key=True),
        sa.Column("dimensions", sa.ARRAY(sa.Text), nullable=False),
    )
    # Append-only, no key: two writers noting the same hour never wait for each other.
    op.create_table(
        PENDING,
        sa.Column("minute_table", sa.Text, nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        f"""
        CREATE FUNCTION {MARK_PENDING}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {PENDING} (minute_table, hour)
            SELECT DISTINCT TG_TABLE_NAME, date_trunc('hour', minute, 'UTC') FROM changed_rows;
            RETURN NULL;
        END $$
        """
    )


def drop_rollup_machinery() -> None:
    op.execute(f"DROP FUNCTION {MARK_PENDING}()")
    op.drop_table(PENDING)
    op.drop_table(REGISTRY)


def add_rollups(minute_table: str) -> None:
    """Hourly and daily tables for ``minute_table``'s family, filled from its counts so far,
    and the triggers that keep them refreshable."""
    dimensions = _dimensions(minute_table)
    keys = ", ".join(dimensions)
    # Writers wait until the tables, triggers and backfill are committed together.
    op.execute(f"LOCK TABLE {minute_table} IN SHARE MODE")
    finer = (minute_table, "minute")
    for resolution in ("hour", "day"):
        table = rollup_table(minute_table, resolution)
        op.execute(
            f"CREATE TABLE {table} (LIKE {minute_table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        op.execute(f"ALTER TABLE {table} RENAME COLUMN minute TO {resolution}")
        op.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({resolution}, {keys})")
        op.execute(
            f"INSERT INTO {table} ({resolution}, {keys}, count)"
            f" SELECT date_trunc('{resolution}', {finer[1]}, 'UTC'), {keys}, sum(count)"
            f" FROM {finer[0]} GROUP BY 1, {keys}"
        )
        finer = (table, resolution)  # days are summed from hours
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER {minute_table}_rollup_{event.lower()} AFTER {event} ON {minute_table}"
            " REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT"
            f" EXECUTE FUNCTION {MARK_PENDING}()"
        )
    op.execute(
        sa.text(f"INSERT INTO {REGISTRY} (minute_table, dimensions) VALUES (:t, :d)").bindparams(
            t=minute_table, d=dimensions
        )
    )


def _dimensions(minute_table: str) -> list[str]:
    """The primary key's columns after ``minute``, in key order."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(:t AS regclass)"
            " AND i.indisprimary AND a.attname <> 'minute'"
            " ORDER BY array_position(CAST(i.indkey AS int2[]), a.attnum)"
        ),
        {"t": minute_table},
    )
    dimensions = [str(name) for (name,) in rows]
    if not dimensions:
        raise ValueError(f"{minute_table} needs a primary key (minute, dimensions...)")
    return dimensions


def drop_rollups(minute_table: str) -> None:
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER {minute_table}_rollup_{event} ON {minute_table}")
    op.drop_table(rollup_table(minute_table, "day"))
    op.drop_table(rollup_table(minute_table, "hour"))
    op.execute(sa.text(f"DELETE FROM {PENDING} WHERE minute_table = :t").bindparams(t=minute_table))
    op.execute(
        sa.text(f"DELETE FROM {REGISTRY} WHERE minute_table = :t").bindparams(t=minute_table)
    )
