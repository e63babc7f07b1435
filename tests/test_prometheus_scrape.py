"""A real Prometheus server scrapes the consumer's HTTP API and PromQL sees the exact counts."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from consumer.events import PipelineState
from embedded.process import ChildProcess, free_port, wait_for_port
from observability import runtime
from observability.metrics import PipelineMetrics
from observability.runtime import ObservabilityRuntime
from sentiment_stream.contract import LABELS
from sentiment_stream.settings import Settings
from tests.observability_fakes import FakeScorer, committed

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ObservabilityRuntime, PipelineMetrics]]:
    settings = Settings(http_host="127.0.0.1", http_port=free_port(), _env_file=None)  # type: ignore[call-arg]
    metrics = PipelineMetrics()
    served = runtime.start(settings, FakeScorer(), metrics, PipelineState(model_loaded=True))
    yield served, metrics
    served.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


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
    assert before[("sentiment_alerts_total", (("kind", "negative_spike"),))] == 0


def test_no_server_when_the_port_is_zero() -> None:
    settings = Settings(http_port=0, _env_file=None)  # type: ignore[call-arg]
    api = runtime.start(settings, FakeScorer(), PipelineMetrics(), PipelineState())
    try:
        assert api.http is None
        assert api.http_port is None
        assert len(api.observers) == 2
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

    def rise(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert rise("sentiment_predictions_total", label="negative") == 7
    assert rise("sentiment_predictions_total", label="neutral") == 11
    assert rise("sentiment_predictions_total", label="positive") == 5
    assert rise("sentiment_messages_consumed_total", topic="posts") == 23
    stats = httpx.get(f"{api.http.url}/stats", timeout=10).json()
    assert stats["online"]["total"] == 23
    assert after[("sentiment_negative_share", ())] == pytest.approx(7 / 23)


def prometheus_query(base: str, query: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_real_prometheus_scrapes_the_consumer(
    served: tuple[ObservabilityRuntime, PipelineMetrics], tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "prometheus is not installed (Debian package `prometheus`; .ci/run installs it)"
        )
    api, metrics = served
    assert api.http is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "sentiment-stream",
                        "static_configs": [{"targets": [f"127.0.0.1:{api.http.port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    server = ChildProcess(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        wait_for_port("127.0.0.1", port, 60, server.process)
        base = f"http://127.0.0.1:{port}"
        record_committed(api, metrics, ["negative"] * 4 + ["positive"] * 9)
        query = 'sum by (label) (sentiment_predictions_total{job="sentiment-stream"})'
        expected = {"negative": 4.0, "positive": 9.0}
        deadline = time.monotonic() + 60
        got: dict[str, float] = {}
        while got != expected and time.monotonic() < deadline:
            time.sleep(0.5)
            got = {
                r["metric"]["label"]: float(r["value"][1]) for r in prometheus_query(base, query)
            }
        assert got == expected, server.log_tail()
        up = prometheus_query(base, 'up{job="sentiment-stream"}')
        assert [float(r["value"][1]) for r in up] == [1.0]
    finally:
        server.stop()
