"""The real `consume` process: its metrics rise by exactly the posts it stores, a real Prometheus
scrapes it, and its API answers with the stream's model and the rows in PostgreSQL."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from embedded.process import ChildProcess, free_port
from tests.fixtures.pipeline import create_topic, migrated, produce, row_count, wait_until
from tests.fixtures.prometheus import prometheus_scraping, rise, scrape, wait_for_labelled_values
from tests.fixtures.services import CLI, cli_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POSTS = 60
PARTITIONS = 2


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_consumer_metrics_api_and_prometheus(
    kafka_bootstrap: str,
    database_url: str,
    topic: str,
    tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    migrated(database_url)
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    consumer = ChildProcess(
        [*CLI, "consume", "--log-format", "console"],
        tmp_path / "consume.log",
        env=cli_env(
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            KAFKA_SESSION_TIMEOUT_MS="3000",
            KAFKA_HEARTBEAT_INTERVAL_MS="500",
            DATABASE_URL=database_url,
            SENTIMENT_TOPIC=topic,
            SENTIMENT_GROUP_ID=f"group-{topic}",
            SENTIMENT_MODEL=str(tiny_model_dir),
            SENTIMENT_HTTP_HOST="127.0.0.1",
            SENTIMENT_HTTP_PORT=str(port),
            SENTIMENT_BATCH_WAIT_MS="50",
        ),
    )
    try:
        wait_until(lambda: ready(url), 120, f"/ready; log:\n{consumer.log_tail()}")
        before = scrape(url)
        with prometheus_scraping(f"127.0.0.1:{port}", tmp_path) as prometheus:
            now = datetime.now(UTC).isoformat()
            values = [
                json.dumps({"id": f"p{i}", "text": f"post number {i}", "created_at": now}).encode()
                for i in range(POSTS)
            ]
            produce(kafka_bootstrap, topic, values, partitions=PARTITIONS)
            wait_until(lambda: row_count(database_url) == POSTS, 120, "rows in scored_posts")

            def scored() -> float:
                after = scrape(url)
                return sum(
                    rise(before, after, "sentiment_predictions_total", label=label)
                    for label in ("negative", "neutral", "positive")
                )

            wait_until(lambda: scored() == POSTS, 30, "sentiment_predictions_total")
            after = scrape(url)
            assert rise(before, after, "sentiment_messages_consumed_total", topic=topic) == POSTS
            assert rise(before, after, "sentiment_rows_written_total") == POSTS
            assert rise(before, after, "sentiment_end_to_end_latency_seconds_count",
                        source="kafka") == POSTS  # fmt: skip
            per_label = {  # the labels the model predicted at least once
                dict(labels)["label"]: value
                for (name, labels), value in after.items()
                if name == "sentiment_predictions_total"
            }
            wait_for_labelled_values(
                prometheus,
                'sum by (label) (sentiment_predictions_total{job="sentiment-stream"})',
                "label",
                per_label,
            )

            stats = httpx.get(f"{url}/stats", params={"window": "1h"}, timeout=10).json()
            assert stats["online"]["total"] == POSTS
            assert {k: v for k, v in stats["online"]["counts"].items() if v} == per_label
            assert stats["window"]["total"] == POSTS
            assert stats["window"]["counts"] == stats["online"]["counts"]

            prediction = httpx.post(f"{url}/predict", json={"text": "post number 3"}, timeout=10)
            assert prediction.status_code == 200
            body = prediction.json()
            assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-5)
            model = httpx.get(f"{url}/model", timeout=5).json()
            assert body["model_version"] == model["version"] == stats["model_version"]
    finally:
        consumer.stop(signal.SIGTERM, timeout_s=30)
    assert consumer.process.returncode == 0, consumer.log_tail(40)
