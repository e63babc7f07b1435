"""Micro-batches bounded by size and by wait time (the batch itself: ``stream_core.batch``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from stream_core.batch import Batch, Outcome
from stream_core.records import SourceRecord


class MicroBatcher:
    """Collects records into a batch until it holds ``max_posts`` or is ``max_wait_s`` old."""

    def __init__(
        self,
        max_posts: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_posts = max_posts
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._batch = Batch()
        self._started_at = 0.0

    def add(self, record: SourceRecord, outcome: Outcome) -> None:
        if not self._batch:
            self._started_at = self._clock()
        self._batch.add(record, outcome)

    def room(self) -> int:
        """Records the open batch can still take before it is full."""
        return max(0, self.max_posts - len(self._batch))

    def time_left(self) -> float:
        """Seconds until the open batch is due (``max_wait_s`` when there is none)."""
        if not self._batch:
            return self.max_wait_s
        return max(0.0, self._started_at + self.max_wait_s - self._clock())

    def ready(self) -> bool:
        # Dead letters count too, so that a flood of bad messages is still cut into batches.
        return bool(self._batch) and (len(self._batch) >= self.max_posts or self.time_left() <= 0.0)

    def take(self) -> Batch | None:
        """The open batch (None when empty); a new one starts."""
        if not self._batch:
            return None
        batch, self._batch = self._batch, Batch()
        return batch
