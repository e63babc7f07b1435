"""scored_posts partitioned by time (its Kafka timestamp), and the registry `db maintain` reads.

The new ``scored_posts`` is ``PARTITION BY RANGE (kafka_timestamp)``: a pure function of the
message, so a replay lands in the partition of the first write. The idempotency key becomes
``(kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)`` (a unique key must hold the
partition column), with NULLS NOT DISTINCT so that a message Kafka gave no timestamp (message
format v0) is still written once; such rows live in the default partition.

Upgrading keeps every row without copying the table: the old table becomes the first partition
(its ``id`` column, which nothing reads, is dropped; the unique key is rebuilt with the
timestamp; a validated CHECK lets ATTACH skip its scan). Rows without a timestamp move to the
default partition. The new table takes the old one's columns, CHECKs and indexes as they are
(earlier revisions of other features add some), so ATTACH adopts the old indexes instead of
building new ones. ``storage.partitions`` creates the later partitions (`db upgrade`,
`db maintain`). The downgrade copies every row back into one unpartitioned table with the same
columns and indexes (a row whose Kafka position is already there under another timestamp, which
only a re-created topic makes, cannot be kept by the old key and is skipped).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from migrations.partitioning import REGISTRY, default_partition, register_partitioned

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEY = "uq_scored_posts_kafka_position"
NEW_KEY = (
    f"CONSTRAINT {KEY} UNIQUE NULLS NOT DISTINCT"
    " (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)"
)
OLD_KEY = f"CONSTRAINT {KEY} UNIQUE (kafka_topic, kafka_partition, kafka_offset)"
COPIED = "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS"


def _indexes(table: str) -> dict[str, str]:
    """``table``'s indexes but its keys, by name: the statements that create them again."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = :table AND indexname NOT IN (:key, :pkey)"
        ),
        {"table": table, "key": KEY, "pkey": f"{table}_pkey"},
    )
    # A partitioned table's are "ON ONLY": without ONLY they reach every partition.
    return {str(name): str(sql).replace(" ON ONLY ", " ON ") for name, sql in rows}


def _columns(table: str) -> str:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:table AS regclass)"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"table": table},
    )
    return ", ".join(str(name) for (name,) in rows)


def upgrade() -> None:
    op.create_table(
        REGISTRY,
        sa.Column("table_name", sa.Text, primary_key=True),
        # Rows older than this were dropped: writers skip them rather than store (and count)
        # a replay of a message whose first row is gone. Only `db maintain` moves it, forward.
        sa.Column(
            "kept_from",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("'-infinity'"),
        ),
    )
    indexes = _indexes("scored_posts")
    op.execute("ALTER TABLE scored_posts RENAME TO scored_posts_flat")
    for name in (KEY, *indexes):
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_flat")
    op.execute("ALTER TABLE scored_posts_flat DROP COLUMN id")
    op.execute(
        f"CREATE TABLE scored_posts (LIKE scored_posts_flat {COPIED}, {NEW_KEY})"
        " PARTITION BY RANGE (kafka_timestamp)"
    )
    for create in indexes.values():
        op.execute(create)
    register_partitioned("scored_posts")
    _attach_flat_table()


def _attach_flat_table() -> None:
    """The old table becomes the partition of the days it holds; an empty one goes."""
    op.execute(
        "WITH untimed AS (DELETE FROM scored_posts_flat WHERE kafka_timestamp IS NULL RETURNING *)"
        f" INSERT INTO {default_partition('scored_posts')} SELECT * FROM untimed"
    )
    lower, upper = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT date_trunc('day', min(kafka_timestamp), 'UTC'),"
                " date_trunc('day', max(kafka_timestamp), 'UTC') + interval '1 day'"
                " FROM scored_posts_flat"
            )
        )
        .one()
    )
    if lower is None:
        op.execute("DROP TABLE scored_posts_flat")
        return
    assert isinstance(lower, datetime)
    assert isinstance(upper, datetime)
    bounds = f"'{lower.isoformat()}'::timestamptz", f"'{upper.isoformat()}'::timestamptz"
    op.execute(f"ALTER TABLE scored_posts_flat DROP CONSTRAINT {KEY}_flat")
    op.execute(f"ALTER TABLE scored_posts_flat ADD {NEW_KEY.replace(KEY, f'{KEY}_flat')}")
    op.execute(
        "ALTER TABLE scored_posts_flat ADD CONSTRAINT bounds CHECK (kafka_timestamp IS NOT NULL"
        f" AND kafka_timestamp >= {bounds[0]} AND kafka_timestamp < {bounds[1]})"
    )
    op.execute(
        "ALTER TABLE scored_posts ATTACH PARTITION scored_posts_flat"
        f" FOR VALUES FROM ({bounds[0]}) TO ({bounds[1]})"
    )
    op.execute("ALTER TABLE scored_posts_flat DROP CONSTRAINT bounds")  # the bound says it now
    op.execute(f"ALTER TABLE scored_posts_flat RENAME TO scored_posts_p{lower:%Y%m%d}")


def downgrade() -> None:
    indexes = _indexes("scored_posts")
    op.execute(f"ALTER TABLE scored_posts DROP CONSTRAINT {KEY}")
    for name in indexes:
        op.execute(f"DROP INDEX {name}")
    op.execute("ALTER TABLE scored_posts RENAME TO scored_posts_partitioned")
    op.execute(
        "CREATE TABLE scored_posts (id bigint GENERATED ALWAYS AS IDENTITY,"
        f" LIKE scored_posts_partitioned {COPIED},"
        f" CONSTRAINT scored_posts_pkey PRIMARY KEY (id), {OLD_KEY})"
    )
    columns = _columns("scored_posts_partitioned")
    op.execute(
        f"INSERT INTO scored_posts ({columns}) SELECT {columns} FROM scored_posts_partitioned"
        " ORDER BY scored_at, kafka_topic, kafka_partition, kafka_offset"
        " ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING"
    )
    for create in indexes.values():  # after the copy: building is faster than maintaining
        op.execute(create)
    op.execute("DROP TABLE scored_posts_partitioned")
    op.drop_table(REGISTRY)
