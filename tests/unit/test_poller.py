"""The poller's decisions, driven by a fake Kafka consumer (no broker, no database): commit
order, pause and resume, the hand-over at a revocation, lost partitions, shutdown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

import consumer.pipeline as pipeline_module
from consumer.messages import MessageReader
from consumer.pipeline import Pipeline
from consumer.scoring import ScoreStep
from consumer.settings import Settings
from observability.metrics import PipelineMetrics
from storage.sink import StorageUnavailableError, WriteResult
from stream_core.batch import Batch, BatchStep
from stream_core.events import PipelineState
from stream_core.records import GoldLabel, ScoredPost
from tests.fixtures.fakes import FakeConsumer, FakeDeadLetters, FakeScorer
from tests.fixtures.pipeline import in_a_thread


def values(count: int, first: int = 0) -> list[bytes]:
    return [json.dumps({"id": str(i), "text": f"post {i}"}).encode() for i in range(first, count)]


class RecordingSink:
    """Stores nothing, but says in the consumer's call log what it stored and when."""

    def __init__(self, consumer: FakeConsumer, failures: int = 0) -> None:
        self._consumer = consumer
        self.failures = failures
        self.offsets: list[tuple[int, int]] = []

    def write_batch(
        self, posts: Sequence[ScoredPost], labels: Sequence[GoldLabel] = ()
    ) -> WriteResult:
        if self.failures:
            self.failures -= 1
            self._consumer.calls.append(("store failed", None))
            raise StorageUnavailableError("database down")
        highest: dict[int, int] = {}
        for post in posts:
            highest[post.partition] = max(highest.get(post.partition, 0), post.offset + 1)
        self.offsets += [(post.partition, post.offset) for post in posts]
        self._consumer.calls.append(("stored", highest))
        return WriteResult(inserted=len(posts))

    def close(self) -> None:
        pass


