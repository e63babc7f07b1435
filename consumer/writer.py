"""The last stage: store a scored batch, dead-letter what failed, then commit its offsets.

Order matters: rows in PostgreSQL (one transaction) -> dead letters confirmed by the broker ->
offsets committed -> observers told. A crash anywhere before the commit replays the batch,
and the idempotent write makes the replay harmless.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import structlog

from consumer.dlq import DeadLetterDeliveryError
from observability.metrics import PipelineMetrics
from storage.sink import Sink, StorageUnavailableError, WriteResult
from stream_core.backoff import Backoff, retry
from stream_core.batch import Batch
from stream_core.contract import DeadLetterReason
from stream_core.events import BatchObserver, CommittedBatch, PipelineState
from stream_core.records import DeadLetter, GoldLabel, ScoredPost, TopicPartition

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _transient(error: Exception) -> bool:
    return isinstance(error, StorageUnavailableError | DeadLetterDeliveryError)


class DeadLetterSink(Protocol):
    """What the writer needs of ``consumer.dlq.DeadLetterPublisher``."""

    def publish(self, letters: Sequence[DeadLetter]) -> None: ...

    def close(self) -> None: ...


class BatchAbandonedError(Exception):
    """The shutdown deadline passed while retrying: the batch stays uncommitted (replayed)."""


class BatchWriter:
    """Writes batches one at a time, in order, retrying transient failures with backoff."""

    def __init__(
        self,
        *,
        sink: Sink,
        dead_letters: DeadLetterSink,
        commit: Callable[[dict[TopicPartition, int]], None],
        metrics: PipelineMetrics,
        state: PipelineState,
        observers: Sequence[BatchObserver],
        model_version: str,
        abandon: threading.Event,
        backoff: Backoff | None = None,
    ) -> None:
        self._sink = sink
        self._dead_letters = dead_letters
        self._commit = commit
        self._metrics = metrics
        self._state = state
        self._observers = observers
        self._model_version = model_version
        self._abandon = abandon
        self._backoff = backoff or Backoff()
        # Cleared while PostgreSQL is failing: the poller pauses its partitions meanwhile.
        self.storage_ok = threading.Event()
        self.storage_ok.set()

    def handle(self, batch: Batch) -> None:
        result = self._until_done("database", lambda: self._write(batch.posts, batch.labels))
        committed_at = datetime.now(UTC)
        refused = {id(post): error for post, error in result.rejected}
        letters = batch.dead_letters + [
            DeadLetter(record, DeadLetterReason.STORAGE_REJECTED, refused[id(post)])
            for (record, _), post in zip(batch.accepted, batch.posts, strict=True)
            if id(post) in refused
        ]
        if letters:
            self._until_done("dead-letter topic", lambda: self._dead_letters.publish(letters))
        self._commit(batch.next_offsets)
        stored = [post for post in batch.posts if id(post) not in refused]
        self._record_metrics(batch, stored, result, committed_at)
        self._notify(CommittedBatch(stored, result.inserted, committed_at, self._model_version))

    def _write(self, posts: Sequence[ScoredPost], labels: Sequence[GoldLabel]) -> WriteResult:
        started = time.perf_counter()
        result = self._sink.write_batch(posts, labels)
        self._metrics.db_write_seconds.observe(time.perf_counter() - started)  # successes only
        return result

    def _until_done(self, target: str, action: Callable[[], T]) -> T:
        failures = 0

        def pause(error: Exception, attempt: int, delay_s: float) -> bool:
            nonlocal failures
            failures += 1
            self._failed(target, error, attempt)
            return not self._abandon.wait(delay_s)

        try:
            result = retry(action, backoff=self._backoff, retry_on=_transient, pause=pause)
        except (StorageUnavailableError, DeadLetterDeliveryError) as error:
            raise BatchAbandonedError(f"gave up on the {target} at shutdown") from error
        if target == "database" and not self.storage_ok.is_set():
            log.info("database is back", attempts=failures + 1)
            self._state.database_ok = True
            self.storage_ok.set()
        return result

    def _failed(self, target: str, error: Exception, attempt: int) -> None:
        if target == "database":
            self._metrics.db_write_errors.inc()
            self._state.database_ok = False
            self.storage_ok.clear()
        log.warning(f"{target} unavailable, retrying", attempt=attempt + 1, error=str(error))

    def _record_metrics(
        self,
        batch: Batch,
        stored: list[ScoredPost],
        result: WriteResult,
        committed_at: datetime,
    ) -> None:
        metrics = self._metrics
        metrics.batch_size.observe(len(batch))
        metrics.rows_written.inc(result.inserted)
        metrics.duplicates_skipped.inc(len(stored) - result.inserted)
        labels = Counter(post.label for post in stored if post.label is not None)
        for label, count in labels.items():
            metrics.predictions.labels(label=label).inc(count)
        from_created = metrics.end_to_end_latency.labels(source="created_at")
        from_kafka = metrics.end_to_end_latency.labels(source="kafka")
        for post in stored:
            if post.created_at is not None:
                from_created.observe(max(0.0, (committed_at - post.created_at).total_seconds()))
            if post.kafka_timestamp is not None:
                from_kafka.observe(max(0.0, (committed_at - post.kafka_timestamp).total_seconds()))

    def _notify(self, batch: CommittedBatch) -> None:
        for observer in self._observers:
            try:
                observer.on_batch_committed(batch)
            except Exception:
                # An observer's bug must not stop the stream (its rows are already stored).
                log.exception("batch observer failed", observer=type(observer).__name__)
