"""The simulator's scenarios through the real stream (broker, consumer with the shipped default
model, PostgreSQL) and the monitoring jobs: a plain replay with true late labels raises
neither condition; shuffled labels raise the quality condition; the drift scenario raises PSI
above the threshold. (The Prometheus rules that turn these gauges into alerts are
promtool-tested in deploy/prometheus/rules_test.yml.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from prometheus_client import start_http_server

from embedded.process import free_port
from model.data import read_splits
from model.profile import FEATURES
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from monitoring.jobs import MonitoringJobs, served_model
from monitoring.settings import MonitoringSettings
from observability.metrics import PipelineMetrics
from producer_sim.simulator import Simulator, SimulatorConfig
from storage.urls import libpq_url
from tests.fixtures import pipeline as support
from tests.fixtures.prometheus import instant_query, prometheus_scraping
from tests.fixtures.services import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POSTS = 600
RULES = ROOT / "deploy" / "prometheus" / "rules" / "monitoring.yml"
SCENARIOS: dict[str, dict[str, Any]] = {
    "plain": {},
    "shuffled labels": {"feedback_shuffle": True},
    "drift": {"drift_at_s": 0.0},
}


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer.load(DEFAULT_MODEL_DIR)


def labelled(database_url: str) -> int:
    rows = support.query(
        database_url, "SELECT count(*) FROM scored_posts WHERE gold_label_at IS NOT NULL"
    )
    return int(rows[0][0])


def gauge(metrics: PipelineMetrics, name: str, **labels: str) -> float | None:
    value = metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_raises_its_condition_and_no_other(
    scenario: str,
    kafka_bootstrap: str,
    database_url: str,
    topic: str,
    sample_dir: Path,
    scorer: Scorer,
    tmp_path: Path,
) -> None:
    support.migrated(database_url)
    settings = support.settings_for(kafka_bootstrap, database_url, topic, batch_size=128)
    options: dict[str, Any] = SCENARIOS[scenario]
    config = SimulatorConfig(
        topic=topic,
        tweets=read_splits(sample_dir, ["val"])[:POSTS],
        rate_per_s=0,
        seed=11,
        partitions=2,
        labels_topic=settings.labels_topic,
        feedback_rate=0.5,
        feedback_delay_s=0.5,
        **options,
    )
    summary = Simulator(config, {"bootstrap.servers": kafka_bootstrap}).run()
    assert summary.posts == POSTS and summary.failed == 0
    assert summary.feedback_labels > 200
    with support.running_pipeline(settings, scorer) as running:
        support.wait_until(lambda: support.row_count(database_url) == POSTS, 180, "every post")
        support.wait_until(
            lambda: labelled(database_url) == summary.feedback_labels, 60, "every label"
        )
    assert not running.errors

    monitoring = MonitoringSettings.model_validate({"monitor_windows": "15m"})
    metrics = PipelineMetrics()
    offline = scorer.metadata.metrics
    jobs = MonitoringJobs(
        monitoring,
        served_model(scorer.version, scorer.labels, DEFAULT_MODEL_DIR, offline),
        metrics.monitoring,
    )
    jobs.elected()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        jobs.run_quality(conn)
        jobs.run_drift(conn)
    window = {"model_version": scorer.version, "window": "15m"}
    recall = gauge(metrics, "sentiment_quality_macro_recall", **window)
    count = gauge(metrics, "sentiment_quality_labelled_posts", **window)
    reference = gauge(
        metrics, "sentiment_quality_reference_macro_recall", model_version=scorer.version
    )
    assert recall is not None and count is not None and reference is not None
    # OnlineQualityBelowReference's condition (deploy/prometheus/rules/monitoring.yml).
    quality_low = (
        recall < reference - monitoring.quality_alert_margin
        and count >= monitoring.quality_alert_min_labelled
    )
    psis = {
        feature: gauge(metrics, "sentiment_drift_psi", feature=feature, window="15m")
        for feature in offline_features()
    }
    assert all(v is not None for v in psis.values())
    drifting = sorted(f for f, v in psis.items() if v is not None and v > 0.2)
    print(scenario, f"recall {recall:.3f} over {count:.0f}", "PSI", psis)
    if scenario != "drift":  # drifted posts may well be scored worse: no claim either way
        assert quality_low == (scenario == "shuffled labels"), (recall, reference, count)
    if scenario == "drift":
        assert {"has_emoji", "uppercase_share", "text_length"} <= set(drifting)
    else:
        assert drifting == []

    # The same gauges scraped by a real Prometheus, judged by the rules' own expressions.
    firing = firing_conditions(metrics, tmp_path)
    assert ("InputDrift" in firing) == (scenario == "drift"), firing
    if scenario != "drift":
        assert ("OnlineQualityBelowReference" in firing) == (scenario == "shuffled labels")
    assert "MonitoringJobsStale" not in firing


def firing_conditions(metrics: PipelineMetrics, workdir: Path) -> set[str]:
    """The alerts of rules/monitoring.yml whose expression holds in a real Prometheus that
    scrapes ``metrics`` (their `for:` aside)."""
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    try:
        with prometheus_scraping(f"127.0.0.1:{port}", workdir) as base:
            support.wait_until(
                lambda: bool(instant_query(base, "sentiment_drift_psi_threshold")), 60, "a scrape"
            )
            return {rule["alert"] for rule in rules if instant_query(base, rule["expr"])}
    finally:
        server.shutdown()
        thread.join(5)


def offline_features() -> list[str]:
    return list(FEATURES)