class Gate:
    """A step that holds each batch until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()

    def process(self, batch: Batch) -> Batch:
        self.entered.set()
        assert self.open.wait(10), "the gate was never opened"
        return batch


@contextmanager
def running(
    consumer: FakeConsumer,
    sink: RecordingSink | None = None,
    steps: Sequence[BatchStep] = (),
    **settings: Any,
) -> Iterator[Pipeline]:
    metrics = PipelineMetrics()
    pipeline = Pipeline(
        Settings(
            topic=consumer.topic,
            batch_size=settings.pop("batch_size", 4),
            batch_wait_ms=settings.pop("batch_wait_ms", 20),
            shutdown_timeout_s=settings.pop("shutdown_timeout_s", 5),
            _env_file=None,  # type: ignore[call-arg]
        ),
        consumer=consumer,
        reader=MessageReader(consumer.topic),
        steps=[*steps, ScoreStep(FakeScorer(), metrics)],
        sink=sink or RecordingSink(consumer),
        dead_letters=FakeDeadLetters(),
        metrics=metrics,
        state=PipelineState(),
        model_version=FakeScorer().version,
    )
    with in_a_thread(pipeline, join_s=10) as (_, errors):
        yield pipeline
    assert not errors


def commits(consumer: FakeConsumer) -> list[dict[int, int]]:
    return [offsets for name, offsets in consumer.calls if name == "commit"]


def test_offsets_are_committed_in_order_and_never_ahead_of_the_stored_rows() -> None:
    consumer = FakeConsumer()
    consumer.assign(0, 1)
    consumer.produce(0, values(10))
    consumer.produce(1, values(6))
    with running(consumer):
        consumer.wait_for(lambda: consumer.committed == {0: 10, 1: 6}, "every offset committed")
    stored: dict[int, int] = {}
    last_commit: dict[int, int] = {}
    for name, offsets in consumer.calls:
        if name == "stored":
            stored.update(offsets)
        elif name == "commit":
            for partition, offset in offsets.items():
                assert offset <= stored[partition], "committed before its rows were stored"
                assert offset > last_commit.get(partition, 0), "commits went backwards"
                last_commit[partition] = offset


def test_fetching_pauses_while_the_database_is_down_and_resumes_after() -> None:
    consumer = FakeConsumer()
    consumer.assign(0)
    consumer.produce(0, values(4))
    sink = RecordingSink(consumer, failures=3)
    with running(consumer, sink):
        consumer.wait_for(lambda: consumer.committed == {0: 4}, "the batch committed")
        consumer.wait_for(lambda: "resume" in consumer.names(), "fetching resumed")
    names = consumer.names()
    assert names.index("store failed") < names.index("pause") < names.index("stored")
    assert names.index("stored") < names.index("commit") and "resume" in names
    assert sink.offsets == [(0, i) for i in range(4)]  # stored once, nothing lost


def test_stalled_steps_pause_fetching_and_nothing_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "PAUSE_AFTER_S", 0.1)
    consumer, gate = FakeConsumer(), Gate()
    consumer.assign(0)
    consumer.produce(0, values(40))
    sink = RecordingSink(consumer)
    with running(consumer, sink, steps=[gate], batch_size=2):
        consumer.wait_for(lambda: "pause" in consumer.names(), "fetching paused")
        assert consumer.committed == {}
        gate.open.set()
        consumer.wait_for(lambda: consumer.committed == {0: 40}, "every offset committed")
        consumer.wait_for(lambda: "resume" in consumer.names(), "fetching resumed")
    assert sorted(sink.offsets) == [(0, i) for i in range(40)]


def test_a_revocation_hands_the_open_batch_over_and_commits_before_letting_go() -> None:
    consumer = FakeConsumer()
    consumer.assign(0, 1)
    consumer.produce(0, values(3))
    consumer.produce(1, values(3))
    # A batch that would wait a minute to fill: only the revocation cuts it.
    with running(consumer, batch_size=100, batch_wait_ms=60_000) as pipeline:
        consumer.wait_delivered(6)
        consumer.revoke(0)
        consumer.wait_for(lambda: "revoked" in consumer.names(), "the revocation")
        names = consumer.names()
        handed_over = names.index("stored") < names.index("commit") < names.index("revoked")
        assert handed_over, consumer.calls
        assert commits(consumer) == [{0: 3, 1: 3}]
        assert pipeline._state.assigned_partitions() == {("posts", 1)}
        consumer.produce(0, values(6, first=3))  # no longer ours: never fetched or committed
        consumer.produce(1, values(5, first=3))
        consumer.wait_delivered(8)
    assert consumer.committed == {0: 3, 1: 5}
    assert consumer.delivered == 8


def test_lost_partitions_are_never_committed() -> None:
    consumer, gate = FakeConsumer(), Gate()
    consumer.assign(0, 1)
    consumer.produce(0, values(2))
    consumer.produce(1, values(2))
    with running(consumer, steps=[gate], batch_size=4):
        assert gate.entered.wait(10)
        consumer.lose(0)
        consumer.wait_for(lambda: "lost" in consumer.names(), "the loss")
        gate.open.set()
        consumer.wait_for(lambda: consumer.committed == {1: 2}, "partition 1 committed")
    assert all(0 not in offsets for offsets in commits(consumer))


def test_stop_finishes_the_open_batch_commits_and_closes_the_consumer() -> None:
    consumer = FakeConsumer()
    consumer.assign(0)
    consumer.produce(0, values(3))
    with running(consumer, batch_size=100, batch_wait_ms=60_000) as pipeline:
        consumer.wait_delivered(3)
        assert consumer.committed == {}
    assert consumer.committed == {0: 3}
    assert consumer.names()[-2:] == ["commit", "close"]
    assert pipeline._state.assigned_partitions() == set()


class Sizes:
    """A step that notes the size of each batch it sees."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def process(self, batch: Batch) -> Batch:
        self.seen.append(len(batch))
        return batch


def test_batches_grow_while_the_model_is_busy_and_stay_small_when_it_is_idle() -> None:
    consumer, gate, sizes = FakeConsumer(), Gate(), Sizes()
    consumer.assign(0)
    with running(consumer, steps=[gate, sizes], batch_size=100, batch_wait_ms=20):
        consumer.produce(0, values(1))
        assert gate.entered.wait(10)  # the model is busy with a batch of one
        consumer.produce(0, values(10, first=1))
        consumer.wait_delivered(10)
        time.sleep(0.1)  # five waits long: due, but the model is busy
        consumer.produce(0, values(30, first=10))
        consumer.wait_delivered(30)
        time.sleep(0.1)
        gate.open.set()  # the model is free: everything that came meanwhile is one batch
        consumer.wait_for(lambda: consumer.committed == {0: 30}, "every offset committed")
        consumer.produce(0, values(31, first=30))  # a single post, the model idle: cut by time
        consumer.wait_for(lambda: consumer.committed == {0: 31}, "the single post committed")
    assert sizes.seen == [1, 29, 1]
