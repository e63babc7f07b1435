"""The model stage: a batch of validated posts -> ScoredPosts (the scorer runs here only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from consumer.batching import Batch, ScoredBatch
from stream_core.contract import GOLD_LABEL_HEADER
from stream_core.events import ScoredPost


class ScoreResult(Protocol):
    """What ``model.scorer.ScoreBatch`` offers: one row of probabilities per text."""

    @property
    def probabilities(self) -> Any: ...  # float32 ndarray, shape (n, n_labels)

    @property
    def label_ids(self) -> Any: ...  # int64 ndarray, shape (n,)


class BatchScorer(Protocol):
    """What the pipeline needs of ``model.scorer.Scorer``."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def version(self) -> str: ...

    def score(self, texts: Sequence[str]) -> ScoreResult: ...


def _from_epoch_ms(timestamp_ms: int | None) -> datetime | None:
    return None if timestamp_ms is None else datetime.fromtimestamp(timestamp_ms / 1000, UTC)


def score_batch(scorer: BatchScorer, batch: Batch) -> ScoredBatch:
    """Score every accepted post of ``batch`` in one call to the model."""
    if not batch.accepted:
        return ScoredBatch(batch=batch, posts=[])
    result = scorer.score([post.text for _, post in batch.accepted])
    labels = scorer.labels
    rows: list[list[float]] = result.probabilities.tolist()
    label_ids: list[int] = result.label_ids.tolist()
    posts = []
    for (record, post), probabilities, label_id in zip(
        batch.accepted, rows, label_ids, strict=True
    ):
        gold = record.header(GOLD_LABEL_HEADER)
        posts.append(
            ScoredPost(
                post_id=post.post_id,
                text=post.text,
                author=post.author,
                lang=post.lang,
                created_at=post.created_at,
                label=labels[label_id],
                probabilities=tuple(probabilities),
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                kafka_timestamp=_from_epoch_ms(record.timestamp_ms),
                gold_label=gold.decode("utf-8", "replace") if gold is not None else None,
                extra=post.extra,
            )
        )
    return ScoredBatch(batch=batch, posts=posts)
