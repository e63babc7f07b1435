"""Offsets of stored batches -> Kafka, in order, for the partitions this consumer still owns.

Like quixstreams' Checkpoint: an offset is committed only after everything before it is
stored. The writer thread reports each stored batch (:meth:`Committer.stored`); the poller
thread, the only one that touches the Kafka consumer, commits them (:meth:`Committer.commit`:
a synchronous commit from another thread would block behind the poll). Rebalances go through
here too, so that a partition handed to another member is never committed again.
"""

from __future__ import annotations

import contextlib
import queue

import structlog
from confluent_kafka import KafkaException, TopicPartition

from consumer.flow import OwnedPartitions
from consumer.source import KafkaConsumer
from observability.metrics import PipelineMetrics
from stream_core.events import PipelineState
from stream_core.records import TopicPartition as Partition

log = structlog.get_logger(__name__)


class Committer:
    """Commits stored offsets and keeps the owned partitions, the lag gauges and /ready's view."""

    def __init__(
        self, consumer: KafkaConsumer, metrics: PipelineMetrics, state: PipelineState
    ) -> None:
        self._consumer = consumer
        self._metrics = metrics
        self._state = state
        self._stored: queue.SimpleQueue[dict[Partition, int]] = queue.SimpleQueue()
        self._owned = OwnedPartitions()

    def stored(self, next_offsets: dict[Partition, int]) -> None:
        """A batch is stored: its offsets may be committed (any thread)."""
        self._stored.put(next_offsets)

    def commit(self) -> None:
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

    def assigned(self, partitions: set[Partition]) -> None:
        owned = self._owned.add(partitions)
        self._publish(owned)
        if partitions:
            log.info(
                "partitions assigned",
                partitions=sorted(p for _, p in partitions),
                owned=sorted(p for _, p in owned),
            )

    def released(self, partitions: set[Partition], event: str) -> None:
        """``partitions`` are no longer ours (revoked or lost): never commit them again."""
        self._publish(self._owned.remove(partitions))
        for topic, partition in partitions:
            with contextlib.suppress(KeyError):  # no commit yet: no gauge
                self._metrics.consumer_lag.remove(topic, str(partition))
        log.info(event, partitions=sorted(p for _, p in partitions))

    def close(self) -> None:
        """The consumer left the group: it owns nothing any more."""
        self._publish(set())

    def _publish(self, owned: set[Partition]) -> None:
        self._state.set_assigned(owned)
        self._metrics.assigned_partitions.set(len(owned))

    def _update_lag(self, committed: list[TopicPartition]) -> None:
        # cached=True: the high watermark from the last fetch (no broker round trip; the
        # ListOffsets answer is also wrong on some Kafka-compatible brokers).
        for tp in committed:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                self._metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, high - tp.offset)
                )
