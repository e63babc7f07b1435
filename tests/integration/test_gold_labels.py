"""Late gold labels through a real broker and PostgreSQL: before, with and long after their
posts, each applied once, replays harmless, a label for an unknown post kept until it arrives,
bad labels dead-lettered with reasons, and online quality equal to `model evaluate`'s figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from storage.gold_labels import apply_pending, pending_count
from storage.quality import online_quality, quality_by_version, quality_over_time
from storage.urls import libpq_url
from stream_core.contract import LABELS, DlqHeader
from stream_core.quality import Confusion
from tests.fixtures import pipeline as support

pytestmark = pytest.mark.integration

PARTITIONS = 2


def label_value(post: int, label: str, **fields: Any) -> bytes:
    return json.dumps({"post_id": f"post-{post}", "label": label, **fields}).encode()


def gold(i: int) -> str:
    return LABELS[(i * 7) % 3]


def stored_labels(database_url: str) -> dict[str, tuple[str | None, bool]]:
    rows = support.query(
        database_url, "SELECT post_id, gold_label, gold_label_at IS NOT NULL FROM scored_posts"
    )
    return {post_id: (label, has_time) for post_id, label, has_time in rows}


def label_times(database_url: str) -> list[tuple[Any, ...]]:
    """When each stored post's label arrived (the late post-999 left out)."""
    return sorted(
        support.query(
            database_url,
            "SELECT post_id, gold_label_at FROM scored_posts WHERE post_id <> 'post-999'",
        )
    )


def label_rows(database_url: str) -> list[tuple[Any, ...]]:
    return support.query(
        database_url,
        "SELECT post_id, label, received_at, applied_at FROM gold_labels ORDER BY post_id",
    )


def test_labels_before_with_and_after_their_posts_are_applied_once(
    kafka_bootstrap: str, database_url: str, topic: str
) -> None:
    labels_topic = f"{topic}.labels"
    support.create_topic(kafka_bootstrap, topic, PARTITIONS)
    support.create_topic(kafka_bootstrap, labels_topic, PARTITIONS)
    support.migrated(database_url)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    assert settings.labels_topic == labels_topic
    n = 60

    # Before: labels of posts 0-19 (and of a post that never comes, and a correction of post 3).
    before = [label_value(i, gold(i)) for i in range(20)]
    before += [label_value(999, "negative"), label_value(3, "positive"), label_value(3, gold(3))]
    support.produce(kafka_bootstrap, labels_topic, before, partitions=1)
    with support.running_pipeline(settings) as first:
        support.wait_until(lambda: len(label_rows(database_url)) == 21, 60, "21 stored labels")
        # With: posts 0-39 and the labels of 20-39 at once.
        support.produce(
            kafka_bootstrap,
            topic,
            [support.post_value(i) for i in range(40)],
            partitions=PARTITIONS,
        )
        support.produce(
            kafka_bootstrap,
            labels_topic,
            [label_value(i, gold(i)) for i in range(20, 40)],
            partitions=PARTITIONS,
        )
        support.wait_until(lambda: support.row_count(database_url) == 40, 60, "40 rows")
        # After: posts 40-59, then, once stored, their labels.
        support.produce(
            kafka_bootstrap,
            topic,
            [support.post_value(i) for i in range(40, n)],
            partitions=PARTITIONS,
        )
        support.wait_until(lambda: support.row_count(database_url) == n, 60, f"{n} rows")
        support.produce(
            kafka_bootstrap,
            labels_topic,
            [label_value(i, gold(i)) for i in range(40, n)],
            partitions=PARTITIONS,
        )
        support.wait_until(
            lambda: sum(1 for g, _ in stored_labels(database_url).values() if g) == n,
            60,
            "every post labelled",
        )
    assert not first.errors

    expected = {f"post-{i}": (gold(i), True) for i in range(n)}
    assert stored_labels(database_url) == expected
    rows = label_rows(database_url)
    assert len(rows) == n + 1
    pending = [post_id for post_id, _, _, applied_at in rows if applied_at is None]
    assert pending == ["post-999"]
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        assert pending_count(conn) == 1
        assert apply_pending(conn) == 0  # its post is still unknown

    # A replay of both topics by a new group changes nothing, not even when labels arrived.
    before_replay = label_rows(database_url)
    times = label_times(database_url)
    replay = support.settings_for(kafka_bootstrap, database_url, topic, group_id=f"replay-{topic}")
    with support.running_pipeline(replay) as second:
        support.wait_until(
            lambda: second.metrics.duplicates_skipped._value.get() == n, 60, "the replay"
        )
        # The unknown post arrives at last: its kept label is applied with it.
        support.produce(kafka_bootstrap, topic, [support.post_value(999)], partitions=1)
        support.wait_until(
            lambda: stored_labels(database_url).get("post-999") == ("negative", True),
            60,
            "the late post labelled",
        )
    assert not second.errors
    assert label_times(database_url) == times
    after = label_rows(database_url)
    assert after[:-1] == before_replay[:-1]  # post-999 sorts last
    assert after[-1][3] is not None


