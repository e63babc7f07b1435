"""Languages on the real stream (broker and PostgreSQL): each post's language identified or
taken from its message, routed to the model that reads it (proven by each row's model
version), unscored when none does, and counted exactly per language across a replay."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consumer.routing import FollowingRoutes, Routes, load_routes
from consumer.shadow import ShadowScoring
from language.settings import LanguageSettings
from model.data import read_split
from model.metadata import ModelMetadata
from model.scorer import Scorer
from observability.metrics import PipelineMetrics
from producer_sim.languages import mixed
from producer_sim.simulator import Simulator, SimulatorConfig
from registry.live import LiveScorer
from registry.rescore import rescore, to_rescore
from registry.store import ModelRegistry
from tests.fixtures import pipeline as support
from tests.fixtures.languages import post_text
from tests.fixtures.registry import model_copy

pytestmark = pytest.mark.integration

# Posts per (text language, lang in the message): German with the message's "es" is routed as
# Spanish (the message's own lang is honoured), German without lang has no model.
MIX = {("en", None): 60, ("es", None): 30, ("de", None): 20, ("de", "es"): 10, ("en", "en"): 10}


@pytest.fixture(scope="module")
def spanish_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model standing in for a Spanish one: its metadata reads es, its version differs."""
    folder = tmp_path_factory.mktemp("models") / "tiny-es"
    shutil.copytree(tiny_model_dir, folder)
    metadata = ModelMetadata.read(folder)
    metadata.with_updates(languages=("es",), version=f"tiny-es-{metadata.onnx_sha256[:12]}").write(
        folder
    )
    return folder


@pytest.fixture
def models(tiny_model_dir: Path, spanish_model_dir: Path) -> tuple[Path, Path]:
    """The default model's folder and the Spanish stand-in's."""
    return tiny_model_dir, spanish_model_dir


def mixed_posts(start: int = 0) -> list[bytes]:
    """The posts of MIX, numbered from ``start``."""
    values: list[bytes] = []
    for (lang, given), count in MIX.items():
        for _ in range(count):
            i = start + len(values)
            fields: dict[str, Any] = {"lang": given} if given else {}
            values.append(support.post_value(i, text=post_text(lang, i), **fields))
    return values


def routed(default_dir: Path, **languages: Any) -> tuple[Scorer, Routes]:
    """The default model and the routes that ``languages`` (language settings) give."""
    default = Scorer.load(default_dir, threads=1)
    settings = LanguageSettings(**languages)
    return default, load_routes(settings, default, lambda folder: Scorer.load(folder, threads=1))


