"""A real Prometheus server scrapes the consumer's HTTP API and PromQL sees the exact counts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from consumer.settings import Settings
from embedded.process import free_port
from observability import runtime
from observability.metrics import PipelineMetrics
from observability.runtime import ObservabilityRuntime
from stream_core.contract import LABELS
from stream_core.events import PipelineState
from tests.fixtures.fakes import FakeScorer, committed
from tests.fixtures.prometheus import (
    instant_query,
    prometheus_scraping,
    rise,
    scrape,
    wait_for_labelled_values,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ObservabilityRuntime, PipelineMetrics]]:
    settings = Settings(http_host="127.0.0.1", http_port=free_port(), _env_file=None)  # type: ignore[call-arg]
    metrics = PipelineMetrics()
    served = runtime.start(settings, FakeScorer(), metrics, PipelineState(model_loaded=True))
    yield served, metrics
    served.close()


def record_committed(
    served: ObservabilityRuntime, metrics: PipelineMetrics, labels: list[str]
) -> None:
    """What the pipeline does after a commit: count, then tell the observers."""
    batch = committed(labels)
    for post in batch.posts:
        metrics.predictions.labels(label=post.label).inc()
    metrics.messages_consumed.labels(topic="posts").inc(len(batch.posts))
    for observer in served.observers:
        observer.on_batch_committed(batch)


def test_runtime_serves_the_api_on_its_port(
    served: tuple[ObservabilityRuntime, PipelineMetrics],
) -> None:
    api, _ = served
    assert api.http is not None
    assert api.http_port == api.http.port
    assert httpx.get(f"{api.http.url}/health", timeout=5).json() == {"status": "ok"}
    ready = httpx.get(f"{api.http.url}/ready", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["missing"] == ["database", "partitions_assigned"]
    before = scrape(api.http.url)
    assert before[("sentiment_model_info", (("labels", ",".join(LABELS)), ("version", "fake-1")))]
    assert before[("sentiment_alert_active", ())] == 0
    for scope in ("entity", "stream"):
        assert (
            before[("sentiment_alerts_total", (("kind", "negative_spike"), ("scope", scope)))] == 0
        )
    # No database here: no replica holds the detector role, so no reading either.
    assert before[("sentiment_detector_leader", ())] == 0
    assert math.isnan(before[("sentiment_negative_share", ())])


def test_no_server_when_the_port_is_zero() -> None:
    settings = Settings(http_port=0, _env_file=None)  # type: ignore[call-arg]
    api = runtime.start(settings, FakeScorer(), PipelineMetrics(), PipelineState())
    try:
        assert api.http is None
        assert api.http_port is None
        assert len(api.observers) == 3  # label mix, entity counts, language mix
    finally:
        api.close()


def test_a_taken_port_is_a_clear_error(
    served: tuple[ObservabilityRuntime, PipelineMetrics],
) -> None:
    import click

    api, _ = served
    assert api.http_port is not None
    settings = Settings(http_host="127.0.0.1", http_port=api.http_port, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(click.ClickException, match="is the port in use"):
        runtime.start(settings, FakeScorer(), PipelineMetrics(), PipelineState())


def test_metrics_rise_by_exactly_the_posts_committed(
    served: tuple[ObservabilityRuntime, PipelineMetrics],
) -> None:
    api, metrics = served
    assert api.http is not None
    before = scrape(api.http.url)
    labels = ["negative"] * 7 + ["neutral"] * 11 + ["positive"] * 5
    record_committed(api, metrics, labels)
    after = scrape(api.http.url)

    assert rise(before, after, "sentiment_predictions_total", label="negative") == 7
    assert rise(before, after, "sentiment_predictions_total", label="neutral") == 11
    assert rise(before, after, "sentiment_predictions_total", label="positive") == 5
    assert rise(before, after, "sentiment_messages_consumed_total", topic="posts") == 23
    stats = httpx.get(f"{api.http.url}/stats", timeout=10).json()
    assert stats["online"]["total"] == 23


def test_real_prometheus_scrapes_the_consumer(
    served: tuple[ObservabilityRuntime, PipelineMetrics], tmp_path: Path
) -> None:
    api, metrics = served
    assert api.http is not None
    with prometheus_scraping(f"127.0.0.1:{api.http.port}", tmp_path) as base:
        record_committed(api, metrics, ["negative"] * 4 + ["positive"] * 9)
        wait_for_labelled_values(
            base,
            'sum by (label) (sentiment_predictions_total{job="sentiment-stream"})',
            "label",
            {"negative": 4.0, "positive": 9.0},
        )
        up = instant_query(base, 'up{job="sentiment-stream"}')
        assert [float(r["value"][1]) for r in up] == [1.0]
