"""The online language mix: Prometheus series with a bounded label, and /stats."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from observability.api import create_app
from observability.label_stats import OnlineLabelStats
from observability.language_stats import OnlineLanguageStats, language_label
from observability.metrics import PipelineMetrics
from storage.rollups import LabelCounts, resolution_for
from stream_core.contract import LABELS
from stream_core.events import CommittedBatch, PipelineState
from tests.fixtures.fakes import FakeScorer, scored_post


def batch_in(*langs: str | None) -> CommittedBatch:
    posts = [
        replace(scored_post("positive", i), lang=lang)
        if lang in {"en", None}
        else replace(scored_post("positive", i), lang=lang, label=None, probabilities=())
        for i, lang in enumerate(langs)
    ]
    return CommittedBatch(posts, len(posts), datetime.now(UTC), "fake-1")


def test_languages_beyond_the_tracked_ones_are_other() -> None:
    assert [language_label(lang) for lang in ("en", "ja", None, "xx", "und")] == [
        "en",
        "ja",
        "und",
        "other",
        "und",
    ]


def test_committed_posts_are_counted_per_language_and_status() -> None:
    metrics = PipelineMetrics()
    stats = OnlineLanguageStats(metrics)
    stats.on_batch_committed(batch_in("en", "en", None, "ja", "xx"))
    series = {
        (s.labels["lang"], s.labels["status"]): s.value
        for family in metrics.registry.collect()
        if family.name == "sentiment_posts_by_language"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert series == {
        ("en", "scored"): 2,
        ("und", "scored"): 1,
        ("ja", "unscored"): 1,
        ("other", "unscored"): 1,
    }
    mix = stats.mix()
    assert mix.posts == {"en": 2, "und": 1, "ja": 1, "other": 1}
    assert mix.unscored == {"ja": 1, "other": 1}
    assert mix.unscored_share == 0.4


class NoWindowCounts:
    def __call__(self, window: timedelta, entity: str | None = None) -> LabelCounts:
        return LabelCounts({}, datetime.now(UTC), resolution_for(window))


def test_stats_shows_the_language_mix_and_the_online_mix_skips_unscored_posts() -> None:
    metrics = PipelineMetrics()
    labels, languages = OnlineLabelStats(LABELS), OnlineLanguageStats(metrics)
    batch = replace(
        batch_in("en", "ar"),
        posts=[replace(p, gold_label="positive") for p in batch_in("en", "ar").posts],
    )
    for observer in (labels, languages):
        observer.on_batch_committed(batch)

    app = create_app(
        FakeScorer(), PipelineState(), metrics, labels, NoWindowCounts(), language_stats=languages
    )
    body = TestClient(app).get("/stats").json()
    assert body["languages"] == {
        "posts": {"en": 1, "ar": 1},
        "unscored": {"ar": 1},
        "total": 2,
        "unscored_share": 0.5,
    }
    assert body["online"]["total"] == 1
    assert (body["online"]["gold_labelled"], body["online"]["accuracy"]) == (1, 1.0)