def test_posts_are_routed_by_language_and_counted_exactly_across_a_replay(
    kafka_bootstrap: str, database_url: str, topic: str, models: tuple[Path, Path]
) -> None:
    default_dir, spanish_model_dir = models
    english, routes = routed(default_dir, language_models={"es": spanish_model_dir})
    spanish_version = ModelMetadata.read(spanish_model_dir).version
    values = mixed_posts()
    n, partitions = len(values), 2
    support.create_topic(kafka_bootstrap, topic, partitions)
    counts = support.produce(kafka_bootstrap, topic, values, partitions=partitions)
    support.migrated(database_url)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    with support.running_pipeline(settings, english, routing=routes) as first:
        support.wait_until(lambda: support.row_count(database_url) >= n, 90, f"{n} rows")
    assert not first.errors

    expected_rows = [
        ("de", "detected", "unscored", "unsupported_language", None, 20),
        ("en", "detected", "scored", None, english.version, 60),
        ("en", "message", "scored", None, english.version, 10),
        ("es", "detected", "scored", None, spanish_version, 30),
        ("es", "message", "scored", None, spanish_version, 10),
    ]
    rows_sql = (
        "SELECT lang, lang_source, status, unscored_reason, model_version, count(*)"
        " FROM scored_posts GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2"
    )
    expected_counts = [("de", "unscored", 20), ("en", "scored", 70), ("es", "scored", 40)]
    counts_sql = (
        "SELECT lang, status, sum(count)::int FROM language_minute_counts GROUP BY 1, 2 ORDER BY 1"
    )

    def check() -> None:
        assert support.query(database_url, rows_sql) == expected_rows
        assert support.query(database_url, counts_sql) == expected_counts
        # Unscored posts are kept out of the label counts, and have no label nor probabilities.
        assert support.aggregate_total(database_url) == n - 20
        unscored = support.query(
            database_url,
            "SELECT count(*) FROM scored_posts WHERE status = 'unscored'"
            " AND label IS NULL AND prob_negative IS NULL AND lang_confidence > 0.5",
        )
        assert unscored == [(20,)]

    check()
    # Confidence only where the text was read: the message's lang taken as given is not checked.
    assert support.query(
        database_url,
        "SELECT count(*) FROM scored_posts"
        " WHERE lang_source = 'message' AND lang_confidence IS NULL",
    ) == [(20,)]

    # A new group reads the whole topic again: every row is a replay, nothing counts twice.
    replay = support.settings_for(kafka_bootstrap, database_url, topic, group_id=f"replay-{topic}")

    def replayed() -> bool:
        committed = support.committed_offsets(kafka_bootstrap, replay.group_id, topic, partitions)
        return committed == counts

    with support.running_pipeline(replay, english, routing=routes) as second:
        support.wait_until(replayed, 90, "the replay to be committed")
    assert not second.errors
    assert second.metrics.duplicates_skipped._value.get() == n
    check()


def test_without_a_model_for_the_language_a_fallback_reads_it(
    kafka_bootstrap: str, database_url: str, topic: str, models: tuple[Path, Path]
) -> None:
    default_dir, spanish_model_dir = models
    # The Spanish stand-in stands in for a multilingual model too.
    english, routes = routed(default_dir, fallback_model=spanish_model_dir)
    fallback_version = ModelMetadata.read(spanish_model_dir).version
    values = [support.post_value(i, text=post_text("de", i)) for i in range(12)]
    support.create_topic(kafka_bootstrap, topic, 1)
    support.produce(kafka_bootstrap, topic, values, partitions=1)
    support.migrated(database_url)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    with support.running_pipeline(settings, english, routing=routes) as running:
        support.wait_until(lambda: support.row_count(database_url) >= 12, 60, "12 rows")
    assert not running.errors
    assert support.query(
        database_url,
        "SELECT lang, status, model_version, count(*) FROM scored_posts GROUP BY 1, 2, 3",
    ) == [("de", "scored", fallback_version, 12)]
    assert support.aggregate_total(database_url) == 12


def test_the_simulators_multilingual_stream_is_counted_per_language(
    kafka_bootstrap: str, database_url: str, topic: str, sample_dir: Path, tiny_model_dir: Path
) -> None:
    """The bundled sample through the simulator: each post's lang honoured, only English
    scored by the default model, the rest stored unscored and counted exactly."""
    n = 600
    tweets = mixed(read_split(sample_dir, "val"), ["es", "ar", "hi"])[:n]
    expected = Counter(tweet.lang or "en" for tweet in tweets)
    assert set(expected) == {"en", "es", "ar", "hi"}
    config = SimulatorConfig(topic=topic, tweets=tweets, rate_per_s=0, seed=3, partitions=2)
    summary = Simulator(config, {"bootstrap.servers": kafka_bootstrap}).run()
    assert summary.posts == n
    support.migrated(database_url)
    english, routes = routed(tiny_model_dir)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    with support.running_pipeline(settings, english, routing=routes) as running:
        support.wait_until(lambda: support.row_count(database_url) >= n, 90, f"{n} rows")
    assert not running.errors
    counts = support.query(
        database_url,
        "SELECT lang, status, sum(count)::int FROM language_minute_counts GROUP BY 1, 2",
    )
    assert sorted(counts) == sorted(
        (lang, "scored" if lang == "en" else "unscored", count) for lang, count in expected.items()
    )
    assert support.aggregate_total(database_url) == expected["en"]
    gold_of_unscored = support.query(
        database_url,
        "SELECT count(*) FROM scored_posts WHERE status = 'unscored' AND gold_label IS NOT NULL",
    )
    assert gold_of_unscored == [(n - expected["en"],)]  # labelled, yet never scored


