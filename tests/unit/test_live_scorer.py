"""``registry.live.LiveScorer`` with a fake registry: a swap only once the new version loaded,
a failed load reported with the old version still serving, and no retry until the registry
changes again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from model.scorer import ModelLoadError, Scorer
from registry.live import LiveScorer
from registry.store import ModelRegistry
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


def scorer(version: str) -> Scorer:
    return cast(Scorer, FakeScorer(metadata=FakeMetadata(version=version)))


def live_scorer(registry: FakeRegistry, broken: set[str]) -> tuple[LiveScorer, list[Any]]:
    reports: list[Any] = []

    def load(folder: Path) -> Scorer:
        if folder.name in broken:
            raise ModelLoadError(f"{folder.name} is broken")
        return scorer(folder.name)

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
