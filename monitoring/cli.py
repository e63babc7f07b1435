"""`sentiment-stream monitor ...`: reports of the stream's model monitoring."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from model.metadata import MetadataError, ModelMetadata
from model.settings import ModelSettings
from monitoring.report import read_report_data, write_report
from monitoring.settings import MonitoringSettings
from storage.settings import DatabaseSettings
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings
from stream_core.windows import WINDOW_PATTERN, parse_window


class MonitorSettings(MonitoringSettings, ModelSettings, DatabaseSettings, LoggingSettings):
    """What `monitor report` reads: the database, the model (its offline reference) and the
    monitoring windows and thresholds."""


def _window(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_window(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return value


@click.group()
def monitor() -> None:
    """Reports of online quality and drift (docs/monitoring.md)."""


@monitor.command()
@settings_options(MonitorSettings)
@click.option(
    "--since", default="24h", show_default=True, callback=_window, help="How far back (1m-366d)."
)
@click.option(
    "--window",
    default=None,
    help="Drift window to draw (default: the first of SENTIMENT_MONITOR_WINDOWS).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="report.html (tables and the figure) or report.png (the figure).",
)
def report(since: str, window: str | None, out: Path, **flags: Any) -> None:
    """Online quality per model version over time with the offline reference, drift per
    feature over time with the threshold, and the predicted label mix."""
    settings = load_settings(MonitorSettings, flags)
    configure_logging(settings.log_level, settings.log_format)
    if out.suffix.lower() not in {".html", ".htm", ".png"}:
        raise click.BadParameter("write the report as .html or .png", param_hint="--out")
    windows = settings.windows()
    chosen = window or next(iter(windows))
    if not re.fullmatch(WINDOW_PATTERN, chosen):
        raise click.BadParameter(f"{chosen!r} is no window like 15m", param_hint="--window")
    reference = None
    try:
        metrics = ModelMetadata.read(settings.model).metrics or {}
        reference = metrics.get("macro_recall")
    except MetadataError:
        click.echo(f"no metadata.json in {settings.model}: no offline reference drawn", err=True)
    until = datetime.now(UTC)
    data = read_report_data(
        settings.database_url_value(),
        since=until - parse_window(since),
        until=until,
        window=chosen,
        reference_macro_recall=reference,
        psi_threshold=settings.drift_psi_threshold,
    )
    write_report(data, out)
    click.echo(
        f"{out}: {len(data.quality)} quality points, {len(data.drift)} drift rows since {since}"
    )
