"""The streaming pipeline: Kafka -> validated posts -> micro-batches -> steps -> PostgreSQL.

Four threads overlap the work so the model never waits for Kafka, PostgreSQL or the other steps:

* the poller (the caller's thread, the only one that touches the Kafka consumer): fetch,
  validate, cut micro-batches (``consumer.batching``: small ones cut by time when posts
  trickle in, growing up to their size while the model is busy), commit the offsets of
  stored batches (``consumer.committer``), pause partitions when downstream stays full or
  the database is down;
* the steps stage: runs the per-batch steps before the model (the watchlist's match, language
  identification) on the next batch while the model scores this one;
* the model stage: runs the last step, the model, while the next batch is fetched and
  prepared and the last one written;
* the writer: one transaction per batch, dead letters, then it hands the batch's offsets to the
  committer (``consumer.writer``).

Queues between them are bounded (two batches; one between the steps and the model;
``consumer.stages``), so memory stays bounded and
back-pressure reaches the poller, which pauses fetching but keeps polling (the group session
stays alive). Offsets are committed per partition, synchronously, in batch order and only after
the batch is stored: highest written offset + 1. At-least-once delivery plus idempotent writes
gives exactly one row per message. Which steps run and what a batch writes is composed in
``consumer.build``; the Kafka consumer comes from there too (``consumer.source``), so that a
fake one can drive this module in unit tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from consumer.batching import MicroBatcher
from consumer.committer import Committer
from consumer.settings import PipelineSettings
from consumer.source import KafkaConsumer
from consumer.stages import Downstream
from consumer.writer import BatchAbandonedError, BatchWriter, DeadLetterSink
from observability.metrics import PipelineMetrics
from storage.sink import Sink
from stream_core.batch import Batch, BatchStep, RecordReader
from stream_core.events import BatchObserver, PipelineState
from stream_core.records import SourceRecord

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 0.1  # longest poll: how fast stop requests and un-pausing are noticed
# A cut batch that waits longer than this for the steps pauses fetching (pausing drops the
# prefetched messages, so it is kept for real stalls, not for every full queue).
PAUSE_AFTER_S = 2.0
# While the model is busy, how often the poller looks whether it is free for a due batch.
BUSY_RECHECK_S = 0.01


class PipelineFailedError(Exception):
    """A stage hit an error that retrying cannot fix (the model crashed, the schema is gone)."""


class Pipeline:
    """One consumer in the group; ``run`` blocks until ``stop`` (or a fatal error)."""

    def __init__(
        self,
        settings: PipelineSettings,
        *,
        consumer: KafkaConsumer,
        reader: RecordReader,
        steps: Sequence[BatchStep],
        sink: Sink,
        dead_letters: DeadLetterSink,
        metrics: PipelineMetrics,
        state: PipelineState,
        model_version: str,
        observers: Sequence[BatchObserver] = (),
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._reader = reader
        self._sink = sink
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._state = state
        self._committer = Committer(consumer, metrics, state)
        self._batcher = MicroBatcher(
            settings.batch_size, settings.batch_wait_ms / 1000, settings.batch_max_bytes
        )
        self._pending: Batch | None = None  # cut but not yet accepted by the full steps queue
        self._pending_since = 0.0
        self._paused: bool | None = False  # None: unknown (just after an assignment)
        self._stop = threading.Event()
        self._abandon = threading.Event()  # past the shutdown deadline: stop retrying
        self._fatal: BaseException | None = None
        self._writer = BatchWriter(
            sink=sink,
            dead_letters=dead_letters,
            commit=self._committer.stored,
            metrics=metrics,
            state=state,
            observers=observers,
            model_version=model_version,
            abandon=self._abandon,
        )
        self._downstream = Downstream(
            steps=steps,
            write=self._writer.handle,
            on_failure=self._stage_failed,
            abandon=self._abandon,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to drain and return; a second call gives up on in-flight batches."""
        if self._stop.is_set():
            log.warning("second stop request: abandoning in-flight batches")
            self._abandon.set()
        self._stop.set()

    def run(self) -> None:
        self._downstream.start()
        try:
            # Inside the try: a subscribe that fails (bad topic name) still stops the stages
            # and closes the consumer, producer and database connection.
            self._consumer.subscribe(
                list(self._reader.topics),
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            self._state.running = True
            self._state.database_ok = True
            log.info("consuming", topics=list(self._reader.topics), group=self._settings.group_id)
            while not self._stop.is_set():
                self._poll_once()
        except BaseException as error:
            self._fatal = self._fatal or error
        finally:
            self._shutdown()
        if self._fatal is not None:
            if isinstance(self._fatal, PipelineFailedError | KafkaException):
                raise self._fatal
            raise PipelineFailedError(str(self._fatal)) from self._fatal

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self._settings.shutdown_timeout_s
        self._state.running = False
        if self._fatal is None:
            self._hand_over_open_batches(deadline)
        self._downstream.finish(deadline)
        self._committer.commit()
        in_flight = len(self._downstream.in_flight)
        if in_flight:
            log.warning(
                "shutdown deadline passed: uncommitted batches will be replayed", batches=in_flight
            )
        self._consumer.close()  # leaves the group now, so the partitions move on at once
        self._dead_letters.close()
        self._sink.close()
        self._committer.close()
        log.info("consumer closed", drained=not in_flight)

    # --- the poller ----------------------------------------------------------------------

    def _poll_once(self) -> None:
        self._committer.commit()
        if self._pending is not None and self._downstream.offer(self._pending, POLL_INTERVAL_S):
            self._pending = None
        self._apply_back_pressure()
        if self._pending is not None and not self._paused:
            return  # a short wait for the steps: no fetching meanwhile, and no pause yet
        model_idle = self._downstream.waiting()
        # A due batch grows while the model is busy; how soon the model is free is checked
        # every BUSY_RECHECK_S (consume returns early only once it has ``room`` records).
        due_in = self._batcher.time_left()
        if not model_idle:
            due_in = max(due_in, BUSY_RECHECK_S)
        # Never more than the open batch has room for: batches stay within batch_size.
        for message in self._consumer.consume(self._batcher.wanted(), min(due_in, POLL_INTERVAL_S)):
            self._accept(message)
        if self._pending is None and self._batcher.ready(self._downstream.waiting()):
            batch = self._batcher.take()
            if batch is not None and not self._downstream.offer(batch):
                self._pending = batch
                self._pending_since = time.monotonic()

    def _accept(self, message: Any) -> None:
        error: KafkaError | None = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("kafka error", error=str(error))
            return
        record = SourceRecord.from_message(message)
        self._metrics.messages_consumed.labels(topic=record.topic).inc()
        self._batcher.add(record, self._reader.read(record))

    def _apply_back_pressure(self) -> None:
        """Pause fetching while a cut batch waits or the database is down; resume after."""
        storage_ok = self._writer.storage_ok.is_set()
        stalled = (
            self._pending is not None and time.monotonic() - self._pending_since > PAUSE_AFTER_S
        )
        blocked = stalled or not storage_ok
        if blocked == self._paused:
            return
        assignment = self._consumer.assignment()
        if blocked:
            self._consumer.pause(assignment)
            log.info("paused fetching", partitions=len(assignment), database_ok=storage_ok)
        else:
            self._consumer.resume(assignment)
            if self._paused:
                log.info("resumed fetching", partitions=len(assignment))
        self._paused = blocked

    def _hand_over_open_batches(self, deadline: float) -> bool:
        """Send the waiting and the open batch down the stages; wait until all are committed.

        A batch the steps do not take by ``deadline`` stays the waiting one (never dropped: the
        partitions kept after a revocation go on, and their later commits would skip it).
        """
        if self._pending is not None:
            if not self._downstream.hand_over(self._pending, deadline):
                return False
            self._pending = None
        batch = self._batcher.take()
        if batch is not None and not self._downstream.hand_over(batch, deadline):
            self._pending, self._pending_since = batch, time.monotonic()
            return False
        drained = self._downstream.in_flight.wait_empty(deadline)
        self._committer.commit()
        return drained

    # --- the stages' work ------------------------------------------------------------------

    def _stage_failed(self, error: BaseException) -> None:
        if isinstance(error, BatchAbandonedError):
            log.warning("batch abandoned at shutdown; it will be replayed", error=str(error))
            return
        log.error("pipeline stage failed; stopping", error=str(error), exc_info=error)
        self._fatal = self._fatal or error
        self._stop.set()

    # --- rebalancing -------------------------------------------------------------------------

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._paused = None  # new partitions start unpaused; decide again on the next poll
        self._committer.assigned({(tp.topic, tp.partition) for tp in partitions})

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        # Finish the batches already read, and commit, before another consumer takes over.
        # Waiting makes no sense while the database is down: the new owner replays instead.
        if self._writer.storage_ok.is_set() and not self._abandon.is_set():
            deadline = time.monotonic() + self._settings.shutdown_timeout_s
            if not self._hand_over_open_batches(deadline):
                log.warning("revoked with batches in flight; the new owner replays them")
        self._committer.commit()
        self._committer.released(
            {(tp.topic, tp.partition) for tp in partitions}, "partitions revoked"
        )

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: another member may own them already, so commit nothing more.
        self._committer.released({(tp.topic, tp.partition) for tp in partitions}, "partitions lost")
