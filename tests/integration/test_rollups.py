"""Hourly and daily rollups against a real PostgreSQL: they equal the sums of the minute counts,
whatever comes late, replays or runs concurrently; a new family is one line; old ones expire."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import op
from alembic.migration import MigrationContext
from alembic.operations import Operations

from migrations.rollups import add_rollups, drop_rollups
from storage import migrate, rollups
from storage.minute_counts import MinuteCounts
from storage.sink import PostgresSink
from storage.urls import libpq_url
from tests.fixtures.pipeline import migrated, query
from tests.integration.test_sink import MODEL_LABELS, scored

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 9, 22, tzinfo=UTC)
HORIZON = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    migrated(database_url)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        yield connection


def sums_of_minutes(database_url: str, resolution: str, table: str = "sentiment") -> list[Any]:
    return query(
        database_url,
        f"SELECT date_trunc('{resolution}', minute, 'UTC'), label, sum(count)"
        f" FROM {table}_minute_counts GROUP BY 1, 2 ORDER BY 1, 2",
    )


def rolled_up(database_url: str, resolution: str, table: str = "sentiment") -> list[Any]:
    return query(
        database_url,
        f"SELECT {resolution}, label, count FROM {table}_{resolution}_counts ORDER BY 1, 2",
    )


def assert_rollups_exact(database_url: str, table: str = "sentiment") -> None:
    for resolution in ("hour", "day"):
        assert rolled_up(database_url, resolution, table) == sums_of_minutes(
            database_url, resolution, table
        ), resolution


def test_rollups_equal_the_sums_of_the_minute_counts(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    sink = PostgresSink(database_url, labels=MODEL_LABELS, parts=[MinuteCounts()])
    pick = random.Random(20)
    labels = ("negative", "neutral", "positive")

    def batch(offsets: range, latest: timedelta) -> list[Any]:
        """Posts created up to ``latest`` after START, across midnight, in random order."""
        return [
            scored(
                offset,
                created_at=START + pick.random() * latest,
                label=pick.choice(labels),
                kafka_timestamp=START + latest,
            )
            for offset in offsets
        ]

    first = batch(range(600), timedelta(hours=5))
    sink.write_batch(first)
    assert rollups.refresh(conn, HORIZON) == rollups.RefreshReport(hours=5, days=2)
    assert_rollups_exact(database_url)
    # Late posts into hours already rolled up, new hours, and a replay of the first batch.
    sink.write_batch(batch(range(600, 900), timedelta(hours=8)))
    sink.write_batch(first)
    assert rollups.refresh(conn, HORIZON).hours == 8
    assert_rollups_exact(database_url)
    assert rollups.refresh(conn, HORIZON) == rollups.RefreshReport(0, 0)  # nothing new
    (total,) = query(database_url, "SELECT sum(count) FROM sentiment_day_counts")
    assert total == (900,)
    sink.close()


def test_a_write_committed_during_a_refresh_is_counted_by_the_next(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    add = (
        "INSERT INTO sentiment_minute_counts VALUES (%s, 'neutral', 1) ON CONFLICT (minute, label)"
    )
    add += " DO UPDATE SET count = sentiment_minute_counts.count + 1"
    conn.execute(add, (START,))
    with psycopg.connect(libpq_url(database_url)) as writer:
        writer.execute(add, (START + timedelta(minutes=1),))  # not committed yet
        rollups.refresh(conn, HORIZON)
        writer.commit()
    assert rolled_up(database_url, "hour") == [(START, "neutral", 1)]
    rollups.refresh(conn, HORIZON)
    assert_rollups_exact(database_url)
    assert rolled_up(database_url, "hour") == [(START, "neutral", 2)]


def test_a_new_family_is_one_line_and_starts_from_its_counts_so_far(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    conn.execute(
        "CREATE TABLE example_minute_counts (minute timestamptz NOT NULL, lang text NOT NULL,"
        " label text NOT NULL, count bigint NOT NULL, PRIMARY KEY (minute, lang, label))"
    )
    add = (
        "INSERT INTO example_minute_counts VALUES (%s, %s, 'positive', 2)"
        " ON CONFLICT (minute, lang, label) DO UPDATE SET count = example_minute_counts.count + 2"
    )
    conn.execute(add, (START, "en"))
    before = [f.minute_table for f in rollups.families(conn)]  # the other features' families
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        add_rollups("example_minute_counts")  # the one line, in the family's migration
    assert query(database_url, "SELECT * FROM example_day_counts") == [
        (START.replace(hour=0), "en", "positive", 2)
    ]
    conn.execute(add, (START + timedelta(hours=3), "fr"))
    conn.execute(add, (START, "en"))
    rollups.refresh(conn, HORIZON)
    for resolution in ("hour", "day"):
        assert query(
            database_url,
            f"SELECT {resolution}, lang, label, count FROM example_{resolution}_counts"
            " ORDER BY 1, 2",
        ) == query(
            database_url,
            f"SELECT date_trunc('{resolution}', minute, 'UTC'), lang, label, sum(count)"
            " FROM example_minute_counts GROUP BY 1, 2, 3 ORDER BY 1, 2",
        )
    with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        drop_rollups("example_minute_counts")
        op.drop_table("example_minute_counts")
    engine.dispose()
    assert [f.minute_table for f in rollups.families(conn)] == before


def test_the_upgrade_rolls_up_the_counts_already_there(database_url: str) -> None:
    migrate.upgrade(database_url, "0004")
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(
            "INSERT INTO sentiment_minute_counts SELECT timestamptz '2025-03-09 20:00Z'"
            " + i * interval '7 minutes', (ARRAY['negative', 'neutral', 'positive'])[1 + i % 3],"
            " i FROM generate_series(1, 100) AS i"
        )
    migrate.upgrade(database_url)
    assert_rollups_exact(database_url)
    migrate.downgrade(database_url, "0004")
    migrate.upgrade(database_url)
    assert_rollups_exact(database_url)


def test_counts_are_read_at_the_resolution_that_fits_the_window(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    (now,) = conn.execute("SELECT now()").fetchone() or (None,)
    assert isinstance(now, datetime)
    moments = [now - timedelta(minutes=m) for m in (1, 30, 200, 60 * 30, 60 * 24 * 20)]
    for moment in moments:
        conn.execute(
            "INSERT INTO sentiment_minute_counts VALUES (date_trunc('minute', %s), 'negative', 1)",
            (moment,),
        )
    rollups.refresh(conn, HORIZON)
    found = {
        window: rollups.label_counts(conn, window)
        for window in (timedelta(hours=1), timedelta(days=7), timedelta(days=90))
    }
    hour, week, quarter = found.values()
    assert (hour.resolution, week.resolution, quarter.resolution) == ("minute", "hour", "day")
    assert hour.counts == {"negative": 2}
    assert week.counts == {"negative": 4}
    assert quarter.counts == {"negative": 5}
    assert week.since == (now - timedelta(days=7)).astimezone(UTC).replace(
        minute=0, second=0, microsecond=0
    )


def test_aggregates_past_their_retention_are_deleted(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    for day in (1, 2, 3):
        conn.execute(
            "INSERT INTO sentiment_minute_counts VALUES (%s, 'neutral', 1)",
            (datetime(2025, 3, day, 12, tzinfo=UTC),),
        )
    rollups.refresh(conn, HORIZON)
    deleted = rollups.expire(conn, datetime(2025, 3, 2, tzinfo=UTC))
    assert {table: rows for table, rows in deleted.items() if rows} == {
        "sentiment_minute_counts": 1,
        "sentiment_hour_counts": 1,
        "sentiment_day_counts": 1,
    }
    assert [day for day, _, _ in rolled_up(database_url, "day")] == [
        datetime(2025, 3, 2, tzinfo=UTC),
        datetime(2025, 3, 3, tzinfo=UTC),
    ]
