"""The writer stage with fakes: retries, order of effects, dead letters, observers."""

from __future__ import annotations

import threading

import pytest

from consumer.scoring import ScoreStep
from consumer.writer import BatchAbandonedError, BatchWriter
from observability.metrics import PipelineMetrics
from stream_core.backoff import Backoff
from stream_core.batch import Batch
from stream_core.contract import DeadLetterReason
from stream_core.events import CommittedBatch, PipelineState
from stream_core.records import DeadLetter, Post, SourceRecord
from tests.fixtures.fakes import FakeDeadLetters, FakeScorer, FlakySink

NO_WAIT = Backoff(initial_s=0.001, max_s=0.001)


def a_batch(*texts: str) -> Batch:
    batch = Batch()
    for offset, text in enumerate(texts):
        record = SourceRecord("posts", 0, offset, None, text.encode())
        if text == "bad-json":
            batch.add(record, DeadLetter(record, DeadLetterReason.INVALID_JSON, "not JSON"))
        else:
            batch.add(record, Post(post_id=str(offset), text=text))
    return ScoreStep(FakeScorer(), PipelineMetrics()).process(batch)


def make_writer(
    sink: FlakySink, letters: FakeDeadLetters, **kwargs: object
) -> tuple[BatchWriter, list[dict[tuple[str, int], int]], list[CommittedBatch], PipelineMetrics]:
    commits: list[dict[tuple[str, int], int]] = []
    seen: list[CommittedBatch] = []
    metrics = PipelineMetrics()

    class Observer:
        def on_batch_committed(self, batch: CommittedBatch) -> None:
            seen.append(batch)

    class Broken:
        def on_batch_committed(self, batch: CommittedBatch) -> None:
            raise RuntimeError("observer bug")

    writer = BatchWriter(
        sink=sink,
        dead_letters=letters,
        commit=commits.append,
        metrics=metrics,
        state=PipelineState(),
        observers=[Broken(), Observer()],
        model_version="fake-1",
        abandon=kwargs.get("abandon", threading.Event()),  # type: ignore[arg-type]
        backoff=NO_WAIT,
    )
    return writer, commits, seen, metrics


def test_transient_failures_are_retried_then_offsets_committed() -> None:
    sink, letters = FlakySink(failures=3), FakeDeadLetters(failures=2)
    writer, commits, seen, metrics = make_writer(sink, letters)
    writer.handle(a_batch("good", "bad-json", "fine"))
    assert [p.text for p in sink.written] == ["good", "fine"]
    assert [letter.reason for letter in letters.sent] == [DeadLetterReason.INVALID_JSON]
    assert commits == [{("posts", 0): 3}]
    assert metrics.db_write_errors._value.get() == 3
    assert writer.storage_ok.is_set()
    # The broken observer did not stop the good one.
    assert len(seen) == 1 and seen[0].inserted == 2 and len(seen[0].posts) == 2


def test_refused_rows_are_dead_lettered_with_their_source_record() -> None:
    sink, letters = FlakySink(reject_texts=("evil",)), FakeDeadLetters()
    writer, commits, seen, _ = make_writer(sink, letters)
    writer.handle(a_batch("good", "evil", "fine"))
    (letter,) = letters.sent
    assert letter.reason is DeadLetterReason.STORAGE_REJECTED
    assert (letter.record.offset, letter.record.value) == (1, b"evil")
    assert commits == [{("posts", 0): 3}]
    assert [p.text for p in seen[0].posts] == ["good", "fine"]


def test_abandoning_stops_retrying_and_commits_nothing() -> None:
    abandon = threading.Event()
    abandon.set()
    sink = FlakySink(failures=1_000)
    writer, commits, seen, _ = make_writer(sink, FakeDeadLetters(), abandon=abandon)
    with pytest.raises(BatchAbandonedError):
        writer.handle(a_batch("good"))
    assert commits == [] and seen == []
    assert not writer.storage_ok.is_set()


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff(initial_s=0.1, max_s=1.0)
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (3, 0.8), (4, 1.0), (50, 1.0)]:
        delay = backoff.delay(attempt)
        assert ceiling / 2 <= delay <= ceiling
