"""An in-memory stand-in for ``confluent_kafka.Consumer``: partitions, rebalances, commits.

Rebalances are scripted (:meth:`FakeConsumer.assign`, :meth:`revoke`, :meth:`lose`) and, as
librdkafka does, their callbacks run inside the next ``consume`` call, on the poller's thread.
Everything the pipeline does to the consumer goes to :attr:`FakeConsumer.calls`, in order.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal

from confluent_kafka import TopicPartition

# What the call log says once a rebalance callback has returned.
_DONE = {"on_assign": "assigned", "on_revoke": "revoked", "on_lost": "lost"}


class FakeMessage:
    """The part of ``confluent_kafka.Message`` the pipeline reads."""

    def __init__(
        self, topic: str, partition: int, offset: int, value: bytes | None, error: Any = None
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._value, self._error = value, error

    def error(self) -> Any:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, -1)  # TIMESTAMP_NOT_AVAILABLE


class FakeConsumer:
    """Partitions of one topic in memory; fetching starts at the committed offset."""

    def __init__(self, topic: str = "posts") -> None:
        self.topic = topic
        self.calls: list[tuple[str, Any]] = []  # ("commit", {partition: offset}), ("pause", ...)
        self.committed: dict[int, int] = {}
        self.closed = False
        self._log: dict[int, list[bytes | None]] = {}
        self._position: dict[int, int] = {}
        self._assigned: set[int] = set()
        self._paused: set[int] = set()
        self._rebalances: deque[Callable[[], None]] = deque()
        self._callbacks: dict[str, Callable[[Any, list[TopicPartition]], None]] = {}
        self._lock = threading.Lock()
        self.delivered = 0

    # --- what the test does ---------------------------------------------------------------

    def produce(self, partition: int, values: Iterable[bytes | None]) -> None:
        with self._lock:
            self._log.setdefault(partition, []).extend(values)

    def assign(self, *partitions: int) -> None:
        self._schedule("on_assign", partitions)

    def revoke(self, *partitions: int) -> None:
        self._schedule("on_revoke", partitions)

    def lose(self, *partitions: int) -> None:
        self._schedule("on_lost", partitions)

    def wait_delivered(self, count: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.delivered < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.delivered} of {count} messages consumed")
            time.sleep(0.01)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; calls: {self.calls}")
            time.sleep(0.01)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    # --- what the pipeline calls ----------------------------------------------------------

    def subscribe(
        self,
        topics: list[str],
        *,
        on_assign: Callable[[Any, list[TopicPartition]], None],
        on_revoke: Callable[[Any, list[TopicPartition]], None],
        on_lost: Callable[[Any, list[TopicPartition]], None],
    ) -> None:
        assert topics == [self.topic]
        self._callbacks = {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        while self._rebalances:
            self._rebalances.popleft()()
        with self._lock:
            messages = self._fetch(num_messages)
        if not messages:
            time.sleep(min(timeout, 0.01))
        self.delivered += len(messages)
        return messages

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in sorted(self._assigned)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("pause", sorted(tp.partition for tp in partitions)))
        self._paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("resume", sorted(tp.partition for tp in partitions)))
        self._paused -= {tp.partition for tp in partitions}

    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]:
        self.calls.append(("commit", {tp.partition: tp.offset for tp in offsets}))
        self.committed.update({tp.partition: tp.offset for tp in offsets})
        return offsets

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = 0.0, cached: bool = False
    ) -> tuple[int, int]:
        with self._lock:
            return 0, len(self._log.get(partition.partition, []))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closed = True

    # --- inside ---------------------------------------------------------------------------

    def _schedule(self, callback: str, partitions: tuple[int, ...]) -> None:
        def run() -> None:
            if callback == "on_assign":
                self._assigned |= set(partitions)
                for p in partitions:  # fetching starts where the group committed
                    self._position[p] = self.committed.get(p, 0)
            self.calls.append((callback, sorted(partitions)))
            self._callbacks[callback](self, [TopicPartition(self.topic, p) for p in partitions])
            if callback != "on_assign":
                self._assigned -= set(partitions)
                self._paused -= set(partitions)
            self.calls.append((_DONE[callback], sorted(partitions)))

        self._rebalances.append(run)

    def _fetch(self, limit: int) -> list[FakeMessage]:
        messages: list[FakeMessage] = []
        for partition in sorted(self._assigned - self._paused):
            log = self._log.get(partition, [])
            while len(messages) < limit and self._position[partition] < len(log):
                offset = self._position[partition]
                messages.append(FakeMessage(self.topic, partition, offset, log[offset]))
                self._position[partition] = offset + 1
        return messages
