"""Everything the consumer process runs beside the pipeline: the HTTP API and batch observers.

The `consume` command calls :func:`start` once the scorer is loaded and before the pipeline
runs, hands ``runtime.observers`` to the pipeline, and calls ``runtime.close()`` on exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from consumer.events import BatchObserver, PipelineState
from observability.metrics import PipelineMetrics
from sentiment_stream.settings import Settings


@dataclass
class ObservabilityRuntime:
    """The running HTTP server and observers; ``close`` stops them."""

    observers: Sequence[BatchObserver] = field(default_factory=tuple)

    def close(self) -> None:
        """Stop the HTTP server and flush the observers."""


def start(
    settings: Settings,
    scorer: object,  # model.scorer.Scorer
    metrics: PipelineMetrics,
    state: PipelineState,
) -> ObservabilityRuntime:
    """Start the HTTP API on ``settings.http_port`` and build the batch observers."""
    del settings, scorer, metrics, state  # filled in by the Observability issue
    return ObservabilityRuntime()