def test_bad_labels_go_to_the_dead_letter_topic_with_reasons(
    kafka_bootstrap: str, database_url: str, topic: str
) -> None:
    labels_topic = f"{topic}.labels"
    support.create_topic(kafka_bootstrap, topic, 1)
    support.create_topic(kafka_bootstrap, labels_topic, 1)
    support.migrated(database_url)
    bad = [
        label_value(1, "happy"),
        b'{"label": "negative"}',
        b'{"post_id": "post-1", "label": "neg',
        label_value(1, "positive"),  # the good neighbour lands
    ]
    support.produce(kafka_bootstrap, labels_topic, bad, partitions=1)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    with support.running_pipeline(settings) as running:
        support.wait_until(lambda: len(label_rows(database_url)) == 1, 60, "the good label")
        dead = running.metrics.dead_letters
        support.wait_until(
            lambda: dead.labels(reason="unknown_label")._value.get() == 1, 30, "dead letters"
        )
    assert not running.errors
    letters = sorted(
        support.read_all(kafka_bootstrap, settings.dlq_topic, 3),
        key=lambda m: int(dict(m.headers())[DlqHeader.SOURCE_OFFSET]),
    )
    reasons = [dict(m.headers())[DlqHeader.REASON].decode() for m in letters]
    assert reasons == ["unknown_label", "missing_field", "invalid_json"]
    assert [m.value() for m in letters] == bad[:3]
    assert {dict(m.headers())[DlqHeader.SOURCE_TOPIC].decode() for m in letters} == {labels_topic}
    assert [row[:2] for row in label_rows(database_url)] == [("post-1", "positive")]


def test_online_quality_counts_each_labelled_row_by_version_and_arrival_time(
    database_url: str,
) -> None:
    support.migrated(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [  # version, gold, predicted, label arrived minutes ago
        ("v1", "negative", "negative", 5),
        ("v1", "negative", "neutral", 5),
        ("v1", "positive", "positive", 30),
        ("v1", "neutral", "neutral", 90),
        ("v2", "neutral", "negative", 5),
        ("v1", None, "negative", 5),  # no gold label: not counted
    ]
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for i, (version, gold_label, label, minutes) in enumerate(rows):
            conn.execute(
                "INSERT INTO scored_posts (post_id, text, label, prob_negative, prob_neutral,"
                " prob_positive, model_version, kafka_topic, kafka_partition, kafka_offset,"
                " gold_label, gold_label_at) VALUES (%s, 't', %s, 0.2, 0.3, 0.5, %s, 'posts', 0,"
                " %s, %s, %s)",
                (f"p{i}", label, version, i, gold_label, now - timedelta(minutes=minutes)),
            )
        hour = online_quality(conn, "v1", since=now - timedelta(hours=1), until=now)
        day = quality_by_version(conn, since=now - timedelta(days=1), until=now)
        nothing = online_quality(conn, "v3", since=now - timedelta(hours=1))
        series = quality_over_time(
            conn, since=now - timedelta(hours=2), until=now, bucket=timedelta(hours=1)
        )
    assert hour.total == 3
    assert hour.matrix.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert hour.macro_recall == pytest.approx((0.5 + 1.0) / 2)
    assert sorted(day) == ["v1", "v2"]
    assert day["v1"].total == 4 and day["v2"].total == 1
    assert day["v2"].accuracy == 0.0
    assert nothing.total == 0 and nothing.document()["macro_recall"] is None
    assert [(q.model_version, q.total) for q in series] == [("v1", 1), ("v1", 3), ("v2", 1)]
    assert isinstance(hour, Confusion)
