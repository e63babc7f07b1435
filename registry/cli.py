"""`sentiment-stream model register|versions|promote|rollback|shadow|retire|history`: the model
registry in PostgreSQL.

Running consumers follow every change within seconds (NOTIFY, or their poll at worst); nothing
restarts. Each change is one transaction with its row in the audit trail (`model history`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from registry.store import ModelRegistry, ModelVersion, RegistryError
from storage.cli import database_errors
from storage.settings import DatabaseSettings
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings
from stream_core.windows import parse_window


class RegistryCliSettings(DatabaseSettings, LoggingSettings):
    """What the registry commands read from the environment and their setting flags."""


F = TypeVar("F", bound=Callable[..., Any])

registry_settings = settings_options(RegistryCliSettings)
reason_option = click.option("--reason", default="", help="Why, for the audit trail.")


@contextmanager
def _registry(kwargs: dict[str, Any]) -> Iterator[ModelRegistry]:
    """The registry the settings name; refusals and database trouble become one clear line."""
    settings = load_settings(RegistryCliSettings, kwargs)
    configure_logging(settings.log_level, settings.log_format)
    url = settings.database_url_value()
    try:
        with database_errors(url, "model registry"):
            yield ModelRegistry(url)
    except RegistryError as error:
        raise click.ClickException(str(error)) from None


def _line(version: ModelVersion) -> str:
    metrics = version.offline_metrics or {}
    recall = metrics.get("macro_recall")
    figures = f"  macro recall {recall:.4f}" if isinstance(recall, float) else ""
    sample = f" (sample {version.shadow_sample:g})" if version.status == "shadow" else ""
    return (
        f"{version.version}  {version.status}{sample}{figures}"
        f"  since {version.status_at:%Y-%m-%d %H:%M:%S} by {version.status_by}"
        + (f": {version.status_reason}" if version.status_reason else "")
    )


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--note", default="", help="What this version is, for people.")
@registry_settings
def register(folder: Path, note: str, **kwargs: Any) -> None:
    """Store the model FOLDER in the registry (its files go into PostgreSQL, verified).

    The version is the one its metadata.json names. Registering the same folder again changes
    nothing.
    """
    with _registry(kwargs) as registry:
        registered = registry.register(folder, note=note)
    outcome = "registered" if registered.created else "already registered"
    click.echo(f"{registered.version.version}: {outcome}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
@registry_settings
def versions(as_json: bool, **kwargs: Any) -> None:
    """The registered model versions and their status (registered, shadow, active, retired)."""
    with _registry(kwargs) as registry:
        found = registry.versions()
    if as_json:
        rows = [{**vars(v), "metadata": v.metadata} for v in found]
        click.echo(json.dumps(rows, indent=2, default=str))
    elif not found:
        click.echo("no version registered (sentiment-stream model register FOLDER)")
    for version in [] if as_json else found:
        click.echo(_line(version))


@click.command()
@click.argument("version")
@reason_option
@registry_settings
def promote(version: str, reason: str, **kwargs: Any) -> None:
    """Make VERSION the active version: every consumer switches to it between two batches."""
    with _registry(kwargs) as registry:
        click.echo(_line(registry.promote(version, reason=reason)))


@click.command()
@reason_option
@registry_settings
def rollback(reason: str, **kwargs: Any) -> None:
    """Retire the active version and make active again the one it replaced."""
    with _registry(kwargs) as registry:
        click.echo(_line(registry.rollback(reason=reason)))


def sample_option(*names: str) -> Callable[[F], F]:
    """The share of the active version's posts a shadow scores too (`model shadow --sample`,
    `model retrain --shadow-sample`)."""
    return click.option(
        *names,
        type=click.FloatRange(0, 1, min_open=True),
        default=1.0,
        show_default=True,
        help="Share of the active version's posts the shadow scores too.",
    )


@click.command()
@click.argument("version")
@sample_option("--sample")
@reason_option
@registry_settings
def shadow(version: str, sample: float, reason: str, **kwargs: Any) -> None:
    """Let VERSION score the live posts beside the active version, without serving them."""
    with _registry(kwargs) as registry:
        click.echo(_line(registry.shadow(version, sample=sample, reason=reason)))


@click.command()
@click.argument("version")
@reason_option
@registry_settings
def retire(version: str, reason: str, **kwargs: Any) -> None:
    """Take VERSION out of use (its files stay: it can be promoted again)."""
    with _registry(kwargs) as registry:
        click.echo(_line(registry.retire(version, reason=reason)))


@click.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@registry_settings
def history(limit: int, **kwargs: Any) -> None:
    """The registry's audit trail, newest first: who changed which version, when and why."""
    with _registry(kwargs) as registry:
        rows = registry.history(limit)
    for row in rows:
        change = f"{row['from_status'] or '-'} -> {row['to_status'] or '-'}"
        why = f": {row['reason']}" if row["reason"] else ""
        click.echo(
            f"{row['at']:%Y-%m-%d %H:%M:%S}  {row['action']:<8} {row['version']}  {change}"
            f"  by {row['actor']}{why}"
        )


@click.command(name="compare-live")
@click.option("--version", help="The version to compare (default: the shadow version).")
@click.option(
    "--since",
    default="1h",
    show_default=True,
    help="How far back: 90s, 15m, 24h, 7d...",
)
@registry_settings
def compare_live(version: str | None, since: str, **kwargs: Any) -> None:
    """The shadow version against the version that served the same posts: agreement, the
    confusion between the two, and both versions' online quality on the labelled ones."""
    try:
        window = parse_window(since)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    with _registry(kwargs) as registry:
        found = registry.compare(version, window)
    click.echo(json.dumps(found.document(), indent=2))


@click.command()
@click.argument("version")
@click.option("--since", default="24h", show_default=True, help="Posts stored since: 90m, 24h...")
@click.option(
    "--page", type=click.IntRange(1, 100_000), default=512, show_default=True,
    help="Posts per page (one transaction each).",
)  # fmt: skip
@click.option(
    "--pause-ms", type=click.IntRange(0, 60_000), default=0, show_default=True,
    help="Pause between pages, to bound the load on the database.",
)  # fmt: skip
@registry_settings
def rescore(version: str, since: str, page: int, pause_ms: int, **kwargs: Any) -> None:
    """Score the posts already stored with VERSION, into shadow_scores (then `model
    compare-live --version VERSION`). Resumable: a rerun scores only what is missing."""
    from model.scorer import ModelLoadError, Scorer
    from registry import rescore as backfill
    from registry.settings import default_cache_dir

    try:
        start = datetime.now(UTC) - parse_window(since)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    with _registry(kwargs) as registry:
        try:
            scorer = Scorer.load(registry.fetch(version, default_cache_dir()))
        except ModelLoadError as error:
            raise click.ClickException(f"version {version} does not load: {error}") from None
        url = load_settings(RegistryCliSettings, kwargs).database_url_value()
        total = backfill.to_rescore(url, scorer, start)
        with click.progressbar(length=total, label=f"rescoring with {version}") as bar:
            written = backfill.rescore(
                url, scorer, start, page=page, pause_s=pause_ms / 1000, progress=bar.update
            )
    click.echo(f"{written} posts scored by {version} into shadow_scores")


COMMANDS = (
    register, versions, promote, rollback, shadow, retire, history, compare_live, rescore,
)  # fmt: skip
