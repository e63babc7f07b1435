"""The live terminal dashboard of ``sentiment-stream demo`` (rich)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from demo.monitor import Monitor
from demo.scrape import MetricsSnapshot
from monitoring.settings import MonitoringSettings
from stream_core.contract import LABELS
from stream_core.windows import parse_window

STYLES = {"negative": "red", "neutral": "grey62", "positive": "green"}
BAR_WIDTH = 40
MIX_ROWS = 8  # keeps the whole dashboard within a 24-line terminal


@dataclass(frozen=True)
class Endpoints:
    docs_url: str
    metrics_url: str
    database_url: str  # password-free
    bootstrap_servers: str


DRIFT_THRESHOLD = MonitoringSettings.model_fields["drift_psi_threshold"].default


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.2f} s"


def _figures(monitor: Monitor) -> Table:
    sim, latest = monitor.sim, monitor.latest
    table = Table.grid(padding=(0, 3))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="bold")
    table.add_column(justify="right")
    share = latest.negative_share if latest else None
    rows = [
        ("messages sent", f"{sim.sent:,}", "scored", f"{latest.scored if latest else 0:,.0f}"),
        ("sent/s", f"{sim.rate_per_s:,.1f}", "scored/s", f"{monitor.posts_per_s():,.1f}"),
        (
            "latency p50",
            format_seconds(monitor.recent_latency(0.5)),
            "latency p99",
            format_seconds(monitor.recent_latency(0.99)),
        ),
        (
            "consumer lag",
            f"{latest.lag if latest else 0:,.0f}",
            "dead letters",
            f"{latest.dead_letters if latest else 0:,.0f}",
        ),
        (
            "negative share",
            "-" if share is None else f"{share:.0%}",
            "alert",
            "[bold red]FIRING[/]" if latest and latest.alert_active else "[green]quiet[/]",
        ),
    ]
    rows.append(_monitoring_row(latest))
    for row in rows:
        table.add_row(*row)
    return table


def _monitoring_row(latest: MetricsSnapshot | None) -> tuple[str, str, str, str]:
    """Online quality and drift over the shortest monitoring window measured so far."""
    quality = "waiting for labels"
    drift = "not measured yet"
    if latest and latest.quality:
        window = min(latest.quality, key=_span)
        recall, labelled = latest.quality[window]
        quality = f"{recall:.3f} ({labelled:,.0f} labels, {window})"
    if latest and latest.drift:
        window = min(latest.drift, key=_span)
        psi, feature = latest.drift[window]
        style = "bold red" if psi > DRIFT_THRESHOLD else "green"
        drift = f"[{style}]{psi:.2f}[/] {feature} ({window})"
    return ("online macro recall", quality, "drift, max PSI", drift)


def _span(window: str) -> float:
    try:
        return parse_window(window).total_seconds()
    except ValueError:
        return float("inf")


def _label_mix(monitor: Monitor) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", style="dim")
    table.add_column()
    table.add_column(justify="right")
    for window in list(monitor.mix)[-MIX_ROWS:]:
        total = sum(window.counts.values())
        bar = Text()
        negative = window.counts.get("negative", 0.0) / total if total else 0.0
        for label in LABELS:
            width = round(BAR_WIDTH * window.counts.get(label, 0.0) / total) if total else 0
            bar.append("█" * width, style=STYLES[label])
        table.add_row(f"{window.at_s:5.0f}s", bar, f"{negative:.0%} neg, {total:,.0f} posts")
    if not monitor.mix:
        table.add_row("", Text("waiting for scored posts...", style="dim"), "")
    legend = Text.assemble(*((f"█ {label}  ", STYLES[label]) for label in LABELS))
    table.add_row("", legend, "")
    return table


def _alerts(monitor: Monitor) -> RenderableType:
    if not monitor.alerts:
        return Text("none yet", style="dim")
    table = Table(box=None, padding=(0, 2))
    for name in ("detected", "about", "negative share", "baseline", "posts in window", "resolved"):
        table.add_column(name)
    for alert in monitor.alerts[-5:]:
        table.add_row(
            f"[bold red]{alert.detected_at:%H:%M:%S}[/]",
            alert.entity or "the stream",
            f"{alert.negative_share:.0%}",
            f"{alert.baseline_share:.0%}",
            f"{alert.volume:,}",
            f"{alert.resolved_at:%H:%M:%S}" if alert.resolved_at else "active",
        )
    return table


def _watchlist(monitor: Monitor) -> Text:
    """Posts naming each watched entity so far, and their negative share, on one line."""
    if not monitor.entity_counts:
        return Text("no post names a watched entity yet", style="dim")
    line = Text()
    for entity, counts in sorted(monitor.entity_counts.items()):
        total = sum(counts.values())
        share = counts.get("negative", 0) / total if total else 0.0
        line.append(entity, style="bold").append(f" {total:,} posts, ")
        line.append(f"{share:.0%} negative", style=STYLES["negative"] if share >= 0.5 else "")
        line.append("   ")
    return line


def _links(endpoints: Endpoints) -> Table:
    links = Table.grid(padding=(0, 1))
    links.add_column(style="bold")
    links.add_column(overflow="fold")  # a URL broken over lines beats one cut short
    links.add_row("API docs", endpoints.docs_url)
    links.add_row("metrics", endpoints.metrics_url)
    links.add_row("SQL", f"psql {endpoints.database_url.replace('+psycopg', '')}")
    links.add_row("Kafka", endpoints.bootstrap_servers)
    return links


def render(monitor: Monitor, endpoints: Endpoints, duration_s: float) -> RenderableType:
    elapsed = monitor.sim.elapsed_s
    progress = (
        f"{elapsed:,.0f}s / {duration_s:,.0f}s"
        if elapsed < duration_s
        else "traffic done, draining the consumer"
    )
    top = Table.grid(padding=(0, 3))
    top.add_row(_figures(monitor), _links(endpoints))
    return Group(
        Panel(top, title=f"sentiment-stream demo  {progress}  (Ctrl-C stops)", title_align="left"),
        Panel(_label_mix(monitor), title="label mix, 5 s windows", title_align="left"),
        Panel(_alerts(monitor), title="spike alerts", title_align="left"),
        Panel(_watchlist(monitor), title="watchlist: posts naming each entity", title_align="left"),
    )


@contextmanager
def live_dashboard(
    monitor: Monitor, endpoints: Endpoints, duration_s: float, console: Console
) -> Iterator[None]:
    with Live(
        get_renderable=lambda: render(monitor, endpoints, duration_s),
        console=console,
        refresh_per_second=2,
        screen=False,
    ):
        yield
