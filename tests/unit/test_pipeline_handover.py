"""Handing the open batches over (at a revocation or at shutdown) when the scorer is stalled."""

from __future__ import annotations

import time

import pytest

from consumer.messages import MessageReader
from consumer.pipeline import Pipeline
from consumer.settings import Settings
from consumer.stages import QUEUE_BATCHES
from observability.metrics import PipelineMetrics
from stream_core.batch import Batch
from stream_core.events import PipelineState
from stream_core.records import Post, SourceRecord
from tests.fixtures.fakes import FakeConsumer, FakeDeadLetters, FlakySink


def a_record(offset: int) -> tuple[SourceRecord, Post]:
    record = SourceRecord("posts", 0, offset, None, b"{}")
    return record, Post(post_id=str(offset), text=f"post {offset}")


def a_batch(offset: int) -> Batch:
    batch = Batch()
    batch.add(*a_record(offset))
    return batch


@pytest.fixture
def pipeline() -> Pipeline:
    """A pipeline whose stages never start: its steps queue, once full, stays full."""
    return Pipeline(
        Settings(_env_file=None),  # type: ignore[call-arg]
        consumer=FakeConsumer(),
        reader=MessageReader("posts"),
        steps=[],
        sink=FlakySink(),
        dead_letters=FakeDeadLetters(),
        metrics=PipelineMetrics(),
        state=PipelineState(),
        model_version="fake-1",
    )


def test_a_batch_the_scorer_does_not_take_waits_instead_of_being_dropped(
    pipeline: Pipeline,
) -> None:
    for _ in range(QUEUE_BATCHES):  # stalled steps
        pipeline._downstream._to_steps.put(Batch())
    waiting = a_batch(0)
    pipeline._pending = waiting
    pipeline._batcher.add(*a_record(1))

    assert not pipeline._hand_over_open_batches(time.monotonic() + 0.2)
    assert pipeline._pending is waiting
    open_batch = pipeline._batcher.take()  # still there, not lost with the refused one
    assert open_batch is not None
    assert open_batch.next_offsets == {("posts", 0): 2}
    assert len(pipeline._downstream.in_flight) == 0

    pipeline._downstream._to_steps.get_nowait()  # room for one batch: the waiting one goes
    pipeline._batcher.add(*a_record(1))
    assert not pipeline._hand_over_open_batches(time.monotonic() + 0.2)
    assert pipeline._pending is not waiting
    assert pipeline._pending is not None
    assert pipeline._pending.next_offsets == {("posts", 0): 2}  # the open one waits now
    assert len(pipeline._downstream.in_flight) == 1  # only the one handed over
