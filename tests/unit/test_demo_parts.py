"""The demo's parts that need no running system: metrics parsing, quantiles, chart, schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import generate_latest
from rich.console import Console

from demo.chart import write_chart
from demo.cli import _watchlist_rows
from demo.dashboard import Endpoints, render
from demo.database import Alert, DemoDatabase
from demo.monitor import Monitor
from demo.run import SHORTEST_ALERTING_DURATION_S, demo_spike, shortest_alerting_duration
from demo.scrape import MetricsSnapshot, bucket_delta, parse, quantile
from demo.watchlist import DEMO_WATCHLIST, SPIKE_ENTITY, watchlist_figures
from observability.metrics import PipelineMetrics
from producer_sim.posts import EntityMentions
from producer_sim.simulator import ProgressSnapshot, Simulator
from watchlist.matcher import Matcher

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_parse_reads_the_consumers_own_metrics() -> None:
    metrics = PipelineMetrics()
    metrics.predictions.labels(label="negative").inc(3)
    metrics.predictions.labels(label="positive").inc(5)
    metrics.rows_written.inc(8)
    metrics.dead_letters.labels(reason="invalid_json").inc(2)
    metrics.dead_letters.labels(reason="empty_text").inc(1)
    metrics.consumer_lag.labels(topic="posts", partition="0").set(4)
    metrics.consumer_lag.labels(topic="posts", partition="1").set(6)
    metrics.alert_active.set(1)
    for seconds in (0.02, 0.04, 0.2, 0.3, 3.0):
        metrics.end_to_end_latency.labels(source="created_at").observe(seconds)

    snapshot = parse(generate_latest(metrics.registry).decode(), taken_at=1.0)

    assert snapshot.predictions == {"negative": 3, "neutral": 0, "positive": 5}
    assert snapshot.scored == 8
    assert snapshot.rows_written == 8
    assert snapshot.dead_letters == 3
    assert snapshot.lag == 10
    assert snapshot.alert_active
    assert snapshot.latency_buckets[float("inf")] == 5
    median = quantile(0.5, snapshot.latency_buckets)
    assert median is not None
    assert 0.1 < median <= 0.25  # the third of five observations lies in (0.1, 0.25]


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 0.0, 0.2: 10.0, 0.4: 20.0, float("inf"): 20.0}
    assert quantile(0.5, buckets) == pytest.approx(0.2)
    assert quantile(0.75, buckets) == pytest.approx(0.3)
    assert quantile(0.5, {float("inf"): 0.0}) is None
    assert quantile(0.99, {1.0: 0.0, float("inf"): 4.0}) == 1.0  # open top bucket: lower edge


def test_bucket_delta_is_what_happened_between_scrapes() -> None:
    inf = float("inf")
    old = MetricsSnapshot(taken_at=0.0, latency_buckets={1.0: 2.0, inf: 3.0})
    new = MetricsSnapshot(taken_at=1.0, latency_buckets={1.0: 5.0, inf: 7.0})
    assert bucket_delta(new, old) == {1.0: 3.0, inf: 4.0}


def test_chart_is_a_png(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    fine = {
        start + timedelta(seconds=10 * i): {"negative": 2 + 8 * (4 <= i < 7), "neutral": 5}
        for i in range(12)
    }
    minutes = {start: {"negative": 30, "neutral": 40, "positive": 20}}
    alert = Alert(
        start + timedelta(seconds=55),
        start + timedelta(seconds=80),
        start + timedelta(seconds=45),
        start + timedelta(seconds=55),
        0.7,
        0.2,
        0.75,
        120,
    )
    path = write_chart(tmp_path / "out" / "chart.png", fine, 10, minutes, [alert])
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000


def test_chart_of_an_empty_run_still_renders(tmp_path: Path) -> None:
    data = write_chart(tmp_path / "empty.png", {}, 10, {}, []).read_bytes()
    assert data.startswith(PNG_MAGIC)


def test_the_spike_sits_inside_the_run_with_quiet_time_around() -> None:
    spike = demo_spike(100.0)
    assert spike.at_s == 40.0
    assert spike.at_s + spike.duration_s == pytest.approx(70.0)
    assert spike.negative_share > 0.5


def test_the_spike_is_about_a_watched_entity_whose_rules_find_every_mention() -> None:
    spike = demo_spike(100.0)
    assert spike.entity == SPIKE_ENTITY
    assert spike.entity_share * (spike.negative_share - 0.16) < 0.2  # the stream's share: calm
    matcher = Matcher(DEMO_WATCHLIST)
    for form in EntityMentions.FORMS:
        text = form.format(text="delivery was late again", name=SPIKE_ENTITY)
        assert matcher.entities_in(text) == (SPIKE_ENTITY,)
    assert matcher.entities_in("my new iPhone and an Amazon parcel") == ("amazon", "apple")


def _alert(at: datetime, entity: str | None) -> Alert:
    return Alert(at, None, at - timedelta(seconds=10), at, 0.7, 0.15, 0.8, 60, entity)


def test_the_entity_alert_delay_counts_from_the_spike_start_to_its_first_alert() -> None:
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    alerts = [
        _alert(start - timedelta(seconds=30), SPIKE_ENTITY),  # before the spike: not its alert
        _alert(start + timedelta(seconds=3), None),  # the stream's
        _alert(start + timedelta(seconds=4), "apple"),
        _alert(start + timedelta(seconds=6.25), SPIKE_ENTITY),
    ]
    figures = watchlist_figures({SPIKE_ENTITY: {"negative": 5, "neutral": 2}}, alerts, start)
    assert figures["entity_alert_delay_s"] == 6.2  # round half to even: 6.25 -> 6.2
    assert figures["entities"] == {
        SPIKE_ENTITY: {"negative": 5, "neutral": 2},
        "apple": {},
        "amazon": {},
    }
    assert _watchlist_rows(figures) == [
        ("watched: acme", "7 posts, 71% negative"),
        ("watched: apple", "0 posts, 0% negative"),
        ("watched: amazon", "0 posts, 0% negative"),
        ("acme alert", "6.2 s after its spike began"),
    ]
    assert watchlist_figures({}, alerts[:3], start)["entity_alert_delay_s"] is None
    assert watchlist_figures({}, alerts, None)["entity_alert_delay_s"] is None


class _Sending:
    """The simulator as the dashboard sees it: its progress."""

    def snapshot(self) -> ProgressSnapshot:
        return ProgressSnapshot(100, 100, 0, 4.0, None, 120.0, 25.0)


def test_the_dashboard_shows_the_watchlist_and_what_each_alert_is_about() -> None:
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    monitor = Monitor(
        "http://127.0.0.1:1/metrics", cast(DemoDatabase, None), cast(Simulator, _Sending())
    )
    monitor.alerts = [_alert(start, SPIKE_ENTITY), _alert(start, None)]
    monitor.entity_counts = {
        SPIKE_ENTITY: {"negative": 30, "neutral": 10},
        "apple": {"positive": 4},
    }
    endpoints = Endpoints("http://x/docs", "http://x/metrics", "postgresql://x", "127.0.0.1:1")
    console = Console(record=True, width=120)
    console.print(render(monitor, endpoints, 120.0))
    shown = console.export_text()
    assert "watchlist" in shown
    assert "acme 40 posts, 75% negative" in shown
    assert "apple 4 posts, 0% negative" in shown
    assert "the stream" in shown


def test_runs_too_short_or_too_slow_for_an_alert_are_known() -> None:
    assert shortest_alerting_duration(25.0, 200) == SHORTEST_ALERTING_DURATION_S
    assert shortest_alerting_duration(0.0, 200) == SHORTEST_ALERTING_DURATION_S  # unpaced
    # At 5 posts/s the 200-post baseline fills only after 40 s: the spike must start later.
    assert shortest_alerting_duration(5.0, 200) == pytest.approx(100.0)


def test_parse_and_show_online_quality_and_drift() -> None:
    from rich.console import Console

    from demo.dashboard import _monitoring_row

    metrics = PipelineMetrics()
    monitoring = metrics.monitoring
    monitoring.quality_macro_recall.labels("v1", "1h").set(0.7)
    monitoring.quality_macro_recall.labels("v1", "15m").set(0.66)
    monitoring.quality_labelled_posts.labels("v1", "15m").set(210)
    monitoring.drift_psi.labels("has_emoji", "15m").set(0.9)
    monitoring.drift_psi.labels("label", "15m").set(0.01)
    snapshot = parse(generate_latest(metrics.registry).decode(), taken_at=1.0)
    assert snapshot.quality == {"1h": (0.7, 0.0), "15m": (0.66, 210.0)}
    assert snapshot.drift == {"15m": (0.9, "has_emoji")}
    console = Console(width=200, record=True)
    console.print(*_monitoring_row(snapshot))
    shown = console.export_text()
    assert "0.660 (210 labels, 15m)" in shown
    assert "0.90 has_emoji (15m)" in shown
    assert _monitoring_row(None)[1] == "waiting for labels"
