"""Watchlists: the watched entities, the entities each post names, per-entity minute counts,
the per-second counts that fleet-wide spike detection reads, and alerts that name an entity.

``post_entities`` is partitioned like ``scored_posts`` (by the post's Kafka timestamp, handed
to `db maintain`), so it is created ahead and expired on the same schedule; the per-entity
minute counts get hourly and daily rollups like the stream's.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.partitioning import register_partitioned, unregister_partitioned
from migrations.rollups import add_rollups, drop_rollups

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
LABEL_CHECK = "label IN ('negative', 'neutral', 'positive')"
# storage.watch_entities.CHANNEL: every replica LISTENs on it (storage.coordination).
NOTIFY_FUNCTION = """
CREATE FUNCTION watch_entities_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sentiment_watchlist', '');
    RETURN NULL;
END $$
"""


def _rule_list(name: str) -> sa.Column[list[str]]:
    return sa.Column(
        name, postgresql.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
    )


def upgrade() -> None:
    op.create_table(
        "watch_entities",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        _rule_list("keywords"),
        _rule_list("hashtags"),
        _rule_list("mentions"),
        _rule_list("regexes"),
        # Export Prometheus series for this entity (opt-in: label values stay bounded).
        sa.Column("metrics", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'", name="ck_watch_entities_name"),
        sa.CheckConstraint(
            "cardinality(keywords) + cardinality(hashtags) + cardinality(mentions)"
            " + cardinality(regexes) > 0",
            name="ck_watch_entities_some_rule",
        ),
    )
    # Any change, by the CLI, the API or plain SQL, reaches the running consumers at commit.
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER watch_entities_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        " ON watch_entities FOR EACH STATEMENT EXECUTE FUNCTION watch_entities_notify()"
    )

    # One row per (post, entity it names). Keyed like scored_posts (its Kafka position and time
    # column, which partitions it the same way); no foreign key into scored_posts. The label is
    # repeated so per-entity queries need no join.
    op.create_table(
        "post_entities",
        sa.Column("kafka_topic", sa.Text, nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("kafka_timestamp", TZ),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("label", sa.Text),  # NULL: the post was not scored
        sa.UniqueConstraint(
            "kafka_topic",
            "kafka_partition",
            "kafka_offset",
            "kafka_timestamp",
            "entity",
            name="uq_post_entities",
            postgresql_nulls_not_distinct=True,
        ),
        sa.CheckConstraint(LABEL_CHECK, name="ck_post_entities_label"),
        postgresql_partition_by="RANGE (kafka_timestamp)",
    )
    # "Posts that name X, newest first" and time-range scans per entity.
    op.create_index("ix_post_entities_entity_time", "post_entities", ["entity", "kafka_timestamp"])
    register_partitioned("post_entities")

    # Exact per-entity label counts per UTC minute, like sentiment_minute_counts.
    op.create_table(
        "sentiment_entity_minute_counts",
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("minute", TZ, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "entity", "minute", "label", name="pk_sentiment_entity_minute_counts"
        ),
        sa.CheckConstraint(LABEL_CHECK, name="ck_sentiment_entity_minute_counts_label"),
    )
    add_rollups("sentiment_entity_minute_counts")  # sentiment_entity_hour|day_counts

    # Fleet-wide counts per second of commit time, for the elected spike detector: every
    # replica adds its batches; entity '' is the whole stream. Kept for minutes only.
    op.create_table(
        "sentiment_second_counts",
        sa.Column("second", TZ, nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("negative", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("second", "entity", name="pk_sentiment_second_counts"),
    )

    # NULL: the whole stream.
    op.add_column("sentiment_alerts", sa.Column("entity", sa.Text, nullable=True))
    op.create_index(
        "ix_sentiment_alerts_entity_detected_at", "sentiment_alerts", ["entity", "detected_at"]
    )
    # At most one open alert per kind and scope, whoever writes it: two detectors racing (a
    # takeover, a leader cut off) cannot open a second row for one spike.
    op.create_index(
        "uq_sentiment_alerts_one_open",
        "sentiment_alerts",
        ["kind", sa.text("coalesce(entity, '')")],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_sentiment_alerts_one_open", table_name="sentiment_alerts")
    op.drop_index("ix_sentiment_alerts_entity_detected_at", table_name="sentiment_alerts")
    op.drop_column("sentiment_alerts", "entity")
    op.drop_table("sentiment_second_counts")
    drop_rollups("sentiment_entity_minute_counts")
    op.drop_table("sentiment_entity_minute_counts")
    unregister_partitioned("post_entities")
    op.drop_table("post_entities")
    op.drop_table("watch_entities")
    op.execute("DROP FUNCTION watch_entities_notify()")
