"""The PostgreSQL sink against a real server: idempotent rows, exact aggregates, bad rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage import migrate
from storage.minute_counts import MinuteCounts
from storage.sink import PostgresSink, SchemaMissingError, StorageUnavailableError
from stream_core.records import ScoredPost
from tests.fixtures.pipeline import aggregate_total, migrated, query, row_count

pytestmark = pytest.mark.integration

MODEL_LABELS = ("positive", "negative", "neutral")  # not LABELS order, on purpose


def scored(offset: int, text: str = "hello", minute: int = 0, **fields: object) -> ScoredPost:
    values: dict[str, object] = {
        "post_id": f"p{offset}",
        "text": text,
        "author": "ann",
        "lang": "en",
        "created_at": datetime(2024, 5, 1, 12, minute, 30, tzinfo=UTC),
        "label": "positive",
        "probabilities": (0.7, 0.2, 0.1),
        "topic": "posts",
        "partition": 0,
        "offset": offset,
        "kafka_timestamp": datetime(2024, 5, 1, 13, 0, tzinfo=UTC),
        "model_version": "m-1",
    }
    values.update(fields)
    return ScoredPost(**values)  # type: ignore[arg-type]


@pytest.fixture
def sink(database_url: str) -> PostgresSink:
    return PostgresSink(migrated(database_url), labels=MODEL_LABELS, parts=[MinuteCounts()])


def test_rows_land_with_every_column(sink: PostgresSink, database_url: str) -> None:
    post = scored(7, extra={"likes": 3}, gold_label="neutral")
    assert sink.write_batch([post]).inserted == 1
    (row,) = query(
        database_url,
        "SELECT post_id, text, author, lang, created_at, label, prob_negative, prob_neutral, "
        "prob_positive, model_version, kafka_topic, kafka_partition, kafka_offset, "
        "kafka_timestamp, gold_label, extra, scored_at IS NOT NULL FROM scored_posts",
    )
    assert row[:6] == ("p7", "hello", "ann", "en", post.created_at, "positive")
    # Probabilities came in the model's order (positive, negative, neutral).
    assert row[6:9] == pytest.approx((0.2, 0.1, 0.7))
    assert row[9:] == ("m-1", "posts", 0, 7, post.kafka_timestamp, "neutral", {"likes": 3}, True)


def test_a_replayed_batch_adds_no_row_and_no_count(sink: PostgresSink, database_url: str) -> None:
    first = [scored(i, minute=i % 2) for i in range(10)]
    assert sink.write_batch(first).inserted == 10
    overlapping = [scored(i, minute=i % 2) for i in range(5, 15)]
    assert sink.write_batch(overlapping).inserted == 5
    assert sink.write_batch(overlapping).inserted == 0
    assert row_count(database_url) == 15
    counts = query(
        database_url, "SELECT minute, label, count FROM sentiment_minute_counts ORDER BY minute"
    )
    assert counts == [
        (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "positive", 8),
        (datetime(2024, 5, 1, 12, 1, tzinfo=UTC), "positive", 7),
    ]


def test_minutes_fall_back_to_the_kafka_timestamp(sink: PostgresSink, database_url: str) -> None:
    sink.write_batch([scored(1, created_at=None)])
    assert query(database_url, "SELECT minute FROM sentiment_minute_counts") == [
        (datetime(2024, 5, 1, 13, 0, tzinfo=UTC),)
    ]


def test_minutes_fall_back_to_the_time_stored(sink: PostgresSink, database_url: str) -> None:
    sink.write_batch([scored(1, created_at=None, kafka_timestamp=None)])
    assert query(database_url, "SELECT minute FROM sentiment_minute_counts") == query(
        database_url, "SELECT date_trunc('minute', scored_at) FROM scored_posts"
    )


def test_rows_postgres_refuses_are_isolated_and_the_rest_lands(
    sink: PostgresSink, database_url: str
) -> None:
    posts = [scored(i) for i in range(20)]
    posts[3] = scored(3, text="nul \x00 inside")
    posts[17] = scored(17, extra={"bad": "nul \x00 in json"})
    result = sink.write_batch(posts)
    assert result.inserted == 18
    assert sorted(post.offset for post, _ in result.rejected) == [3, 17]
    assert all("0x00" in error or "\\u0000" in error for _, error in result.rejected)
    assert row_count(database_url) == 18
    assert aggregate_total(database_url) == 18


def test_a_missing_schema_is_reported(database_url: str) -> None:
    sink = PostgresSink(database_url, labels=MODEL_LABELS)
    with pytest.raises(SchemaMissingError, match="db upgrade"):
        sink.write_batch([scored(1)])
    migrate.upgrade(database_url, "0003")  # the last unpartitioned schema
    with pytest.raises(SchemaMissingError, match=r"older than this release.*db upgrade"):
        sink.write_batch([scored(1)])


def test_an_unreachable_server_is_a_transient_failure() -> None:
    sink = PostgresSink("postgresql+psycopg://u:secret@127.0.0.1:1/db", labels=MODEL_LABELS)
    with pytest.raises(StorageUnavailableError) as caught:
        sink.write_batch([scored(1)])
    assert "secret" not in str(caught.value)
