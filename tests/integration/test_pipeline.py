"""The pipeline in-process, against the real broker, PostgreSQL and the tiny ONNX model."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from embedded import EmbeddedPostgres
from model.scorer import Scorer
from stream_core.contract import GOLD_LABEL_HEADER, DeadLetterReason, DlqHeader
from stream_core.events import PipelineState
from tests.fixtures import pipeline as support

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_scorer(tiny_model_dir: Path) -> Scorer:
    return Scorer.load(tiny_model_dir, threads=1)


def assert_all_committed(bootstrap: str, group: str, topic: str, counts: dict[int, int]) -> None:
    # The end offset from ListOffsets is unreliable on tansu: compare with what was produced.
    support.wait_until(
        lambda: support.committed_offsets(bootstrap, group, topic, len(counts)) == counts,
        30,
        f"committed offsets == produced counts {counts}",
    )


def test_every_message_becomes_exactly_one_row(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_scorer: Scorer
) -> None:
    n = 300
    support.create_topic(kafka_bootstrap, topic, 3)
    gold = [
        [(GOLD_LABEL_HEADER, ("negative", "neutral", "positive")[i % 3].encode())] for i in range(n)
    ]
    counts = support.produce(
        kafka_bootstrap,
        topic,
        [support.post_value(i) for i in range(n)],
        partitions=3,
        headers=gold,
    )
    settings = support.settings_for(kafka_bootstrap, support.migrated(database_url), topic)
    with support.running_pipeline(settings, tiny_scorer) as running:
        support.wait_until(lambda: support.row_count(database_url) >= n, 90, f"{n} rows")
        assert_all_committed(kafka_bootstrap, settings.group_id, topic, counts)
        assert running.state.running and running.state.database_ok
        assert len(running.state.assigned_partitions()) == 3

        def lag(partition: int) -> float | None:
            labels = {"topic": topic, "partition": str(partition)}
            return running.metrics.registry.get_sample_value(
                "sentiment_consumer_lag_messages", labels
            )

        support.wait_until(lambda: all(lag(p) == 0 for p in range(3)), 10, "no lag left")
    assert not running.errors
    assert support.row_count(database_url) == n
    assert support.aggregate_total(database_url) == n
    (distinct,) = support.query(database_url, "SELECT count(DISTINCT post_id) FROM scored_posts")
    assert distinct == (n,)
    gold_rows = support.query(
        database_url, "SELECT count(*) FROM scored_posts WHERE gold_label IS NOT NULL"
    )
    assert gold_rows == [(n,)]
    (version,) = support.query(database_url, "SELECT DISTINCT model_version FROM scored_posts")
    assert version == (tiny_scorer.version,)
    # The stored scores are /predict's (Scorer.predict) for the same text, whatever batch each
    # post was scored in: int8-static scores depend only on the post (issue 15).
    stored = support.query(
        database_url,
        "SELECT text, label, prob_negative, prob_neutral, prob_positive FROM scored_posts",
    )
    for text, label, *probabilities in stored:
        alone = tiny_scorer.predict(text)
        assert label == alone.label
        assert probabilities == pytest.approx(list(alone.probabilities.values()), abs=1e-6)
    # Observers saw each committed post once; metrics agree.
    assert sum(len(batch.posts) for batch in running.recorder.batches) == n
    assert running.metrics.rows_written._value.get() == n
    predictions = running.metrics.predictions
    assert sum(predictions.labels(label=label)._value.get() for label in tiny_scorer.labels) == n
    latency = running.metrics.end_to_end_latency.labels(source="kafka")
    assert latency._sum.get() > 0


POISON: list[tuple[bytes | None, DeadLetterReason]] = [
    (b"\xc3\x28 not utf-8", DeadLetterReason.INVALID_UTF8),
    (b"{oops", DeadLetterReason.INVALID_JSON),
    (b'["a list"]', DeadLetterReason.NOT_AN_OBJECT),
    (b'{"text": "no id"}', DeadLetterReason.MISSING_FIELD),
    (b'{"id": 5, "text": "numeric id"}', DeadLetterReason.WRONG_TYPE),
    (b'{"id": "e", "text": "   "}', DeadLetterReason.EMPTY_TEXT),
    (json.dumps({"id": "long", "text": "x" * 300}).encode(), DeadLetterReason.TEXT_TOO_LONG),
    (b'{"id": "t", "text": "hi", "created_at": "soon"}', DeadLetterReason.INVALID_TIMESTAMP),
    (b'{"id": "nul", "text": "a \\u0000 b"}', DeadLetterReason.STORAGE_REJECTED),
    (None, DeadLetterReason.INVALID_JSON),
]


def dlq_headers(message: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in message.headers() or [] if k.startswith("x-")}


def test_poison_messages_are_dead_lettered_and_neighbours_land(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_scorer: Scorer
) -> None:
    values: list[bytes | None] = []
    reasons: dict[str, DeadLetterReason] = {}
    for i, (poison, reason) in enumerate(POISON):
        values.append(support.post_value(2 * i, likes=i))  # a good neighbour, with an unknown field
        reasons[f"key-{len(values)}"] = reason
        values.append(poison)
    values.append(support.post_value(999))
    support.create_topic(kafka_bootstrap, topic, 2)
    headers = [[("trace-id", f"t{i}".encode())] for i in range(len(values))]
    counts = support.produce(kafka_bootstrap, topic, values, partitions=2, headers=headers)
    settings = support.settings_for(
        kafka_bootstrap, support.migrated(database_url), topic, max_text_chars=280
    )
    with support.running_pipeline(settings, tiny_scorer) as running:
        good = len(values) - len(POISON)
        support.wait_until(lambda: support.row_count(database_url) >= good, 60, f"{good} good rows")
        assert_all_committed(kafka_bootstrap, settings.group_id, topic, counts)
    assert support.row_count(database_url) == good
    assert support.query(
        database_url, "SELECT count(*) FROM scored_posts WHERE extra ? 'likes'"
    ) == [(len(POISON),)]

    letters = support.read_all(kafka_bootstrap, settings.dlq_topic, len(POISON))
    assert len(letters) == len(POISON)
    for letter in letters:
        key = letter.key().decode()
        index = int(key.removeprefix("key-"))
        headers_found = dlq_headers(letter)
        assert headers_found[DlqHeader.REASON] == reasons[key].value, headers_found
        assert letter.value() == values[index]  # the original bytes
        assert dict(letter.headers())["trace-id"] == f"t{index}".encode()
        assert headers_found[DlqHeader.SOURCE_TOPIC] == topic
        assert int(headers_found[DlqHeader.SOURCE_PARTITION]) == index % 2
        assert int(headers_found[DlqHeader.SOURCE_OFFSET]) == index // 2
        assert headers_found[DlqHeader.CONSUMER_GROUP] == settings.group_id
        assert int(headers_found[DlqHeader.SOURCE_TIMESTAMP_MS]) > 0
        assert headers_found[DlqHeader.ERROR]
    counted = {
        reason: running.metrics.dead_letters.labels(reason=reason.value)._value.get()
        for reason in DeadLetterReason
    }
    assert counted == {r: float(n) for r, n in Counter(r for _, r in POISON).items()} | {
        r: 0.0 for r in DeadLetterReason if r not in {p for _, p in POISON}
    }


def test_unknown_fields_are_dead_lettered_when_rejected(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_scorer: Scorer
) -> None:
    support.create_topic(kafka_bootstrap, topic, 1)
    values = [support.post_value(0), support.post_value(1, likes=3), support.post_value(2)]
    counts = support.produce(kafka_bootstrap, topic, values, partitions=1)
    settings = support.settings_for(
        kafka_bootstrap, support.migrated(database_url), topic, unknown_fields="reject"
    )
    with support.running_pipeline(settings, tiny_scorer):
        assert_all_committed(kafka_bootstrap, settings.group_id, topic, counts)
    assert support.row_count(database_url) == 2
    (letter,) = support.read_all(kafka_bootstrap, settings.dlq_topic, 1)
    assert dlq_headers(letter)[DlqHeader.REASON] == DeadLetterReason.UNKNOWN_FIELD.value
    assert "likes" in dlq_headers(letter)[DlqHeader.ERROR]


def test_two_consumers_split_the_partitions_and_write_each_row_once(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_scorer: Scorer
) -> None:
    n, partitions = 400, 4
    support.create_topic(kafka_bootstrap, topic, partitions)
    settings = support.settings_for(
        kafka_bootstrap, support.migrated(database_url), topic, batch_size=16
    )
    counts: dict[int, int] = {}
    with support.running_pipeline(settings, tiny_scorer) as first:
        support.wait_until(
            lambda: len(first.state.assigned_partitions()) == partitions, 30, "assignment"
        )
        producer = threading.Thread(
            target=lambda: counts.update(
                support.produce(
                    kafka_bootstrap,
                    topic,
                    [support.post_value(i) for i in range(n // 2)],
                    partitions=partitions,
                    pace_s=0.01,
                )
            )
        )
        producer.start()
        with support.running_pipeline(settings, tiny_scorer) as second:
            # The group rebalances mid-stream: each ends up with half of the partitions.
            support.wait_until(
                lambda: (
                    len(second.state.assigned_partitions()) == partitions // 2
                    and len(first.state.assigned_partitions()) == partitions // 2
                ),
                60,
                "the partitions to be split",
            )
            producer.join(60)
            # The second half lands after the split, so both consumers surely have work.
            more = support.produce(
                kafka_bootstrap,
                topic,
                [support.post_value(i) for i in range(n // 2, n)],
                partitions=partitions,
            )
            totals = {p: counts[p] + more[p] for p in counts}
            support.wait_until(lambda: support.row_count(database_url) >= n, 90, f"{n} rows")
            assert_all_committed(kafka_bootstrap, settings.group_id, topic, totals)
            both = first.state.assigned_partitions() | second.state.assigned_partitions()
            assert len(both) == partitions
    assert support.row_count(database_url) == n
    assert support.aggregate_total(database_url) == n
    assert first.recorder.batches and second.recorder.batches
    assert not first.errors and not second.errors


def test_postgres_stopped_and_restarted_mid_stream_loses_nothing(
    kafka_bootstrap: str, topic: str, tiny_scorer: Scorer, tmp_path: Path
) -> None:
    n = 300
    support.create_topic(kafka_bootstrap, topic, 2)
    with EmbeddedPostgres(data_dir=tmp_path / "pg") as server:
        url = support.migrated(server.create_database("sentiment"))
        settings = support.settings_for(kafka_bootstrap, url, topic, batch_size=16)
        counts = support.produce(
            kafka_bootstrap, topic, [support.post_value(i) for i in range(n // 2)], partitions=2
        )
        with support.running_pipeline(settings, tiny_scorer) as running:
            support.wait_until(lambda: support.row_count(url) >= n // 2, 60, "the first half")
            server.stop()
            more = support.produce(
                kafka_bootstrap,
                topic,
                [support.post_value(i) for i in range(n // 2, n)],
                partitions=2,
            )
            state: PipelineState = running.state
            support.wait_until(lambda: not state.database_ok, 30, "the pipeline to notice")
            assert state.running
            server.start()
            support.wait_until(
                lambda: support.row_count(url) >= n, 90, "every row after the restart"
            )
            totals = {p: counts[p] + more[p] for p in counts}
            assert_all_committed(kafka_bootstrap, settings.group_id, topic, totals)
            assert state.database_ok
            assert running.metrics.db_write_errors._value.get() >= 1
        assert support.row_count(url) == n
        assert support.aggregate_total(url) == n
        assert not running.errors
