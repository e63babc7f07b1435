"""deploy/prometheus and deploy/grafana: promtool accepts them, every PromQL expression names
only metrics the service exports (their SQL runs against the schema in
tests/integration/test_dashboard_sql.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from typing import Any

import pytest
import yaml

from storage.rollups import FINEST_FOR
from tests.fixtures.monitoring import (
    DASHBOARDS,
    PROMETHEUS_OWN,
    dashboard_targets,
    dashboard_variables,
    exported_names,
    metric_names,
)
from tests.fixtures.services import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
GRAFANA = ROOT / "deploy" / "grafana"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    assert RULES
    result = promtool("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    result = promtool("test", "rules", str(PROMETHEUS / "rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- PromQL names -------------------------------------------------------------------------------


def test_metric_name_parser() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, source) (rate(a_seconds_bucket{source="x"}[5m])))'
        " / on () group_left sum without (topic) (b_total offset 5m) > bool 0.5 and c:rec:rate5m"
        ' or label_replace(up, "dst", "$1", "src", "(.*)") unless d[10m:1m]'
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c:rec:rate5m", "up", "d"}


def rule_groups() -> list[dict[str, Any]]:
    return [group for path in RULES for group in yaml.safe_load(path.read_text())["groups"]]


def recorded_names() -> set[str]:
    return {
        rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule
    }


def test_rules_name_only_exported_or_recorded_metrics() -> None:
    known = exported_names() | recorded_names() | PROMETHEUS_OWN
    for group in rule_groups():
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names, rule
            assert names <= known, (rule.get("alert") or rule.get("record"), names - known)


def grafana_promql(expr: str) -> str:
    return re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)


def test_dashboard_promql_names_only_exported_metrics() -> None:
    exported = exported_names()
    targets = dashboard_targets("prometheus")
    assert len(targets) >= 15
    for target in targets:
        names = metric_names(grafana_promql(target["expr"]))
        assert names, target["expr"]
        assert names <= exported, (target["expr"], names - exported)


def test_dashboard_covers_the_issue() -> None:
    exprs = " ".join(t["expr"] for t in dashboard_targets("prometheus"))
    for needle in (
        "sentiment_messages_consumed_total",  # throughput
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "sentiment_end_to_end_latency_seconds_bucket",
        "sum by (label) (rate(sentiment_predictions_total",  # label mix from Prometheus
        "sentiment_consumer_lag_messages",
        "sentiment_dead_letters_total",
        "sentiment_alert_active",
        "sentiment_quality_macro_recall",  # model monitoring (docs/monitoring.md)
        "sentiment_quality_reference_macro_recall",
        "sentiment_drift_psi",
        "sentiment_monitoring_last_run_timestamp_seconds",
    ):
        assert needle in exprs, needle
    queries = " ".join(t["rawSql"] for t in dashboard_targets("grafana-postgresql-datasource"))
    assert "FROM sentiment_minute_counts" in queries  # label mix from Postgres aggregates
    assert "FROM sentiment_alerts" in queries
    # Watched entities: a variable to pick one, its label mix, and the bounded Prometheus series.
    assert [v["name"] for v in dashboard_variables("grafana-postgresql-datasource")] == ["entity"]
    assert "FROM sentiment_entity_minute_counts\n  WHERE entity = '$entity'" in queries
    assert "sentiment_entity_negative_share" in exprs
    assert "FROM drift_reports" in queries
    assert "gold_label_at" in queries


# --- Grafana SQL against the real schema --------------------------------------------------------


def test_dashboard_picks_the_resolution_storage_does() -> None:
    """The ranges in the dashboard's SQL are storage.rollups.FINEST_FOR."""
    for target in dashboard_targets("grafana-postgresql-datasource"):
        if "minute_counts" not in target["rawSql"]:  # the stream's, and the entities'
            continue
        limits = re.findall(r"<= interval '(\d+) days?'", target["rawSql"])
        assert [timedelta(days=int(days)) for days in limits] == [
            longest for longest, _ in FINEST_FOR
        ]


# --- Grafana provisioning ----------------------------------------------------------------------


def test_provisioning_names_the_datasources_the_dashboard_uses() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "sentiment-stream.yml").read_text()
    )["datasources"]
    by_uid = {d["uid"]: d["type"] for d in provisioned}
    used = {
        (t["datasource"]["uid"], t["datasource"]["type"])
        for kind in ("prometheus", "grafana-postgresql-datasource")
        for t in dashboard_targets(kind)
    }
    assert used == set(by_uid.items())
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "sentiment-stream.yml").read_text()
    )["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"]
        assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
