"""The seam: a new per-batch step and a new write part plug in without touching the pipeline,
and the part's table stays exact when the stream is replayed (real broker and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from storage.sink import InsertedRows
from storage.urls import libpq_url
from stream_core.batch import Batch
from tests.fixtures import pipeline as support

pytestmark = pytest.mark.integration

LANGUAGE_COUNTS = """
CREATE TABLE language_counts (lang text PRIMARY KEY, count bigint NOT NULL)
"""


class GuessLanguage:
    """A step: posts whose message gave no language get ``und`` (undetermined)."""

    def __init__(self) -> None:
        self.batches = 0

    def process(self, batch: Batch) -> Batch:
        self.batches += 1
        batch.posts = [post if post.lang else replace(post, lang="und") for post in batch.posts]
        return batch


class LanguageCounts:
    """A write part: posts per language, from the rows the transaction really inserted."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        counts = Counter(post.lang for post in inserted.posts)
        languages = sorted(lang for lang in counts if lang is not None)
        cursor.execute(
            "INSERT INTO language_counts AS c (lang, count)"
            " SELECT * FROM unnest(%s::text[], %s::bigint[]) ORDER BY 1"
            " ON CONFLICT (lang) DO UPDATE SET count = c.count + EXCLUDED.count",
            (languages, [counts[lang] for lang in languages]),
        )


def test_a_new_step_and_write_part_plug_in_and_a_replay_adds_nothing(
    kafka_bootstrap: str, database_url: str, topic: str
) -> None:
    n, partitions = 120, 3
    support.create_topic(kafka_bootstrap, topic, partitions)
    values = [support.post_value(i, **({"lang": "en"} if i % 3 else {})) for i in range(n)]
    counts = support.produce(kafka_bootstrap, topic, values, partitions=partitions)
    support.migrated(database_url)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(LANGUAGE_COUNTS)
    expected = [("en", n - n // 3), ("und", n // 3)]

    def language_counts() -> list[tuple[Any, ...]]:
        return support.query(database_url, "SELECT lang, count FROM language_counts ORDER BY 1")

    step = GuessLanguage()
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    plugged: dict[str, Any] = {"extra_steps": [step], "extra_parts": [LanguageCounts()]}
    with support.running_pipeline(settings, **plugged) as first:
        support.wait_until(lambda: support.row_count(database_url) >= n, 60, f"{n} rows")
    assert not first.errors
    assert step.batches > 0
    assert language_counts() == expected
    # The step's enrichment reached the rows too, and the standard part still ran.
    stored = "SELECT lang, count(*) FROM scored_posts GROUP BY 1 ORDER BY 1"
    assert support.query(database_url, stored) == expected
    assert support.aggregate_total(database_url) == n

    # A new group reads the whole topic again: every row is a replay.
    replay = support.settings_for(kafka_bootstrap, database_url, topic, group_id=f"replay-{topic}")

    def replayed() -> bool:
        committed = support.committed_offsets(kafka_bootstrap, replay.group_id, topic, partitions)
        return committed == counts

    with support.running_pipeline(replay, **plugged) as second:
        support.wait_until(replayed, 60, "the replay to be committed")
    assert not second.errors
    assert second.metrics.duplicates_skipped._value.get() == n
    assert support.row_count(database_url) == n
    assert language_counts() == expected
    assert support.aggregate_total(database_url) == n
