"""Time partitions against a real PostgreSQL: where rows land, what `db maintain` creates and
drops, and what the sink does with rows older than the retention (a fake clock: no waiting)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import op
from alembic.migration import MigrationContext
from alembic.operations import Operations
from pydantic import SecretStr

from migrations.partitioning import register_partitioned, unregister_partitioned
from storage.maintenance import maintenance_jobs
from storage.minute_counts import MinuteCounts
from storage.partitions import PartitionPolicy, TableReport, maintain
from storage.settings import StorageSettings
from storage.sink import PostgresSink
from storage.urls import libpq_url
from tests.fixtures.pipeline import aggregate_total, migrated, query, row_count, wait_until
from tests.integration.test_sink import MODEL_LABELS, scored

pytestmark = pytest.mark.integration

MIDNIGHT = datetime(2025, 3, 10, tzinfo=UTC)
POLICY = PartitionPolicy(interval="day", ahead=2, retention=timedelta(days=3), lock_timeout_s=0.1)


def at(offset: int, moment: datetime | None, partition: int = 0) -> Any:
    """A post whose Kafka timestamp is ``moment``."""
    return scored(offset, kafka_timestamp=moment, created_at=moment, partition=partition)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    migrated(database_url)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        yield connection


@pytest.fixture
def sink(database_url: str) -> Iterator[PostgresSink]:
    sink = PostgresSink(database_url, labels=MODEL_LABELS, parts=[MinuteCounts()])
    yield sink
    sink.close()


def partitions(database_url: str) -> list[str]:
    rows = query(
        database_url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'scored_posts'::regclass ORDER BY 1",
    )
    return [name for (name,) in rows if "2025" in name or name.endswith("default")]


def of_posts(reports: list[TableReport]) -> TableReport:
    """The report on scored_posts (other features register side tables of their own)."""
    (report,) = [r for r in reports if r.table == "scored_posts"]
    return report


def where(database_url: str) -> dict[int, str]:
    """Each row's partition, by Kafka offset."""
    rows = query(database_url, "SELECT kafka_offset, tableoid::regclass::text FROM scored_posts")
    return {int(offset): str(name) for offset, name in rows}


def test_rows_land_in_the_partition_of_their_kafka_timestamp(
    conn: psycopg.Connection[Any], sink: PostgresSink, database_url: str
) -> None:
    maintain(conn, POLICY, now=MIDNIGHT + timedelta(hours=12))
    assert partitions(database_url) == [
        "scored_posts_default",
        "scored_posts_p20250309",
        "scored_posts_p20250310",
        "scored_posts_p20250311",
        "scored_posts_p20250312",
    ]
    batch = [
        at(1, MIDNIGHT - timedelta(microseconds=1)),
        at(2, MIDNIGHT),
        at(3, MIDNIGHT + timedelta(days=1, hours=5)),
        at(4, None),  # no Kafka timestamp (message format v0)
        at(5, MIDNIGHT + timedelta(days=30)),  # a producer clock far ahead
    ]
    assert sink.write_batch(batch).inserted == 5
    assert where(database_url) == {
        1: "scored_posts_p20250309",
        2: "scored_posts_p20250310",
        3: "scored_posts_p20250311",
        4: "scored_posts_default",
        5: "scored_posts_default",
    }
    # A replay hits the key in every partition, the default one included.
    assert sink.write_batch(batch).inserted == 0
    assert row_count(database_url) == aggregate_total(database_url) == 5

    # When the far-ahead day comes, its partition is made and its row moves in.
    report = of_posts(maintain(conn, POLICY, now=MIDNIGHT + timedelta(days=30, hours=1)))
    assert report.moved_rows == 1
    assert where(database_url)[5] == "scored_posts_p20250409"
    assert report.untimed_rows == 1  # kept: it has no time to expire by
    assert where(database_url)[4] == "scored_posts_default"


def test_maintain_drops_only_expired_partitions(
    conn: psycopg.Connection[Any], sink: PostgresSink, database_url: str
) -> None:
    maintain(conn, POLICY, now=MIDNIGHT)  # 9th (the day before) to 12th
    days = [MIDNIGHT + timedelta(days=n, hours=6) for n in range(-1, 3)]
    assert sink.write_batch([at(n, day) for n, day in enumerate(days)]).inserted == 4

    now = MIDNIGHT + timedelta(days=4, hours=1)  # the 14th: 3 days back is the 11th, 01:00
    report = of_posts(maintain(conn, POLICY, now=now))
    assert report.kept_from == MIDNIGHT + timedelta(days=1)
    assert [d.name for d in report.dropped] == ["scored_posts_p20250309", "scored_posts_p20250310"]
    assert all(d.bytes > 0 for d in report.dropped)
    assert partitions(database_url) == [
        "scored_posts_default",
        *(f"scored_posts_p202503{day}" for day in range(11, 17)),
    ]
    assert sorted(where(database_url)) == [2, 3]  # the rows of the 11th and 12th stay
    # Once more at the same time: nothing left to do.
    again = of_posts(maintain(conn, POLICY, now=now))
    assert (again.created, again.dropped, again.busy) == ([], [], [])

    # A replay of a dropped row is not stored, nor counted again; a new row still is.
    counted = aggregate_total(database_url)
    assert sink.write_batch([at(0, days[0]), at(1, days[1])]).inserted == 0
    assert sink.write_batch([at(9, days[2])]).inserted == 1
    assert aggregate_total(database_url) == counted + 1
    assert row_count(database_url) == 3


