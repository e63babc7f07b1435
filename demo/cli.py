"""`sentiment-stream demo` and `sentiment-stream stack up`."""

from __future__ import annotations

import json
import math
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from consumer.settings import Settings
from demo.consumer_process import ConsumerProcess
from demo.dashboard import Endpoints, format_seconds, live_dashboard
from demo.monitor import Monitor
from demo.run import (
    SHORTEST_ALERTING_DURATION_S,
    DashboardFactory,
    DemoOptions,
    DemoResult,
    DemoRun,
    shortest_alerting_duration,
)
from demo.services import Services, running_services
from producer_sim.cli import RATE, data_options, load_tweets, poison_rate_option, seed_option
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.shutdown import stop_on_signals

SERVICE_SETTINGS = ("bootstrap_servers", "kafka_options", "database_url", "log_level", "log_format")


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Failures a user can cause (ports, binaries, a consumer that cannot start) as messages."""
    try:
        yield
    except (RuntimeError, TimeoutError, KafkaException, OSError) as error:
        raise click.ClickException(str(error)) from None


def _check_model(settings: Settings) -> None:
    """A named model that is not built fails here, with the command that builds it, rather
    than in the consumer after the services have started."""
    from model.catalogue import ModelNotBuiltError, resolve

    try:
        resolve(settings.model, settings.models_dir)
    except ModelNotBuiltError as error:
        raise click.ClickException(str(error)) from None


@click.command()
@settings_options(Settings, *SERVICE_SETTINGS, "topic", "model", "models_dir")
@data_options
@click.option(
    "--duration",
    type=click.FloatRange(min=20),
    default=120.0,
    show_default=True,
    help="Seconds of simulated traffic (a negative spike runs from 40% to 70%; "
    f"below {SHORTEST_ALERTING_DURATION_S:.0f} s the run may end before an alert fires).",
)
@click.option("--rate", type=RATE, default=25.0, show_default=True, help="Posts per second.")
@poison_rate_option(0.01)
@seed_option
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PNG chart [default: ./sentiment-demo-<time>.png].",
)
@click.option(
    "--promote-at",
    type=click.FloatRange(min=0),
    help="Seconds into the stream at which a second version of the model is registered and"
    " promoted live (docs/models.md); the summary shows the rows each version scored.",
)
@click.option("--headless", is_flag=True, help="No dashboard; print a JSON summary at the end.")
@click.option("--keep-data", is_flag=True, help="Keep the database files and the consumer log.")
def demo(**kwargs: Any) -> None:
    """Run the whole product on an embedded broker and PostgreSQL.

    Starts a Kafka-compatible broker and PostgreSQL on free loopback ports (unless
    KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL name real ones), the consumer with its HTTP API, and
    the simulator replaying TweetEval with a negative spike part-way through. Everything it
    started is stopped on exit or Ctrl-C.
    """
    settings = load_settings(Settings, kwargs)
    headless = kwargs["headless"]
    # The dashboard owns the terminal: only warnings, and readable ones, go to stderr.
    configure_logging(
        settings.log_level if headless else "WARNING",
        settings.log_format if headless else "console",
    )
    _check_model(settings)
    tweets = load_tweets(kwargs)
    chart = kwargs["chart_path"] or Path(f"sentiment-demo-{datetime.now():%Y%m%d-%H%M%S}.png")
    options = DemoOptions(
        tweets=tweets,
        duration_s=kwargs["duration"],
        rate_per_s=kwargs["rate"],
        poison_rate=kwargs["poison_rate"],
        seed=kwargs["seed"],
        chart_path=chart.resolve(),
        keep_data=kwargs["keep_data"],
        promote_at_s=kwargs["promote_at"],
    )
    console = Console(stderr=True)
    baseline = settings.alert_baseline_min_volume
    shortest = shortest_alerting_duration(options.rate_per_s, baseline)
    if options.duration_s < shortest:
        console.print(
            f"[yellow]warning[/]: --duration {options.duration_s:g} at {options.rate_per_s:g} "
            "posts/s probably ends before a spike alert can fire (the detector needs a "
            f"baseline of {baseline} posts before the spike at 40% of the run); "
            f"try --duration {math.ceil(shortest)} or more",
            soft_wrap=True,
        )
    stop = threading.Event()
    with stop_on_signals(stop), _clear_errors():
        if headless:
            result = DemoRun(settings, options, stop).run()
        else:
            console.print(
                "[bold]sentiment-stream demo[/]: starting the broker, PostgreSQL "
                "and the consumer (loading the model)..."
            )
            result = DemoRun(settings, options, stop, _dashboard(options, console)).run()
    if headless:
        click.echo(json.dumps(result.to_dict()))
    else:
        Console().print(_result_table(result))


def _dashboard(options: DemoOptions, console: Console) -> DashboardFactory:
    def factory(
        monitor: Monitor, consumer: ConsumerProcess, services: Services
    ) -> AbstractContextManager[None]:
        endpoints = Endpoints(
            consumer.docs_url,
            consumer.metrics_url,
            services.printable_database_url,
            services.bootstrap_servers,
        )
        return live_dashboard(monitor, endpoints, options.duration_s, console)

    return factory


def _result_table(result: DemoResult) -> Table:
    summary = result.to_dict()
    latency = summary.get("latency_seconds") or {}
    table = Table(title="demo summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("posts sent", f"{summary['posts_sent']:,} (+{summary['poison_sent']:,} malformed)"),
        ("scored", f"{summary.get('scored', 0):,}"),
        ("rows in PostgreSQL", f"{summary.get('rows_in_postgres', 0):,}"),
        ("dead letters", f"{summary.get('dead_letters', 0):,}"),
        ("throughput", f"{summary.get('throughput_posts_per_s') or 0:,.1f} posts/s"),
        (
            "latency p50 / p99",
            f"{format_seconds(latency.get('p50'))} / {format_seconds(latency.get('p99'))}",
        ),
        ("alerts", f"{len(summary.get('alerts', []))}"),
        *_watchlist_rows(summary.get("watchlist")),
        ("chart", str(result.chart) if result.chart else "-"),
    ]
    if result.kept_data:
        rows.append(("data kept in", str(result.kept_data)))
    for row in rows:
        table.add_row(*row)
    return table


def _watchlist_rows(figures: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Posts and negative share per watched entity, and how fast the spiked one alerted."""
    if not figures:
        return []
    rows = []
    for entity, counts in figures["entities"].items():
        total = sum(counts.values())
        negative = counts.get("negative", 0) / total if total else 0.0
        rows.append((f"watched: {entity}", f"{total:,} posts, {negative:.0%} negative"))
    delay = figures["entity_alert_delay_s"]
    rows.append(
        (
            f"{figures['spike_entity']} alert",
            "none" if delay is None else f"{delay:.1f} s after its spike began",
        )
    )
    return rows


