"""Micro-batches bounded by size and by wait time, and their offsets to commit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stream_core.events import ScoredPost
from stream_core.records import DeadLetter, Post, SourceRecord, TopicPartition


@dataclass
class Batch:
    """Consecutive records of a few partitions: the valid posts and the dead letters."""

    accepted: list[tuple[SourceRecord, Post]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Per partition, the offset to commit once this batch is stored: highest offset + 1.
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def add(self, record: SourceRecord, outcome: Post | DeadLetter) -> None:
        if isinstance(outcome, DeadLetter):
            self.dead_letters.append(outcome)
        else:
            self.accepted.append((record, outcome))
        self.next_offsets[record.topic_partition] = record.offset + 1

    def __len__(self) -> int:
        return len(self.accepted) + len(self.dead_letters)


@dataclass
class ScoredBatch:
    """A batch after the model: one ScoredPost per accepted record, in the same order."""

    batch: Batch
    posts: list[ScoredPost]


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

    def add(self, record: SourceRecord, outcome: Post | DeadLetter) -> None:
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
