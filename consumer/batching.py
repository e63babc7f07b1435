"""Micro-batches that follow the backlog (the batch itself: ``stream_core.batch``).

A batch is cut:

* by size (``max_posts``) or by bytes (``max_bytes`` of message values), whatever the model is
  doing: the bounds that keep memory bounded;
* by time (``max_wait_s``, counted from its first record) when the model is idle: posts that
  trickle in are never held longer than the wait;
* past its wait while the model is still busy with the batch before, it keeps filling, up to its
  size and byte bounds: under a backlog batches grow, and the model scores large, length-sorted
  batches with little padding (``model.scorer``), while a light stream keeps small ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from stream_core.batch import Batch, Outcome
from stream_core.records import SourceRecord

# A full batch should take at most this share of the shutdown drain (SIGTERM, rebalances): one
# in flight and the next one cut must still finish before the deadline.
DRAIN_SHARE = 0.25


def batch_size_for(posts_per_s: float, shutdown_timeout_s: float, requested: int) -> int:
    """The largest batch, up to ``requested``, that a model scoring ``posts_per_s`` finishes in
    a quarter of the shutdown drain: 1,024 for the default model, about 200 for roberta-base."""
    return max(1, min(requested, int(posts_per_s * shutdown_timeout_s * DRAIN_SHARE)))


class MicroBatcher:
    """Collects records into a batch; :meth:`ready` says when to cut it (see the module)."""

    def __init__(
        self,
        max_posts: int,
        max_wait_s: float,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_posts = max_posts
        self.max_wait_s = max_wait_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._batch = Batch()
        self._bytes = 0
        self._started_at = 0.0

    def add(self, record: SourceRecord, outcome: Outcome) -> None:
        if not self._batch:
            self._started_at = self._clock()
        self._batch.add(record, outcome)
        self._bytes += len(record.value or b"")

    def room(self) -> int:
        """Records the open batch can still take before it is full (by count)."""
        return 0 if self.full() else self.max_posts - len(self._batch)

    def wanted(self) -> int:
        """How many records to ask the consumer for at most: one while the batch is empty (a
        fetch of many returns only when it has them or times out, and the wait must start
        when the first record comes), then the room left."""
        return 1 if not self._batch else max(1, self.room())

    def full(self) -> bool:
        """The open batch reached its size or byte bound: cut it whatever the model is doing."""
        # Dead letters count too, so that a flood of bad messages is still cut into batches.
        return len(self._batch) >= self.max_posts or (
            self.max_bytes is not None and self._bytes >= self.max_bytes
        )

    def time_left(self) -> float:
        """Seconds until the open batch is due (``max_wait_s`` when there is none)."""
        if not self._batch:
            return self.max_wait_s
        return max(0.0, self._started_at + self.max_wait_s - self._clock())

    def ready(self, model_idle: bool = True) -> bool:
        """Cut now: the batch is full, or its wait is over and the model waits for work."""
        if not self._batch:
            return False
        return self.full() or (model_idle and self.time_left() <= 0.0)

    def take(self) -> Batch | None:
        """The open batch (None when empty); a new one starts."""
        if not self._batch:
            return None
        batch, self._batch, self._bytes = self._batch, Batch(), 0
        return batch
