"""A shadow version on a stream (real broker and PostgreSQL, the tiny model): one
``shadow_scores`` row per sampled post, the active path's rows unchanged, and the agreement the
metrics show equal to one computed by hand from the tables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumer.shadow import ShadowScoring, sampled
from model.scorer import Scorer
from observability.metrics import PipelineMetrics
from registry.live import LiveScorer
from registry.store import ModelRegistry
from sentiment_stream.cli import main
from stream_core.records import ScoredPost
from tests.fixtures import pipeline as support
from tests.fixtures.registry import model_copy

pytestmark = pytest.mark.integration

POSTS = 400
SAMPLE = 0.5


def test_the_shadow_scores_its_sample_beside_the_active_version(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    support.migrated(database_url)
    registry = ModelRegistry(database_url)
    active = registry.register(tiny_model_dir, actor="test").version.version
    registry.promote(active, actor="test")
    candidate = model_copy(tiny_model_dir, tmp_path / "c", "tiny-rotated", rotate_labels=True)
    registry.register(candidate, actor="test")
    registry.shadow("tiny-rotated", sample=SAMPLE, actor="test")
    live = LiveScorer(
        registry, Scorer.load(tiny_model_dir), cache_dir=tmp_path / "cache", load=Scorer.load
    )
    live.refresh()
    live.wait_loaded(30)
    assert live.shadow() is not None
    support.create_topic(kafka_bootstrap, topic, 2)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    metrics = PipelineMetrics()
    # A queue long enough that nothing is dropped here (dropping is unit-tested).
    shadow = ShadowScoring(live.shadow, database_url, metrics, queue_batches=1000)
    shadow.start()
    try:
        with support.running_pipeline(settings, live, observers=[shadow]):
            values = [support.post_value(i) for i in range(POSTS)]
            support.produce(kafka_bootstrap, topic, values, partitions=2)
            support.wait_until(lambda: support.row_count(database_url) == POSTS, 60, "all rows")
    finally:
        shadow.close(timeout_s=60)
    positions = support.query(
        database_url, "SELECT kafka_topic, kafka_partition, kafka_offset FROM scored_posts"
    )
    expected = {
        (t, p, o)
        for t, p, o in positions
        if sampled(ScoredPost(post_id="", text="", topic=t, partition=p, offset=o), SAMPLE)
    }
    shadowed = support.query(
        database_url, "SELECT kafka_topic, kafka_partition, kafka_offset FROM shadow_scores"
    )
    assert len(shadowed) == len(set(shadowed)) and set(shadowed) == expected
    assert 0.3 * POSTS < len(expected) < 0.7 * POSTS
    assert support.query(database_url, "SELECT DISTINCT model_version FROM scored_posts") == [
        (active,)
    ]
    ((agreed, total),) = support.query(
        database_url,
        "SELECT count(*) FILTER (WHERE s.label = p.label), count(*) FROM shadow_scores s"
        " JOIN scored_posts p USING (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)",
    )
    assert total == len(expected) and agreed < total  # the rotated labels disagree
    assert metrics.shadow_agreements.labels(model_version="tiny-rotated")._value.get() == agreed
    assert metrics.shadow_posts.labels(outcome="scored")._value.get() == total
    comparison = registry.compare(None, timedelta(hours=1))
    assert comparison.shadow_version == "tiny-rotated" and comparison.shadowed == total
    assert comparison.agreement == pytest.approx(agreed / total)
    served = comparison.confusion[active]
    assert sum(n for row in served.values() for n in row.values()) == total
    assert comparison.shadow_quality["n"] == 0  # no gold labels on this stream


def test_rescore_backfills_stored_posts_and_resumes(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    support.migrated(database_url)
    registry = ModelRegistry(database_url)
    candidate = model_copy(tiny_model_dir, tmp_path / "c", "tiny-rotated", rotate_labels=True)
    registry.register(candidate, actor="test")
    support.create_topic(kafka_bootstrap, topic, 2)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    with support.running_pipeline(settings, Scorer.load(tiny_model_dir)):
        values = [support.post_value(i) for i in range(120)]
        support.produce(kafka_bootstrap, topic, values, partitions=2)
        support.wait_until(lambda: support.row_count(database_url) == 120, 60, "all rows")

    def rescore() -> str:
        result = CliRunner().invoke(
            main,
            ["model", "rescore", "tiny-rotated", "--since", "1h", "--page", "50"],
            env={
                "DATABASE_URL": database_url,
                "SENTIMENT_LOG_LEVEL": "ERROR",
                "XDG_CACHE_HOME": str(tmp_path / "cache"),
            },
        )
        assert result.exit_code == 0, result.output
        return result.output.splitlines()[-1]

    assert rescore() == "120 posts scored by tiny-rotated into shadow_scores"
    assert rescore() == "0 posts scored by tiny-rotated into shadow_scores"  # nothing left
    assert support.query(
        database_url,
        "SELECT count(*), count(DISTINCT (kafka_topic, kafka_partition, kafka_offset))"
        " FROM shadow_scores s JOIN scored_posts p"
        " USING (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp)",
    ) == [(120, 120)]
