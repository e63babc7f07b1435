"""Promote and roll back while a stream runs through two consumers (real broker and
PostgreSQL, the tiny model): every post stored once, every row scored by one of the two
versions, and the switch visible in the rows within 5 s of each change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model.scorer import Scorer
from registry.live import LiveScorer
from registry.store import ModelRegistry
from storage.coordination import ChangeListener
from storage.model_registry import CHANNEL
from tests.fixtures import pipeline as support
from tests.fixtures.registry import model_copy

pytestmark = pytest.mark.integration

SWAP_BOUND_S = 5.0
PARTITIONS = 2


@contextmanager
def following(live: LiveScorer, database_url: str) -> Iterator[None]:
    live.refresh()
    live.wait_loaded(30)
    listener = ChangeListener(database_url, poll_s=5.0)
    listener.subscribe(CHANNEL, live.refresh_quietly)
    listener.start()
    try:
        yield
    finally:
        listener.stop()


class SwapClock:
    """When each replica first served ``version`` after :meth:`start`."""

    def __init__(self, replicas: list[LiveScorer]) -> None:
        self._replicas = replicas

    def seconds_until(self, version: str, started: float, timeout_s: float = 30) -> list[float]:
        seen: dict[int, float] = {}
        while len(seen) < len(self._replicas) and time.monotonic() - started < timeout_s:
            for i, live in enumerate(self._replicas):
                if i not in seen and live.version == version:
                    seen[i] = time.monotonic() - started
            time.sleep(0.02)
        assert len(seen) == len(self._replicas), f"not every replica serves {version}: {seen}"
        return sorted(seen.values())


def test_promote_and_roll_back_under_a_running_stream(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    support.migrated(database_url)
    registry = ModelRegistry(database_url)
    first = registry.register(tiny_model_dir, actor="test").version.version
    second = "tiny-b"
    registry.register(model_copy(tiny_model_dir, tmp_path / "b", second), actor="test")
    registry.promote(first, actor="test")
    support.create_topic(kafka_bootstrap, topic, PARTITIONS)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    replicas = [
        LiveScorer(
            registry,
            Scorer.load(tiny_model_dir),
            cache_dir=tmp_path / f"cache-{i}",
            load=Scorer.load,
        )
        for i in range(2)
    ]
    clock = SwapClock(replicas)
    values = [support.post_value(i) for i in range(2000)]
    with ExitStack() as stack:
        pipelines = []
        for live in replicas:
            stack.enter_context(following(live, database_url))
            pipelines.append(stack.enter_context(support.running_pipeline(settings, live)))
        support.wait_until(
            lambda: all(p.state.assigned_partitions() for p in pipelines),
            60,
            "both consumers to hold a partition",
        )
        support.produce(kafka_bootstrap, topic, values[:200], partitions=PARTITIONS, pace_s=0.01)

        started = time.monotonic()
        registry.promote(second, reason="test", actor="test")
        promoted_at = datetime.now(UTC)
        promote_delays = clock.seconds_until(second, started)
        support.produce(
            kafka_bootstrap, topic, values[200:1000], partitions=PARTITIONS, pace_s=0.01
        )

        started = time.monotonic()
        registry.rollback(reason="test", actor="test")
        rolled_back_at = datetime.now(UTC)
        rollback_delays = clock.seconds_until(first, started)
        support.produce(kafka_bootstrap, topic, values[1000:], partitions=PARTITIONS, pace_s=0.01)

        support.wait_until(lambda: support.row_count(database_url) >= len(values), 90, "all rows")
        time.sleep(1)  # anything more would be a duplicate
        assert all(not p.errors for p in pipelines)

    print(f"\nswap delays (s): promote {promote_delays}, rollback {rollback_delays}")
    assert max(promote_delays + rollback_delays) < SWAP_BOUND_S
    rows = support.query(
        database_url,
        "SELECT count(*), count(DISTINCT post_id) FROM scored_posts",
    )
    assert rows == [(len(values), len(values))]  # none lost, none twice
    versions = dict(
        support.query(database_url, "SELECT model_version, count(*) FROM scored_posts GROUP BY 1")
    )
    assert set(versions) == {first, second}, versions
    bound = timedelta(seconds=SWAP_BOUND_S)

    def versions_between(since: datetime, until: datetime) -> set[str]:
        found = support.query(
            database_url,
            "SELECT DISTINCT model_version FROM scored_posts"
            f" WHERE kafka_timestamp > '{since.isoformat()}'"
            f" AND kafka_timestamp < '{until.isoformat()}'",
        )
        return {version for (version,) in found}

    assert versions_between(promoted_at + bound, rolled_back_at) == {second}
    assert versions_between(rolled_back_at + bound, datetime.now(UTC)) == {first}
