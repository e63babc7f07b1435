"""A micro-batch on its way through the per-batch steps, and what a step is.

The poller cuts batches; the steps stages pass each one through the steps that
``consumer.build`` composes, in order (the watchlist's match, language identification, then the
model, which has a thread of its own); the writer stores it in one transaction.
ARCHITECTURE.md, "Adding a per-batch step", shows a step from start to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from stream_core.records import (
    DeadLetter,
    GoldLabel,
    Post,
    ScoredPost,
    SourceRecord,
    TopicPartition,
)

# What one consumed record becomes: a post to score and store, a gold label for a post (from the
# labels topic), or a dead letter saying why it is neither.
Outcome = Post | GoldLabel | DeadLetter


class RecordReader(Protocol):
    """The topics the consumer subscribes to, and what each of their records becomes.

    ``consumer.build.record_reader`` composes it; the poller calls ``read`` once per record, on
    its own thread, so it must be quick (it parses, never waits).
    """

    @property
    def topics(self) -> Sequence[str]: ...

    def read(self, record: SourceRecord) -> Outcome: ...


@dataclass(slots=True)
class Batch:
    """Consecutive records of a few partitions: the valid posts, the gold labels, the dead
    letters, the offsets.

    ``posts`` holds one :class:`ScoredPost` per accepted record, in the same order: the rows
    the steps enrich and the writer stores. A step may replace a post with an enriched copy,
    never drop, add or reorder one (the writer pairs them with ``accepted`` to dead-letter a
    row PostgreSQL refuses). What a step adds for the whole batch gets a field here.
    """

    accepted: list[tuple[SourceRecord, Post]] = field(default_factory=list)
    posts: list[ScoredPost] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Gold labels from the labels topic, stored in the batch's transaction beside the posts.
    labels: list[GoldLabel] = field(default_factory=list)
    # Per partition, the offset to commit once this batch is stored: highest offset + 1.
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def add(self, record: SourceRecord, outcome: Outcome) -> None:
        if isinstance(outcome, DeadLetter):
            self.dead_letters.append(outcome)
        elif isinstance(outcome, GoldLabel):
            self.labels.append(outcome)
        else:
            self.accepted.append((record, outcome))
            self.posts.append(ScoredPost.unscored(record, outcome))
        self.next_offsets[record.topic_partition] = record.offset + 1

    def __len__(self) -> int:
        return len(self.accepted) + len(self.dead_letters) + len(self.labels)


class BatchStep(Protocol):
    """One per-batch step: one method that takes the batch and returns it enriched.

    Steps run in the order ``consumer.build.batch_steps`` lists them, one batch at a time, each
    step always on the same thread (the last one, the model, on a thread of its own; the ones
    before it on the steps thread), so a step may keep state between batches without locks.
    A step that raises stops the consumer; nothing of that batch was committed, so it is
    replayed.
    """

    def process(self, batch: Batch) -> Batch: ...
