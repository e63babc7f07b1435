"""Prometheus series per watched entity, with a bounded label: only entities marked
``metrics: true``, at most ``SENTIMENT_WATCH_METRICS_MAX`` of them (the first by name)."""

from __future__ import annotations

from collections import Counter

import structlog

from observability.metrics import PipelineMetrics
from stream_core.contract import LABELS
from stream_core.events import CommittedBatch
from watchlist.matcher import Matcher

log = structlog.get_logger(__name__)


class MetricEntities:
    """The entities that get series; :meth:`update` on every watchlist change."""

    def __init__(self, metrics: PipelineMetrics, limit: int) -> None:
        self._metrics = metrics
        self._limit = limit
        self.names: frozenset[str] = frozenset()

    def __call__(self) -> frozenset[str]:
        return self.names

    def update(self, matcher: Matcher) -> None:
        wanted = sorted(entity.name for entity in matcher.entities if entity.metrics)
        if len(wanted) > self._limit:
            log.warning(
                "more entities ask for metrics than SENTIMENT_WATCH_METRICS_MAX allows",
                asked=len(wanted),
                exported=self._limit,
                left_out=wanted[self._limit :][:10],
            )
        chosen = frozenset(wanted[: self._limit])
        for entity in self.names - chosen:  # series of entities no longer chosen go away
            for label in LABELS:
                try:
                    self._metrics.entity_posts.remove(entity, label)
                except KeyError:
                    continue
        self.names = chosen
        self._metrics.watchlist_entities.set(len(matcher.entities))


class EntityPostCounts:
    """A :class:`~stream_core.events.BatchObserver`: ``sentiment_entity_posts_total``."""

    def __init__(self, metrics: PipelineMetrics, chosen: MetricEntities) -> None:
        self._metrics = metrics
        self._chosen = chosen

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        names = self._chosen.names
        if not names:
            return
        counts = Counter(
            (entity, post.label)
            for post in batch.posts
            for entity in post.entities
            if entity in names and post.label is not None
        )
        for (entity, label), count in counts.items():
            self._metrics.entity_posts.labels(entity=entity, label=label).inc(count)
