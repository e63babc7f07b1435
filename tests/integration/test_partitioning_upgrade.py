"""Upgrading a database filled by the release before the time partitions: every row kept, in
the partition of its day, and still a replay for the new key; the downgrade gives them back."""

from __future__ import annotations

import psycopg
import pytest

from storage import migrate
from storage.sink import PostgresSink
from storage.urls import libpq_url
from stream_core.records import ScoredPost
from tests.fixtures.pipeline import query

pytestmark = pytest.mark.integration


POST_COLUMNS = (
    "post_id, text, author, lang, created_at, label, prob_negative, prob_neutral, prob_positive,"
    " model_version, scored_at, kafka_topic, kafka_partition, kafka_offset, kafka_timestamp,"
    " gold_label, gold_label_at, extra"
)
# What the release before partitioning wrote: three days of posts over two topics, some without
# a Kafka timestamp, created_at, author or extra fields; its key was the Kafka position alone.
FILL_FLAT_TABLE = f"""
INSERT INTO scored_posts ({POST_COLUMNS})
SELECT 'p' || i, 'post number ' || i, CASE WHEN i % 5 > 0 THEN 'user' || i % 17 END,
       CASE WHEN i % 3 = 0 THEN 'en' END,
       CASE WHEN i % 7 > 0 THEN ts - interval '2 seconds' END,
       (ARRAY['negative', 'neutral', 'positive'])[1 + i % 3], 0.2, 0.3, 0.5, 'm-1',
       ts + interval '1 second', 'posts-' || i % 2, i % 3, i,
       CASE WHEN i % 97 > 0 THEN ts END,
       CASE WHEN i % 4 = 0 THEN 'neutral' END, CASE WHEN i % 4 = 0 THEN ts + interval '1 hour' END,
       CASE WHEN i % 11 = 0 THEN jsonb_build_object('likes', i) END
FROM generate_series(1, 3000) AS i,
     LATERAL (SELECT timestamptz '2025-03-01 00:00Z' + i * interval '90 seconds') AS t(ts)
ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING
"""


def indexes(url: str) -> list[tuple[object, ...]]:
    return query(
        url,
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'scored_posts' ORDER BY 1",
    )


def every_row(url: str) -> list[tuple[object, ...]]:
    return query(url, f"SELECT {POST_COLUMNS} FROM scored_posts ORDER BY kafka_offset")


def test_partitioning_a_filled_table_keeps_every_row(database_url: str) -> None:
    migrate.upgrade(database_url, "0003")
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(FILL_FLAT_TABLE)
    before = every_row(database_url)
    assert len(before) == 3000
    flat_indexes = indexes(database_url)

    migrate.upgrade(database_url)
    assert every_row(database_url) == before
    where = dict(
        query(
            database_url, "SELECT tableoid::regclass::text, count(*) FROM scored_posts GROUP BY 1"
        )
    )
    # The old table became the partition of the days it held; untimed rows moved to the default.
    assert where == {"scored_posts_p20250301": 3000 - 30, "scored_posts_default": 30}

    # A message stored before the upgrade and replayed after it is still a replay.
    sink = PostgresSink(database_url, labels=("negative", "neutral", "positive"))
    replays = [
        ScoredPost(
            post_id=post_id,
            text="again",
            topic=topic,
            partition=partition,
            offset=offset,
            kafka_timestamp=timestamp,
            label="neutral",
            probabilities=(0.1, 0.8, 0.1),
            model_version="m-2",
        )
        for post_id, topic, partition, offset, timestamp in query(
            database_url,
            "SELECT post_id, kafka_topic, kafka_partition, kafka_offset, kafka_timestamp"
            " FROM scored_posts WHERE kafka_offset IN (96, 97, 98)",
        )
    ]
    assert sink.write_batch(replays).inserted == 0
    sink.close()

    migrate.downgrade(database_url, "0003")
    assert every_row(database_url) == before
    assert indexes(database_url) == flat_indexes
