"""What the pipeline tells the rest of the process: committed batches and its live state.

Observers (the spike detector, the online label statistics) subscribe to committed batches;
the HTTP API reads :class:`PipelineState` for /ready. Both are filled by the pipeline only
after the database transaction of a batch has committed, so they never count a lost post.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from stream_core.records import ScoredPost


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """A micro-batch whose rows are committed in PostgreSQL (offsets follow)."""

    posts: Sequence[ScoredPost]
    inserted: int  # rows actually inserted; the rest were replays already stored
    committed_at: datetime
    model_version: str


class BatchObserver(Protocol):
    """Anything that wants to see each committed batch; must be quick and must not raise."""

    def on_batch_committed(self, batch: CommittedBatch) -> None: ...


@dataclass
class PipelineState:
    """Live facts about the consumer that /ready and the dashboard read (thread-safe)."""

    model_loaded: bool = False
    running: bool = False
    database_ok: bool = False
    assigned: set[tuple[str, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_assigned(self, partitions: set[tuple[str, int]]) -> None:
        with self._lock:
            self.assigned = set(partitions)

    def assigned_partitions(self) -> set[tuple[str, int]]:
        with self._lock:
            return set(self.assigned)
