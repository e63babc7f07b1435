"""For migrations that add a time-partitioned table: register it with `db maintain`.

A per-post table (``scored_posts``, and every side table written beside it) is created
``PARTITION BY RANGE (kafka_timestamp)`` and registered here. ``storage.partitions`` then
creates its partitions ahead of time and drops the expired ones, on the same schedule as every
other registered table; its feature writes no partition code. In the migration::

    op.create_table("post_entities", ..., postgresql_partition_by="RANGE (kafka_timestamp)")
    register_partitioned("post_entities")

and in the downgrade, ``unregister_partitioned("post_entities")`` before dropping the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

REGISTRY = "partitioned_tables"


def default_partition(table: str) -> str:
    """The partition that takes rows no time partition covers (and rows without a time)."""
    return f"{table}_default"


def register_partitioned(table: str) -> None:
    """Give ``table`` its default partition and hand it to `db maintain`."""
    op.execute(f'CREATE TABLE "{default_partition(table)}" PARTITION OF "{table}" DEFAULT')
    op.execute(
        sa.text(f"INSERT INTO {REGISTRY} (table_name) VALUES (:table)").bindparams(table=table)
    )


def unregister_partitioned(table: str) -> None:
    """`db maintain` forgets ``table`` (the migration drops it, partitions included)."""
    op.execute(sa.text(f"DELETE FROM {REGISTRY} WHERE table_name = :table").bindparams(table=table))
