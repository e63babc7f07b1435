"""Bookkeeping shared by the poller and the stages: batches in flight, partitions owned."""

from __future__ import annotations

import threading
import time

from stream_core.records import TopicPartition


class InFlight:
    """How many batches were handed to the stages and are not yet committed (or dropped)."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self._count += 1

    def done(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_empty(self, deadline: float) -> bool:
        """Block until none is in flight (True) or until ``deadline`` (monotonic) passes."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._count == 0, timeout=max(0.0, deadline - time.monotonic())
            )

    def __len__(self) -> int:
        with self._changed:
            return self._count


class OwnedPartitions:
    """Partitions this consumer may commit: assigned, and not yet handed over in a rebalance."""

    def __init__(self) -> None:
        self._owned: set[TopicPartition] = set()
        self._lock = threading.Lock()

    def add(self, partitions: set[TopicPartition]) -> set[TopicPartition]:
        with self._lock:
            self._owned |= partitions
            return set(self._owned)

    def remove(self, partitions: set[TopicPartition]) -> set[TopicPartition]:
        with self._lock:
            self._owned -= partitions
            return set(self._owned)

    def snapshot(self) -> set[TopicPartition]:
        with self._lock:
            return set(self._owned)