def test_a_partition_still_written_to_is_not_dropped(
    conn: psycopg.Connection[Any], sink: PostgresSink, database_url: str
) -> None:
    maintain(conn, POLICY, now=MIDNIGHT)
    # A batch written just before its day expired, still in flight when maintenance runs.
    with psycopg.connect(libpq_url(database_url)) as writer:
        writer.execute(
            "INSERT INTO scored_posts (post_id, text, label, prob_negative, prob_neutral,"
            " prob_positive, model_version, kafka_topic, kafka_partition, kafka_offset,"
            " kafka_timestamp) VALUES ('late', 't', 'neutral', 0, 1, 0, 'm', 'posts', 0, 1, %s)",
            (MIDNIGHT - timedelta(hours=1),),
        )
        # DETACH waits for every transaction writing to the table, then gives up (the lock
        # timeout, a few times over) rather than hold the stream up behind it.
        report = of_posts(maintain(conn, POLICY, now=MIDNIGHT + timedelta(days=4)))
        assert report.busy == ["scored_posts_p20250309", "scored_posts_p20250310"]
        assert report.dropped == []
        assert report.created  # the rest of the run went on
        assert "scored_posts_p20250309" in partitions(database_url)
        writer.commit()
    assert where(database_url) == {1: "scored_posts_p20250309"}
    later = of_posts(maintain(conn, POLICY, now=MIDNIGHT + timedelta(days=4)))
    assert [d.name for d in later.dropped] == ["scored_posts_p20250309", "scored_posts_p20250310"]
    assert row_count(database_url) == 0


def test_side_tables_registered_by_name_are_maintained_alike(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    """The migration of a side table, as docs/pipeline.md shows it."""
    registry = "SELECT table_name FROM partitioned_tables ORDER BY 1"
    before = [table for (table,) in query(database_url, registry)]  # the other features' tables
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        op.create_table(
            "post_notes",
            sa.Column("kafka_topic", sa.Text, nullable=False),
            sa.Column("kafka_partition", sa.Integer, nullable=False),
            sa.Column("kafka_offset", sa.BigInteger, nullable=False),
            sa.Column("kafka_timestamp", sa.DateTime(timezone=True)),
            sa.Column("note", sa.Text, nullable=False),
            sa.UniqueConstraint(
                "kafka_topic",
                "kafka_partition",
                "kafka_offset",
                "kafka_timestamp",
                "note",
                postgresql_nulls_not_distinct=True,
            ),
            postgresql_partition_by="RANGE (kafka_timestamp)",
        )
        register_partitioned("post_notes")
    reports = {r.table: r for r in maintain(conn, POLICY, now=MIDNIGHT)}
    assert sorted(reports) == sorted([*before, "post_notes"])
    assert [p.name for p in reports["post_notes"].created] == [
        f"post_notes_p202503{day:02}" for day in range(9, 13)
    ]
    later = {r.table: r for r in maintain(conn, POLICY, now=MIDNIGHT + timedelta(days=4))}
    dropped = later["post_notes"].dropped
    assert [d.name for d in dropped] == ["post_notes_p20250309", "post_notes_p20250310"]
    with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        unregister_partitioned("post_notes")
        op.drop_table("post_notes")
    engine.dispose()
    assert [r.table for r in maintain(conn, POLICY, now=MIDNIGHT)] == before


def test_consumers_maintain_on_a_timer_one_replica_at_a_time(database_url: str) -> None:
    migrated(database_url)
    settings = StorageSettings.model_validate(
        {"database_url": SecretStr(database_url), "maintenance_interval_s": 3600}
    )
    replicas = [maintenance_jobs(settings) for _ in range(2)]
    for replica in replicas:
        replica.start()
    try:
        # The first run comes at election: kept_from leaves -infinity.
        wait_until(
            lambda: (
                query(
                    database_url, "SELECT bool_and(kept_from > '-infinity') FROM partitioned_tables"
                )
                == [(True,)]
            ),
            30,
            "a maintenance run",
        )
        assert sum(replica.is_leader for replica in replicas) == 1
    finally:
        for replica in replicas:
            replica.stop()
