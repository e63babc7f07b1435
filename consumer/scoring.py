"""The score step: the model labels every post of a batch, in one call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from observability.metrics import PipelineMetrics
from stream_core.batch import Batch


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


class ScoreStep:
    """A :class:`~stream_core.batch.BatchStep`: fills each post's label, probabilities and the
    version of the model that scored it; times the model (``sentiment_inference_seconds``)."""

    def __init__(self, scorer: BatchScorer, metrics: PipelineMetrics) -> None:
        self._scorer = scorer
        self._metrics = metrics

    def process(self, batch: Batch) -> Batch:
        if not batch.posts:
            return batch  # only dead letters: the model need not run
        started = time.perf_counter()
        result = self._scorer.score([post.text for post in batch.posts])
        labels, version = self._scorer.labels, self._scorer.version
        rows: list[list[float]] = result.probabilities.tolist()
        label_ids: list[int] = result.label_ids.tolist()
        batch.posts = [
            replace(post, label=labels[label_id], probabilities=tuple(row), model_version=version)
            for post, row, label_id in zip(batch.posts, rows, label_ids, strict=True)
        ]
        self._metrics.inference_seconds.observe(time.perf_counter() - started)
        return batch