@click.group()
def stack() -> None:
    """Start the embedded broker and PostgreSQL alone."""


@stack.command()
@settings_options(Settings, *SERVICE_SETTINGS)
@click.option("--keep-data", is_flag=True, help="Keep the database files after Ctrl-C.")
def up(**kwargs: Any) -> None:
    """Start the broker and PostgreSQL (migrated), print their addresses, wait for Ctrl-C.

    For running the consumer and the simulator in separate terminals.
    """
    settings = load_settings(Settings, kwargs)
    configure_logging(settings.log_level, "console")
    data_dir = Path(tempfile.mkdtemp(prefix="sentiment-stack-")) if kwargs["keep_data"] else None
    stop = threading.Event()
    with stop_on_signals(stop), _clear_errors(), running_services(settings, data_dir) as services:
        lines = [
            f"Kafka bootstrap servers: {services.bootstrap_servers}",
            f"PostgreSQL: {services.printable_database_url}",
            "",
            "Paste into other terminals:",
            *(f"  {line}" for line in services.export_lines()),
            "",
            "Then, for example:",
            "  sentiment-stream consume",
            "  sentiment-stream simulate --rate 50",
            "",
            "Ctrl-C stops both." + (f" Database files stay in {data_dir}." if data_dir else ""),
        ]
        click.echo("\n".join(lines))
        while not stop.wait(0.5):
            pass
    click.echo("stopped.")
