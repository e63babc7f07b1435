"""Shadow (A/B) scoring: the shadow version scores, after the commit, a sample of the posts the
active version scored, into ``shadow_scores``; nothing it does changes what is served.

:class:`ShadowScoring` is a batch observer: ``on_batch_committed`` only picks the sample and
hands it to its own bounded queue, never waiting. When the queue is full (the shadow cannot
keep up), the oldest shadow work is dropped and counted: shadow work is the first thing the
consumer gives up, the active path never slows for it. A thread of its own scores and writes.
The sample is decided by the post's Kafka position, so a replayed batch samples the same posts
(and the table's key drops the repeats).
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from model.scorer import Scorer
from observability.metrics import PipelineMetrics
from registry.shadow import shadow_rows
from storage.connection import LazyConnection
from storage.shadow_scores import add_shadow_scores
from stream_core.events import CommittedBatch
from stream_core.records import ScoredPost

log = structlog.get_logger(__name__)

QUEUE_BATCHES = 4  # shadow batches waiting; beyond that the oldest is dropped


def sampled(post: ScoredPost, share: float) -> bool:
    """Whether ``post`` is in the ``share`` sample: the same answer for the same Kafka position,
    in every replica and every replay."""
    if share >= 1:
        return True
    key = f"{post.topic}\0{post.partition}\0{post.offset}".encode()
    return zlib.crc32(key) < share * 2**32


@dataclass(frozen=True)
class _Work:
    scorer: Scorer
    posts: Sequence[ScoredPost]


class ShadowScoring:
    """The :class:`~stream_core.events.BatchObserver` that runs the shadow version on the side.

    ``shadow`` gives the shadow scorer and its sample share, or None (``LiveScorer.shadow``);
    ``active``, the active version: only the posts it scored are shadowed (not those a language
    route's own model scored, nor the unscored ones, whose label is None).
    """

    def __init__(
        self,
        shadow: Callable[[], tuple[Scorer, float] | None],
        database_url: str,
        metrics: PipelineMetrics,
        *,
        queue_batches: int = QUEUE_BATCHES,
        active: Callable[[], str] | None = None,
    ) -> None:
        self._shadow = shadow
        self._active = active
        self._conn = LazyConnection(database_url, "sentiment-stream shadow")
        self._metrics = metrics
        self._queue: queue.Queue[_Work | None] = queue.Queue(queue_batches)
        self._thread = threading.Thread(target=self._run, name="shadow-scoring", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the work queued (within ``timeout_s``) and stop."""
        self._offer(None)
        self._thread.join(timeout_s)
        self._conn.close()

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        shadow = self._shadow()
        if shadow is None:
            return
        scorer, share = shadow
        active = self._active() if self._active is not None else None
        posts = [
            post
            for post in batch.posts
            if post.label is not None  # unscored: no model reads its language
            and post.model_version != scorer.version
            and (active is None or post.model_version == active)  # not a language route's
            and sampled(post, share)
        ]
        if posts:
            self._offer(_Work(scorer, posts))

    def _offer(self, work: _Work | None) -> None:
        """Queue ``work``, dropping the oldest queued shadow work when there is no room."""
        while True:
            try:
                self._queue.put_nowait(work)
                return
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    continue
                if dropped is None:  # closing: keep the end marker, drop the new work
                    self._queue.put_nowait(None)
                    return
                self._metrics.shadow_posts.labels(outcome="dropped").inc(len(dropped.posts))

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            try:
                self._score(work)
            except Exception as error:  # a shadow failure must never reach the stream
                self._metrics.shadow_posts.labels(outcome="failed").inc(len(work.posts))
                log.warning("shadow batch failed", error=str(error).strip())
                self._conn.close()

    def _score(self, work: _Work) -> None:
        started = time.perf_counter()
        rows = shadow_rows(work.scorer, work.posts)
        self._metrics.shadow_inference_seconds.observe(time.perf_counter() - started)
        version = work.scorer.version
        add_shadow_scores(self._conn.get(), rows)
        predictions = self._metrics.shadow_predictions
        for row in rows:
            predictions.labels(role="shadow", model_version=version, label=row.label).inc()
            predictions.labels(
                role="active", model_version=row.active_version, label=row.active_label
            ).inc()
        agreed = sum(row.label == row.active_label for row in rows)
        self._metrics.shadow_agreements.labels(model_version=version).inc(agreed)
        self._metrics.shadow_posts.labels(outcome="scored").inc(len(rows))
