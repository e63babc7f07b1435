"""``consumer.shadow``: the sample is fixed by Kafka position, and a full shadow queue drops
its own oldest work instead of making the active path wait."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from consumer.shadow import ShadowScoring, sampled
from model.scorer import Scorer
from observability.metrics import PipelineMetrics
from stream_core.events import CommittedBatch
from stream_core.records import ScoredPost
from tests.fixtures.fakes import FakeMetadata, FakeScorer


def post(offset: int, version: str | None = "active-1") -> ScoredPost:
    return ScoredPost(
        post_id=f"p{offset}",
        text="some text",
        topic="posts",
        partition=0,
        offset=offset,
        label=None if version is None else "neutral",
        model_version=version,
        status="unscored" if version is None else "scored",
    )


def batch(offsets: range) -> CommittedBatch:
    return CommittedBatch([post(o) for o in offsets], len(offsets), datetime.now(UTC), "active-1")


def test_the_sample_is_a_function_of_the_position() -> None:
    posts = [post(o) for o in range(2000)]
    chosen = [p.offset for p in posts if sampled(p, 0.25)]
    assert 400 < len(chosen) < 600
    assert chosen == [p.offset for p in posts if sampled(p, 0.25)]
    assert all(sampled(p, 1.0) for p in posts)


def test_a_full_queue_drops_the_oldest_shadow_work() -> None:
    metrics = PipelineMetrics()
    shadow_scorer = cast(Scorer, FakeScorer(metadata=FakeMetadata(version="shadow-1")))
    shadow = ShadowScoring(
        lambda: (shadow_scorer, 1.0), "postgresql://unused/db", metrics, queue_batches=2
    )
    # Not started: nothing takes work out of the queue, as when the shadow falls behind.
    for offsets in (range(0, 10), range(10, 15), range(15, 18)):
        shadow.on_batch_committed(batch(offsets))
    assert metrics.shadow_posts.labels(outcome="dropped")._value.get() == 10
    # Posts the shadow version itself scored, or that no model scored, are not shadowed.
    own = CommittedBatch([post(99, "shadow-1")], 1, datetime.now(UTC), "shadow-1")
    shadow.on_batch_committed(own)
    assert metrics.shadow_posts.labels(outcome="dropped")._value.get() == 10


def test_no_shadow_no_work() -> None:
    metrics = PipelineMetrics()
    shadow = ShadowScoring(lambda: None, "postgresql://unused/db", metrics, queue_batches=1)
    shadow.on_batch_committed(batch(range(5)))
    shadow.on_batch_committed(batch(range(5, 9)))
    assert metrics.shadow_posts.labels(outcome="dropped")._value.get() == 0


def test_only_the_active_versions_scored_posts_are_shadowed() -> None:
    metrics = PipelineMetrics()
    shadow_scorer = cast(Scorer, FakeScorer(metadata=FakeMetadata(version="shadow-1")))
    shadow = ShadowScoring(
        lambda: (shadow_scorer, 1.0),
        "postgresql://unused/db",
        metrics,
        queue_batches=1,
        active=lambda: "active-1",
    )
    dropped = metrics.shadow_posts.labels(outcome="dropped")
    # Unscored (no model reads its language) and a language route's model: never shadowed.
    others = [post(1, None), post(2, "es-1")]
    shadow.on_batch_committed(CommittedBatch(others, 2, datetime.now(UTC), "active-1"))
    shadow.on_batch_committed(batch(range(10, 12)))  # the queue had room: nothing dropped
    assert dropped._value.get() == 0
    mixed = [post(20), *others]
    shadow.on_batch_committed(CommittedBatch(mixed, 3, datetime.now(UTC), "active-1"))
    assert dropped._value.get() == 2  # the two posts of range(10, 12) made room
    shadow.on_batch_committed(batch(range(30, 31)))
    assert dropped._value.get() == 3  # and the one active post of the mixed batch
