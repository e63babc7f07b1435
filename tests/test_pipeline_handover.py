"""Handing the open batches over (at a revocation or at shutdown) when the scorer is stalled."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from consumer.batching import Batch
from consumer.dlq import DeadLetterPublisher
from consumer.pipeline import QUEUE_BATCHES, Pipeline
from embedded.process import free_port
from observability.metrics import PipelineMetrics
from stream_core.events import PipelineState
from stream_core.records import Post, SourceRecord
from stream_core.settings import Settings
from tests.pipeline_support import FakeScorer
from tests.test_writer import FlakySink


def a_record(offset: int) -> tuple[SourceRecord, Post]:
    record = SourceRecord("posts", 0, offset, None, b"{}")
    return record, Post(post_id=str(offset), text=f"post {offset}")


def a_batch(offset: int) -> Batch:
    batch = Batch()
    batch.add(*a_record(offset))
    return batch


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    """A pipeline whose stages never start: its scorer queue, once full, stays full."""
    settings = Settings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",  # nothing listens: no broker needed
        database_url=SecretStr("postgresql+psycopg://nobody@127.0.0.1:1/none"),
        _env_file=None,  # type: ignore[call-arg]
    )
    metrics = PipelineMetrics()
    letters = DeadLetterPublisher(settings.kafka_config(), "posts.dlq", "group", metrics)
    built = Pipeline(
        settings,
        scorer=FakeScorer(),
        sink=FlakySink(),
        dead_letters=letters,
        metrics=metrics,
        state=PipelineState(),
    )
    yield built
    built._consumer.close()
    letters.close(timeout_s=0)


def test_a_batch_the_scorer_does_not_take_waits_instead_of_being_dropped(
    pipeline: Pipeline,
) -> None:
    for _ in range(QUEUE_BATCHES):  # a stalled scorer
        pipeline._to_score.put(Batch())
    waiting = a_batch(0)
    pipeline._pending = waiting
    pipeline._batcher.add(*a_record(1))

    assert not pipeline._hand_over_open_batches(time.monotonic() + 0.2)
    assert pipeline._pending is waiting
    open_batch = pipeline._batcher.take()  # still there, not lost with the refused one
    assert open_batch is not None
    assert open_batch.next_offsets == {("posts", 0): 2}
    assert len(pipeline._in_flight) == 0

    pipeline._to_score.get_nowait()  # room for one batch: the waiting one goes
    pipeline._batcher.add(*a_record(1))
    assert not pipeline._hand_over_open_batches(time.monotonic() + 0.2)
    assert pipeline._pending is not waiting
    assert pipeline._pending is not None
    assert pipeline._pending.next_offsets == {("posts", 0): 2}  # the open one waits now
    assert len(pipeline._in_flight) == 1  # only the one handed over
