"""The streaming pipeline: Kafka -> validated posts -> micro-batches -> scores -> PostgreSQL.

Three threads overlap the work so the model never waits for Kafka or PostgreSQL:

* the poller (the caller's thread, the only one that touches the Kafka consumer): fetch,
  validate, cut micro-batches, commit the offsets of stored batches, pause partitions when
  downstream stays full or the database is down;
* the scorer: runs the model on one batch while the next is fetched and the last one written;
* the writer: one transaction per batch, dead letters, then it hands the batch's offsets back
  to the poller to commit (a synchronous commit from another thread blocks behind the poll).

Queues between them are bounded (two batches), so memory stays bounded and back-pressure
reaches the poller, which pauses fetching but keeps polling (the group session stays alive).
Offsets are committed per partition, synchronously, in batch order and only after the batch
is stored: highest written offset + 1. At-least-once delivery plus idempotent writes gives
exactly one row per message.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumer.batching import Batch, MicroBatcher, ScoredBatch
from consumer.dlq import DeadLetterPublisher
from consumer.flow import InFlight, OwnedPartitions
from consumer.messages import InvalidMessageError, parse_post
from consumer.scoring import BatchScorer, score_batch
from consumer.stages import END, EndOfStream, Stage
from consumer.writer import BatchAbandonedError, BatchWriter
from observability.metrics import PipelineMetrics
from storage.sink import PostgresSink, Sink
from stream_core.events import BatchObserver, PipelineState
from stream_core.records import DeadLetter, Post, SourceRecord
from stream_core.records import TopicPartition as Partition
from stream_core.settings import Settings

log = structlog.get_logger(__name__)

# Defaults a user may override with KAFKA_* / --kafka-option. A new group starts at the
# beginning of the topic, so no post published before the first start is skipped. Cooperative
# rebalancing moves only the partitions that change owner; the others keep flowing. Kafka
# answers a fetch as soon as data arrives, but some Kafka-compatible brokers (tansu, the
# embedded one) hold it for part of fetch.wait.max.ms even then: 100 ms instead of
# librdkafka's 500 keeps end-to-end latency low there, for a few more idle fetches a second.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "fetch.wait.max.ms": 100,
}
# Never overridable: offsets are ours to commit, after the database commit.
CONSUMER_FORCED: dict[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}
POLL_INTERVAL_S = 0.1  # longest poll: how fast stop requests and un-pausing are noticed
# A cut batch that waits longer than this for the scorer pauses fetching (pausing drops the
# prefetched messages, so it is kept for real stalls, not for every full queue).
PAUSE_AFTER_S = 2.0
QUEUE_BATCHES = 2  # batches waiting between two stages


class PipelineFailedError(Exception):
    """A stage hit an error that retrying cannot fix (the model crashed, the schema is gone)."""


def consumer_config(settings: Settings) -> dict[str, Any]:
    return {
        **CONSUMER_DEFAULTS,
        **settings.kafka_config(**{"group.id": settings.group_id}),
        **CONSUMER_FORCED,
    }


class Pipeline:
    """One consumer in the group; ``run`` blocks until ``stop`` (or a fatal error)."""

    def __init__(
        self,
        settings: Settings,
        *,
        scorer: BatchScorer,
        sink: Sink,
        dead_letters: DeadLetterPublisher,
        metrics: PipelineMetrics,
        state: PipelineState,
        observers: Sequence[BatchObserver] = (),
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._state = state
        self._consumer = Consumer(consumer_config(settings))
        self._batcher = MicroBatcher(settings.batch_size, settings.batch_wait_ms / 1000)
        self._pending: Batch | None = None  # cut but not yet accepted by the full score queue
        self._pending_since = 0.0
        self._stored: queue.SimpleQueue[dict[Partition, int]] = queue.SimpleQueue()
        self._paused: bool | None = False  # None: unknown (just after an assignment)
        self._in_flight = InFlight()
        self._owned = OwnedPartitions()
        self._stop = threading.Event()
        self._abandon = threading.Event()  # past the shutdown deadline: stop retrying
        self._fatal: BaseException | None = None
        self._writer = BatchWriter(
            sink=sink,
            dead_letters=dead_letters,
            commit=self._stored.put,
            metrics=metrics,
            state=state,
            observers=observers,
            model_version=scorer.version,
            abandon=self._abandon,
        )
        self._to_score: queue.Queue[Batch | EndOfStream] = queue.Queue(QUEUE_BATCHES)
        self._to_write: queue.Queue[ScoredBatch | EndOfStream] = queue.Queue(QUEUE_BATCHES)
        self._stages: list[Stage[Any, Any]] = [
            Stage(
                "scorer",
                inbox=self._to_score,
                work=lambda batch: self._score(scorer, batch),
                outbox=self._to_write,
                on_dropped=self._in_flight.done,
                on_failure=self._stage_failed,
            ),
            Stage(
                "writer",
                inbox=self._to_write,
                work=self._write,
                outbox=None,
                on_dropped=self._in_flight.done,
                on_failure=self._stage_failed,
            ),
        ]

    # --- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to drain and return; a second call gives up on in-flight batches."""
        if self._stop.is_set():
            log.warning("second stop request: abandoning in-flight batches")
            self._abandon.set()
        self._stop.set()

    def run(self) -> None:
        for stage in self._stages:
            stage.start()
        try:
            # Inside the try: a subscribe that fails (bad topic name) still stops the stages
            # and closes the consumer, producer and database connection.
            self._consumer.subscribe(
                [self._settings.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            self._state.running = True
            self._state.database_ok = True
            log.info("consuming", topic=self._settings.topic, group=self._settings.group_id)
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
        if not self._put_until(self._to_score, END, deadline):
            self._abandon.set()
        for stage in self._stages:
            stage.join(max(0.0, deadline - time.monotonic()))
        if any(stage.is_alive() for stage in self._stages):
            self._abandon.set()
            for stage in self._stages:
                stage.join(5.0)
        self._commit_stored()
        if len(self._in_flight):
            log.warning(
                "shutdown deadline passed: uncommitted batches will be replayed",
                batches=len(self._in_flight),
            )
        self._consumer.close()  # leaves the group now, so the partitions move on at once
        self._dead_letters.close()
        self._sink.close()
        self._state.set_assigned(set())
        self._metrics.assigned_partitions.set(0)
        log.info("consumer closed", drained=not len(self._in_flight))

    # --- the poller ----------------------------------------------------------------------

    def _poll_once(self) -> None:
        self._commit_stored()
        if self._pending is not None and self._offer(self._pending, POLL_INTERVAL_S):
            self._pending = None
        self._apply_back_pressure()
        if self._pending is not None and not self._paused:
            return  # a short wait for the scorer: no fetching meanwhile, and no pause yet
        timeout = min(self._batcher.time_left(), POLL_INTERVAL_S)
        # Never more than the open batch has room for: batches stay within batch_size.
        for message in self._consumer.consume(max(1, self._batcher.room()), timeout):
            self._accept(message)
        if self._pending is None and self._batcher.ready():
            batch = self._batcher.take()
            if batch is not None and not self._offer(batch):
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
        outcome: Post | DeadLetter
        try:
            outcome = parse_post(
                record.value,
                max_text_chars=self._settings.max_text_chars,
                reject_unknown=self._settings.unknown_fields == "reject",
            )
        except InvalidMessageError as invalid:
            outcome = DeadLetter(record, invalid.reason, invalid.error)
        self._batcher.add(record, outcome)

    def _offer(self, batch: Batch, wait_s: float = 0.0) -> bool:
        """Hand ``batch`` to the scorer if its queue has room (within ``wait_s``)."""
        self._in_flight.add()
        try:
            self._to_score.put(batch, block=wait_s > 0, timeout=wait_s or None)
        except queue.Full:
            self._in_flight.done()
            return False
        return True

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

    def _put_until(self, target: queue.Queue[Any], item: Any, deadline: float) -> bool:
        while not self._abandon.is_set():
            wait_s = min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic()))
            try:
                target.put(item, timeout=wait_s)
            except queue.Full:
                if time.monotonic() >= deadline:
                    return False
                continue
            return True
        return False

    def _hand_over_open_batches(self, deadline: float) -> bool:
        """Send the waiting and the open batch down the stages; wait until all are committed.

        A batch the scorer does not take by ``deadline`` stays the waiting one (never dropped:
        the partitions kept after a revocation go on, and their later commits would skip it).
        """
        if self._pending is not None:
            if not self._hand_over(self._pending, deadline):
                return False
            self._pending = None
        batch = self._batcher.take()
        if batch is not None and not self._hand_over(batch, deadline):
            self._pending, self._pending_since = batch, time.monotonic()
            return False
        drained = self._in_flight.wait_empty(deadline)
        self._commit_stored()
        return drained

    def _hand_over(self, batch: Batch, deadline: float) -> bool:
        self._in_flight.add()
        if self._put_until(self._to_score, batch, deadline):
            return True
        self._in_flight.done()
        return False

    # --- the stages' work ------------------------------------------------------------------

    def _score(self, scorer: BatchScorer, batch: Batch) -> ScoredBatch:
        started = time.perf_counter()
        scored = score_batch(scorer, batch)
        if batch.accepted:
            self._metrics.inference_seconds.observe(time.perf_counter() - started)
        return scored

    def _write(self, scored: ScoredBatch) -> None:
        self._writer.handle(scored)
        self._in_flight.done()  # on failure the stage counts the batch as dropped instead

    def _stage_failed(self, error: BaseException) -> None:
        if isinstance(error, BatchAbandonedError):
            log.warning("batch abandoned at shutdown; it will be replayed", error=str(error))
            return
        log.error("pipeline stage failed; stopping", error=str(error), exc_info=error)
        self._fatal = self._fatal or error
        self._stop.set()

    def _commit_stored(self) -> None:
        """Commit the offsets of the batches stored so far, for the partitions still ours."""
        next_offsets: dict[Partition, int] = {}
        while True:
            try:
                # Batches are stored in order, so the last offset seen per partition is highest.
                next_offsets.update(self._stored.get_nowait())
            except queue.Empty:
                break
        owned = self._owned.snapshot()
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in sorted(next_offsets.items())
            if (topic, partition) in owned
        ]
        if not offsets:
            return
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            # The rows are stored; a replay of these offsets will be skipped by the unique key.
            log.warning("offset commit failed", error=str(error))
            return
        for tp in results or ():
            if tp.error is not None:
                log.warning("offset commit failed", partition=tp.partition, error=str(tp.error))
        self._update_lag(offsets)

    def _update_lag(self, committed: list[TopicPartition]) -> None:
        # cached=True: the high watermark from the last fetch (no broker round trip; the
        # ListOffsets answer is also wrong on some Kafka-compatible brokers).
        for tp in committed:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                self._metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, high - tp.offset)
                )

    # --- rebalancing -------------------------------------------------------------------------

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        added = {(tp.topic, tp.partition) for tp in partitions}
        owned = self._owned.add(added)
        self._paused = None  # new partitions start unpaused; decide again on the next poll
        self._publish_assignment(owned)
        if added:
            log.info(
                "partitions assigned",
                partitions=sorted(p for _, p in added),
                owned=sorted(p for _, p in owned),
            )

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        # Finish the batches already read, and commit, before another consumer takes over.
        # Waiting makes no sense while the database is down: the new owner replays instead.
        if self._writer.storage_ok.is_set() and not self._abandon.is_set():
            deadline = time.monotonic() + self._settings.shutdown_timeout_s
            if not self._hand_over_open_batches(deadline):
                log.warning("revoked with batches in flight; the new owner replays them")
        self._commit_stored()
        self._release(revoked, "partitions revoked")

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: another member may own them already, so commit nothing more.
        self._release({(tp.topic, tp.partition) for tp in partitions}, "partitions lost")

    def _release(self, partitions: set[Partition], event: str) -> None:
        owned = self._owned.remove(partitions)
        self._publish_assignment(owned)
        for topic, partition in partitions:
            with contextlib.suppress(KeyError):  # no commit yet: no gauge
                self._metrics.consumer_lag.remove(topic, str(partition))
        log.info(event, partitions=sorted(p for _, p in partitions))

    def _publish_assignment(self, owned: set[Partition]) -> None:
        self._state.set_assigned(owned)
        self._metrics.assigned_partitions.set(len(owned))


def build_pipeline(
    settings: Settings,
    *,
    scorer: BatchScorer,
    metrics: PipelineMetrics,
    state: PipelineState,
    observers: Sequence[BatchObserver] = (),
) -> Pipeline:
    """A pipeline writing to the PostgreSQL and dead-letter topic that ``settings`` name."""
    return Pipeline(
        settings,
        scorer=scorer,
        sink=PostgresSink(
            settings.database_url_value(), labels=scorer.labels, model_version=scorer.version
        ),
        dead_letters=DeadLetterPublisher(
            settings.producer_kafka_config(), settings.dlq_topic, settings.group_id, metrics
        ),
        metrics=metrics,
        state=state,
        observers=observers,
    )
