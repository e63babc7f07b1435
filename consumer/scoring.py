"""The score step: each post of a batch is labelled by the model that reads its language (one
call per model), or left unscored when no model does (``consumer.routing``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from consumer.routing import Routes, RoutingSource
from observability.metrics import PipelineMetrics
from stream_core.batch import Batch
from stream_core.records import SCORED, UNSCORED, UNSUPPORTED_LANGUAGE, ScoredPost


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


@runtime_checkable
class SwappableScorer(Protocol):
    """A scorer whose model can change while the consumer runs (``registry.live.LiveScorer``):
    a batch takes :meth:`current` once, so one model scores all of it."""

    def current(self) -> BatchScorer: ...


class ScoreStep:
    """A :class:`~stream_core.batch.BatchStep`: fills each post's label, probabilities and the
    version of the model that scored it, or marks it unscored when no model reads its language;
    times the models (``sentiment_inference_seconds``).

    ``routing`` says which model reads which language, read once per batch; without it
    ``scorer`` scores every post.
    """

    def __init__(
        self,
        scorer: BatchScorer,
        metrics: PipelineMetrics,
        routing: RoutingSource | None = None,
    ) -> None:
        self._routing = routing or Routes.everything(scorer)
        self._metrics = metrics
        # The writer's order of the probabilities (``scorer``'s labels, as the sink was given).
        self._labels = tuple(scorer.labels)

    def process(self, batch: Batch) -> Batch:
        if not batch.posts:
            return batch  # only dead letters: the model need not run
        started = time.perf_counter()
        routes = self._routing.routes()
        posts = list(batch.posts)
        by_model: dict[int, tuple[BatchScorer, list[int]]] = {}
        for i, post in enumerate(posts):
            if (scorer := routes.scorer_for(post.lang)) is None:
                posts[i] = replace(post, status=UNSCORED, unscored_reason=UNSUPPORTED_LANGUAGE)
            else:
                by_model.setdefault(id(scorer), (scorer, []))[1].append(i)
        for scorer, indices in by_model.values():
            scored = _scored(scorer, [posts[i] for i in indices], self._labels)
            for i, post in zip(indices, scored, strict=True):
                posts[i] = post
        batch.posts = posts
        self._metrics.inference_seconds.observe(time.perf_counter() - started)
        return batch


def _scored(
    scorer: BatchScorer, posts: Sequence[ScoredPost], order: Sequence[str]
) -> list[ScoredPost]:
    """``posts`` labelled by ``scorer``, in one call, their probabilities in ``order``; a
    swappable scorer's current model is taken once, so the rows carry the version that really
    scored them (a registry version may name its outputs in another order)."""
    if isinstance(scorer, SwappableScorer):
        scorer = scorer.current()
    result = scorer.score([post.text for post in posts])
    labels, version = scorer.labels, scorer.version
    rows: list[list[float]] = result.probabilities.tolist()
    if tuple(labels) != tuple(order):
        columns = [labels.index(name) for name in order]
        rows = [[row[i] for i in columns] for row in rows]
    label_ids: list[int] = result.label_ids.tolist()
    return [
        replace(
            post,
            label=labels[label_id],
            probabilities=tuple(row),
            model_version=version,
            status=SCORED,
        )
        for post, row, label_id in zip(posts, rows, label_ids, strict=True)
    ]
