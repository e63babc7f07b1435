"""``registry.live.LiveScorer`` with a fake registry: a swap only once the new version loaded,
a failed load reported with the old version still serving, and no retry until the registry
changes again; the score step's default language route follows the swaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from consumer.routing import FollowingRoutes, Route, Routes, default_route
from consumer.scoring import ScoreStep
from model.scorer import ModelLoadError, Scorer
from observability.metrics import PipelineMetrics
from registry.live import LiveScorer
from registry.store import ModelRegistry
from stream_core.batch import Batch
from stream_core.records import Post, SourceRecord
from tests.fixtures.fakes import FakeMetadata, FakeScorer


@dataclass
class FakeRegistry:
    active: str
    fetched: list[str] = field(default_factory=list)

    def serving_state(self) -> dict[str, tuple[str, float]]:
        return {"active": (self.active, 1.0)}

    def fetch(self, version: str, cache_dir: Path) -> Path:
        self.fetched.append(version)
        return cache_dir / version


class Metadata(FakeMetadata):
    """The fake metadata with the languages a version declares (the default route's)."""

    languages: tuple[str, ...] = ("en",)


def scorer(version: str, **metadata: Any) -> Scorer:
    return cast(Scorer, FakeScorer(metadata=Metadata(version=version, **metadata)))


def live_scorer(
    registry: FakeRegistry, broken: set[str], **metadata: dict[str, Any]
) -> tuple[LiveScorer, list[Any]]:
    """A live scorer serving v1; ``metadata[version]``: what that version's folder declares."""
    reports: list[Any] = []

    def load(folder: Path) -> Scorer:
        if folder.name in broken:
            raise ModelLoadError(f"{folder.name} is broken")
        return scorer(folder.name, **metadata.get(folder.name, {}))

    live = LiveScorer(
        cast(ModelRegistry, registry),
        scorer("v1"),
        cache_dir=Path("/cache"),
        load=load,
        on_swap=lambda role, version, error: reports.append((role, version, error)),
    )
    return live, reports


def test_swaps_to_the_active_version_once_loaded() -> None:
    registry = FakeRegistry(active="v1")
    live, reports = live_scorer(registry, broken=set())
    live.refresh()
    assert registry.fetched == [] and live.version == "v1"  # serving it already
    registry.active = "v2"
    live.refresh()
    live.wait_loaded(5)
    assert live.version == "v2" and live.current().version == "v2"
    assert reports == [("active", "v2", None)]


def test_a_failed_load_keeps_the_old_version_and_is_not_retried_until_a_change() -> None:
    registry = FakeRegistry(active="bad")
    live, reports = live_scorer(registry, broken={"bad"})
    live.refresh()
    live.wait_loaded(5)
    assert live.version == "v1"
    assert reports == [("active", "bad", "bad is broken")]
    live.refresh()  # the next poll: the same active version is not fetched again
    live.wait_loaded(5)
    assert registry.fetched == ["bad"]
    registry.active = "v3"
    live.refresh()
    live.wait_loaded(5)
    assert live.version == "v3"


def batch_of(*langs: str | None) -> Batch:
    batch = Batch()
    for offset, lang in enumerate(langs):
        record = SourceRecord("posts", 0, offset, None, b"{}")
        batch.add(record, Post(post_id=f"p{offset}", text="some text", lang=lang))
    return batch


def test_the_default_route_follows_the_active_version_and_its_languages() -> None:
    registry = FakeRegistry(active="v1")
    live, _ = live_scorer(registry, broken=set(), v2={"languages": ("en", "fr")})
    routes = Routes(default_route(live.current()), [Route(scorer("es-1"), frozenset({"es"}))])
    changes: list[str] = []
    following = FollowingRoutes(live, routes, lambda model: changes.append(model.version))
    step = ScoreStep(live, PipelineMetrics(), following)

    def versions() -> list[str | None]:
        return [post.model_version for post in step.process(batch_of("en", "es", "fr")).posts]

    assert versions() == ["v1", "es-1", None]  # v1 reads no French: unscored
    registry.active = "v2"
    live.refresh()
    live.wait_loaded(5)
    # The next batch: the new version, with the languages it declares; the Spanish model stays.
    assert versions() == ["v2", "es-1", "v2"]
    assert changes == ["v2"]  # monitoring hears of it once


def test_without_routes_a_batch_carries_the_version_that_scored_it() -> None:
    registry = FakeRegistry(active="v1")
    live, _ = live_scorer(registry, broken=set())
    step = ScoreStep(live, PipelineMetrics())
    assert {post.model_version for post in step.process(batch_of("en", None)).posts} == {"v1"}
    registry.active = "v2"
    live.refresh()
    live.wait_loaded(5)
    assert {post.model_version for post in step.process(batch_of("en", None)).posts} == {"v2"}


def test_a_version_naming_its_outputs_in_another_order_keeps_the_rows_order() -> None:
    registry = FakeRegistry(active="v2")
    rotated = ["neutral", "positive", "negative"]  # the writer's order is negative, neutral, ...
    live, _ = live_scorer(registry, broken=set(), v2={"labels": rotated})
    live.refresh()
    live.wait_loaded(5)
    assert live.version == "v2"
    (post,) = (
        ScoreStep(scorer("v1"), PipelineMetrics(), Routes.everything(live))
        .process(batch_of("en"))
        .posts
    )
    # FakeScorer gives 0.8 to output len(text) % 3; v2 calls that output rotated[...].
    assert post.label == rotated[len("some text") % 3]
    assert post.probabilities[list(scorer("v1").labels).index(post.label)] == pytest.approx(0.8)
