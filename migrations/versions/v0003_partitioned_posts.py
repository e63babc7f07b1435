"""scored_posts partitioned by time (its Kafka timestamp), and the registry `db maintain` reads.

The new ``scored_posts`` is ``PARTITION BY RANGE (kafka_timestamp)``: a pure function of the
message, so a replay lands in the partition of the first write. The idempotency key becomes
``(kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)`` (a unique key must hold the
partition column), with NULLS NOT DISTINCT so that a message Kafka gave no timestamp (message
format v0) is still written once; such rows live in the default partition.

Upgrading keeps every row without copying the table: the old table becomes the first partition
(its ``id`` column, which nothing reads, is dropped; the unique key is rebuilt with the
timestamp; a validated CHECK lets ATTACH skip its scan). Rows without a timestamp move to the
default partition. ``storage.partitions`` creates the later partitions (`db upgrade` and
`db maintain`). The downgrade copies every row back into one unpartitioned table (a row whose
Kafka position is already there under another timestamp, which only a re-created topic makes,
cannot be kept by the old key and is skipped).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from migrations.partitioning import REGISTRY, default_partition, register_partitioned
from migrations.versions.v0001_scored_posts import create_scored_posts

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    "post_id, text, author, lang, created_at, label, prob_negative, prob_neutral, "
    "prob_positive, model_version, scored_at, kafka_topic, kafka_partition, kafka_offset, "
    "kafka_timestamp, gold_label, extra"
)
KEY = "uq_scored_posts_kafka_position"
INDEXES = {
    "ix_scored_posts_created_at": "(created_at)",
    "ix_scored_posts_scored_at": "(scored_at)",
    "ix_scored_posts_label_created_at": "(label, created_at)",
    "ix_scored_posts_post_id": "(post_id)",
}

PARTITIONED_POSTS = f"""
CREATE TABLE scored_posts (
    post_id text NOT NULL,
    text text NOT NULL,
    author text,
    lang text,
    created_at timestamptz,
    label text NOT NULL,
    prob_negative real NOT NULL,
    prob_neutral real NOT NULL,
    prob_positive real NOT NULL,
    model_version text NOT NULL,
    scored_at timestamptz NOT NULL DEFAULT now(),
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    kafka_timestamp timestamptz,
    gold_label text,
    extra jsonb,
    CONSTRAINT {KEY} UNIQUE NULLS NOT DISTINCT
        (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp),
    CONSTRAINT ck_scored_posts_label CHECK (label IN ('negative', 'neutral', 'positive'))
) PARTITION BY RANGE (kafka_timestamp)
"""


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
    op.execute("ALTER TABLE scored_posts RENAME TO scored_posts_flat")
    for name in (KEY, *INDEXES):
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_flat")
    op.execute(PARTITIONED_POSTS)
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON scored_posts {columns}")
    register_partitioned("scored_posts")
    _attach_flat_table()


def _attach_flat_table() -> None:
    """The old table becomes the partition of the days it holds; an empty one goes."""
    op.execute("ALTER TABLE scored_posts_flat DROP COLUMN id")
    op.execute(
        f"WITH untimed AS (DELETE FROM scored_posts_flat WHERE kafka_timestamp IS NULL "
        f"RETURNING {COLUMNS}) "
        f"INSERT INTO {default_partition('scored_posts')} ({COLUMNS}) SELECT * FROM untimed"
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
    op.execute(
        f"ALTER TABLE scored_posts_flat ADD CONSTRAINT {KEY}_flat UNIQUE NULLS NOT DISTINCT "
        "(kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)"
    )
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
    op.execute(f"ALTER TABLE scored_posts DROP CONSTRAINT {KEY}")
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute("ALTER TABLE scored_posts RENAME TO scored_posts_partitioned")
    create_scored_posts()
    op.execute(
        f"INSERT INTO scored_posts ({COLUMNS}) SELECT {COLUMNS} FROM scored_posts_partitioned"
        " ORDER BY scored_at, kafka_topic, kafka_partition, kafka_offset"
        " ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING"
    )
    op.execute("DROP TABLE scored_posts_partitioned")
    op.drop_table(REGISTRY)
