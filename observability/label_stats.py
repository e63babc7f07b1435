"""The online label distribution since the process started, fed by committed batches."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stream_core.events import CommittedBatch


@dataclass(frozen=True, slots=True)
class LabelDistribution:
    """Counts and percentages per label (every label present, 0 when nothing was counted)."""

    counts: dict[str, int]
    percentages: dict[str, float]
    total: int

    @classmethod
    def of(cls, labels: Iterable[str], counts: Mapping[str, int]) -> LabelDistribution:
        ordered = {label: int(counts.get(label, 0)) for label in labels}
        total = sum(ordered.values())
        percentages = {
            label: round(100.0 * n / total, 2) if total else 0.0 for label, n in ordered.items()
        }
        return cls(ordered, percentages, total)


@dataclass(frozen=True, slots=True)
class OnlineAccuracy:
    """Agreement with the gold labels the simulator sends along (posts that carried one)."""

    labelled: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


class OnlineLabelStats:
    """A :class:`~stream_core.events.BatchObserver` counting committed posts per predicted label."""

    def __init__(self, labels: Iterable[str]) -> None:
        self.labels = tuple(labels)
        self._counts: Counter[str] = Counter()
        self._labelled = 0
        self._correct = 0
        self._lock = threading.Lock()

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        counts = Counter(post.label for post in batch.posts if post.label is not None)
        # Unscored posts (no model reads their language) are no part of the online accuracy.
        gold = [p for p in batch.posts if p.gold_label is not None and p.label is not None]
        correct = sum(post.gold_label == post.label for post in gold)
        with self._lock:
            self._counts.update(counts)
            self._labelled += len(gold)
            self._correct += correct

    def distribution(self) -> LabelDistribution:
        with self._lock:
            return LabelDistribution.of(self.labels, self._counts)

    def accuracy(self) -> OnlineAccuracy:
        with self._lock:
            return OnlineAccuracy(self._labelled, self._correct)