def test_registry_versions_are_the_default_route_and_shadow_only_its_posts(
    kafka_bootstrap: str,
    database_url: str,
    topic: str,
    models: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """The registry's active version scores the default route's posts, before and after a
    promotion; the Spanish model keeps its own; the shadow scores only the active version's
    posts, never an unscored one; a backfill only the posts in the candidate's languages."""
    default_dir, spanish_model_dir = models
    english, routes = routed(default_dir, language_models={"es": spanish_model_dir})
    spanish = ModelMetadata.read(spanish_model_dir).version
    support.migrated(database_url)
    registry = ModelRegistry(database_url)
    first = registry.register(default_dir, actor="test").version.version
    registry.promote(first, actor="test")
    second = "tiny-b"
    registry.register(model_copy(default_dir, tmp_path / "b", second), actor="test")
    registry.shadow(second, sample=1.0, actor="test")
    live = LiveScorer(
        registry,
        english,
        cache_dir=tmp_path / "cache",
        load=lambda folder: Scorer.load(folder, threads=1),
    )
    live.refresh()
    live.wait_loaded(30)
    assert live.shadow() is not None
    metrics = PipelineMetrics()
    shadow = ShadowScoring(live.shadow, database_url, metrics, active=lambda: live.version)
    shadow.start()
    shadowed = metrics.shadow_posts.labels(outcome="scored")
    english_posts = MIX["en", None] + MIX["en", "en"]
    spanish_posts = MIX["es", None] + MIX["de", "es"]
    before, after = mixed_posts(), mixed_posts(start=1000)
    n = len(before) + len(after)
    support.create_topic(kafka_bootstrap, topic, 1)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    routing = FollowingRoutes(live, routes)
    try:
        with support.running_pipeline(settings, live, routing=routing, observers=[shadow]) as run:
            support.produce(kafka_bootstrap, topic, before, partitions=1)
            support.wait_until(
                lambda: shadowed._value.get() >= english_posts, 90, "the shadow to catch up"
            )
            registry.promote(second, reason="test", actor="test")
            live.refresh()
            support.wait_until(lambda: live.version == second, 30, f"{second} to serve")
            support.produce(kafka_bootstrap, topic, after, partitions=1)
            support.wait_until(lambda: support.row_count(database_url) >= n, 90, f"{n} rows")
        assert not run.errors
    finally:
        shadow.close(timeout_s=60)
    assert sorted(
        support.query(
            database_url,
            f"SELECT kafka_offset >= {len(before)}, model_version, count(*) FROM scored_posts"
            " GROUP BY 1, 2",
        ),
        key=str,
    ) == sorted(
        [
            (False, first, english_posts),
            (False, spanish, spanish_posts),
            (False, None, MIX["de", None]),
            (True, second, english_posts),
            (True, spanish, spanish_posts),
            (True, None, MIX["de", None]),
        ],
        key=str,
    )
    # Shadowed: every post the active version scored while tiny-b was its shadow, nothing else.
    assert support.query(
        database_url,
        "SELECT s.model_version, s.active_version, count(*), count(p.label)"
        " FROM shadow_scores s JOIN scored_posts p USING (kafka_topic, kafka_partition,"
        " kafka_offset, kafka_timestamp) GROUP BY 1, 2",
    ) == [(second, first, english_posts, english_posts)]
    # A backfill (`model rescore`) reads the posts in the languages the candidate reads too.
    candidate = Scorer.load(model_copy(default_dir, tmp_path / "c", "tiny-c"), threads=1)
    since = datetime.now(UTC) - timedelta(hours=1)
    assert to_rescore(database_url, candidate, since) == 2 * english_posts
    assert rescore(database_url, candidate, since) == 2 * english_posts
