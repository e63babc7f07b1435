"""`sentiment-stream simulate`."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click
from confluent_kafka import KafkaException
from rich.console import Console

from model.data import SAMPLE_DIR, SAMPLE_SPLITS, DataError, LabelledTweet, read_splits
from producer_sim.download import (
    TWEETEVAL_URL,
    DownloadError,
    default_cache_dir,
    download_tweeteval,
    is_downloaded,
)
from producer_sim.languages import mixed, sample_languages
from producer_sim.posts import Spike
from producer_sim.progress import live_progress, summary_table
from producer_sim.simulator import Simulator, SimulatorConfig
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import KafkaSettings, LoggingSettings
from stream_core.shutdown import stop_on_signals
from watchlist.rules import NAME_PATTERN


class SimulateSettings(KafkaSettings, LoggingSettings):
    """What `simulate` reads from the environment and its setting flags."""


RATE = click.FloatRange(min=0.0)
FULL_SPLITS = "val,test"  # what --data and --download replay unless --split says otherwise
SHARE = click.FloatRange(min=0.0, max=1.0)

Command = TypeVar("Command", bound=Callable[..., Any])


class Duration(click.ParamType[float]):
    """Seconds, written ``500ms``, ``30s``, ``2m``, ``1h`` or a bare number of seconds."""

    name = "duration"
    _UNITS: ClassVar[dict[str, float]] = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float | int):
            return float(value)
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", str(value))
        if found is None:
            self.fail(f"{value!r} is no duration: write like 500ms, 30s, 2m or 1h", param, ctx)
        return float(found[1]) * self._UNITS[found[2]]


DURATION = Duration()

# Options the demo shares with `simulate`.
seed_option = click.option(
    "--seed", type=int, help="Seed for every random choice (authors, order...)."
)


def poison_rate_option(default: float) -> Callable[[Command], Command]:
    return click.option(
        "--poison-rate",
        type=SHARE,
        default=default,
        show_default=True,
        help="Share of malformed messages (the consumer dead-letters them).",
    )


def data_options(command: Any) -> Any:
    """``--data``, ``--split`` and ``--download``: shared with the demo."""
    for option in reversed(
        [
            click.option(
                "--data",
                type=click.Path(file_okay=False, path_type=Path),
                envvar="SENTIMENT_DATA",
                help="TweetEval-format folder (<dir>/sentiment/{split}_text.txt) "
                "[default: the bundled TweetEval validation split, 2,000 tweets; "
                "env: SENTIMENT_DATA]",
            ),
            click.option(
                "--split",
                "splits",
                help="Comma-separated splits to replay, in order; NAME or NAME[START:END] "
                f"[default: {FULL_SPLITS} with --data or --download, "
                f"{','.join(SAMPLE_SPLITS)} for the bundled data].",
            ),
            click.option(
                "--download",
                is_flag=True,
                help="Fetch the public TweetEval sentiment files into --cache-dir first.",
            ),
            click.option(
                "--cache-dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                help=f"Where --download puts the files [default: {default_cache_dir()}].",
            ),
            click.option(
                "--download-url", default=TWEETEVAL_URL, hidden=True, envvar="SENTIMENT_DATA_URL"
            ),
        ]
    ):
        command = option(command)
    return command


def _split_names(splits: str) -> list[str]:
    names = [s.strip() for s in splits.split(",") if s.strip()]
    if not names:
        raise click.BadParameter("name at least one split", param_hint="--split")
    return names


def load_tweets(options: Mapping[str, Any]) -> list[LabelledTweet]:
    """The tweets that the :func:`data_options` flags in ``options`` choose, with a clear error
    for every way this can fail.

    Where they come from, first match wins: ``--data``; ``--download``; an earlier
    ``--download`` in the default cache; the TweetEval validation split bundled with the package.
    """
    data: Path | None = options["data"]
    splits: str | None = options["splits"]
    cache_dir: Path | None = options["cache_dir"]
    download, download_url = options["download"], options["download_url"]
    split_names = _split_names(splits or FULL_SPLITS)
    if download:
        try:
            data = download_tweeteval(split_names, cache_dir or data, download_url)
        except DownloadError as error:
            raise click.ClickException(
                f"{error}\nOffline? Leave out --download to replay the bundled sample, or "
                "point --data at a TweetEval-format folder (for example a copy of "
                "cardiffnlp/tweeteval's datasets/ folder)."
            ) from None
    if data is None and is_downloaded(split_names, default_cache_dir()):
        data = default_cache_dir()  # an earlier --download
    hint = "--data: a TweetEval-format folder"
    if data is None:
        data = SAMPLE_DIR
        split_names = _split_names(splits or ",".join(SAMPLE_SPLITS))
        hint = (
            f"the bundled data holds only {', '.join(SAMPLE_SPLITS)}: "
            "give --data DIR or --download for other splits"
        )
    try:
        tweets = read_splits(data, split_names)
    except (DataError, OSError) as error:
        raise click.ClickException(f"{error} ({hint})") from None
    tweets = [tweet for tweet in tweets if tweet.text.strip()]  # blank lines are not posts
    if not tweets:
        raise click.ClickException(f"no tweets in {data} for splits {split_names}")
    return tweets


def spike_from(options: Mapping[str, Any]) -> Spike | None:
    """The spike the ``--spike-*`` flags in ``options`` ask for, if any."""
    at_s, duration_s, entity = (
        options["spike_at"],
        options["spike_duration"],
        options["spike_entity"],
    )
    if at_s is None and duration_s is None:
        if entity is not None:
            raise click.UsageError("--spike-entity needs --spike-at and --spike-duration")
        return None
    if at_s is None or duration_s is None:
        raise click.UsageError("--spike-at and --spike-duration go together")
    return Spike(at_s, duration_s, options["spike_share"], entity, options["spike_entity_share"])


def _entity_name(_ctx: click.Context, _param: click.Parameter, name: str | None) -> str | None:
    """A name that posts can carry as a word, a mention and a hashtag: a watched entity's."""
    if name is not None and not re.fullmatch(NAME_PATTERN, name):
        raise click.BadParameter(
            f"{name!r}: lower-case letters, digits and _ . - (a watched entity's name)",
            param_hint="--spike-entity",
        )
    return name


@click.command()
@settings_options(SimulateSettings)
@data_options
@click.option("--rate", type=RATE, default=50.0, show_default=True, help="Messages/s (0: max).")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many messages.")
@click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds."
)
@click.option("--loop", is_flag=True, help="Start the data over when it ends.")
@click.option("--shuffle", is_flag=True, help="Replay in a random (seeded) order.")
@seed_option
@click.option(
    "--authors", type=click.IntRange(min=1), default=1000, show_default=True, help="Author pool."
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Partitions of the topic when the simulator creates it.",
)
@click.option("--replication-factor", type=int, default=-1, help="[default: the broker's]")
@click.option("--spike-at", type=click.FloatRange(min=0), help="Seconds in when a spike starts.")
@click.option("--spike-duration", type=click.FloatRange(min=0, min_open=True), help="Seconds.")
@click.option(
    "--spike-share", type=SHARE, default=0.8, show_default=True, help="Negative share in a spike."
)
@click.option(
    "--spike-entity",
    metavar="NAME",
    callback=_entity_name,
    help="Make the spike about one entity: a share of all posts (--spike-entity-share) names "
    "it, as NAME, @NAME or #NAME, and only those turn negative in the spike.",
)
@click.option(
    "--spike-entity-share",
    type=SHARE,
    default=0.2,
    show_default=True,
    help="With --spike-entity: share of posts that name the entity, the whole run long.",
)
@poison_rate_option(0.0)
@click.option("--duplicate-rate", type=SHARE, default=0.0, help="Share of re-sent posts.")
@click.option(
    "--compression",
    type=click.Choice(["lz4", "zstd", "gzip", "snappy", "none"]),
    default="lz4",
    show_default=True,
)
@click.option(
    "--languages",
    default="",
    metavar="CODES",
    help="Mix in the bundled tweets of these languages, e.g. es,de,ar (of "
    f"{','.join(sample_languages())}; 200 each, spread evenly through the replay).",
)
@click.option(
    "--omit-lang",
    is_flag=True,
    help="Send no lang field: the consumer identifies every post's language.",
)
@click.option(
    "--feedback-rate",
    type=SHARE,
    default=0.0,
    help="Share of posts whose gold label comes later on the labels topic (then no post "
    "carries the x-gold-label header).",
)
@click.option(
    "--feedback-delay",
    type=DURATION,
    default="30s",
    show_default=True,
    help="How late the labels come (like 500ms, 30s, 2m).",
)
@click.option(
    "--feedback-shuffle",
    is_flag=True,
    help="Send other posts' labels instead of the post's own (feedback that disagrees).",
)
@click.option(
    "--scenario",
    type=click.Choice(["plain", "drift"]),
    default="plain",
    show_default=True,
    help="drift: from --drift-at on, posts are upper-case, emoji-only, long non-tweet text or "
    "negative-only in turn (docs/monitoring.md).",
)
@click.option(
    "--drift-at",
    type=DURATION,
    default="60s",
    show_default=True,
    help="When the drift scenario starts (seconds into the run).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def simulate(**kwargs: Any) -> None:
    """Replay TweetEval into Kafka like a real firehose.

    Posts are keyed by author, so one author's posts stay in order; the gold label travels in
    the x-gold-label header. --limit counts every message: posts, duplicates and poison.
    """
    settings = load_settings(SimulateSettings, kwargs)
    configure_logging(settings.log_level, settings.log_format)
    if kwargs["poison_rate"] + kwargs["duplicate_rate"] > 1:
        raise click.UsageError("--poison-rate plus --duplicate-rate must not exceed 1")
    tweets = load_tweets(kwargs)
    languages = [code.strip() for code in kwargs["languages"].split(",") if code.strip()]
    if languages:
        try:
            tweets = mixed(tweets, languages)
        except DataError as error:
            raise click.BadParameter(str(error), param_hint="--languages") from None
    config = SimulatorConfig(
        topic=settings.topic,
        tweets=tweets,
        rate_per_s=kwargs["rate"],
        limit=kwargs["limit"],
        duration_s=kwargs["duration"],
        loop=kwargs["loop"],
        shuffle=kwargs["shuffle"],
        seed=kwargs["seed"],
        authors=kwargs["authors"],
        spike=spike_from(kwargs),
        poison_rate=kwargs["poison_rate"],
        duplicate_rate=kwargs["duplicate_rate"],
        partitions=kwargs["partitions"],
        replication_factor=kwargs["replication_factor"],
        compression=kwargs["compression"],
        omit_lang=kwargs["omit_lang"],
        labels_topic=settings.labels_topic,
        feedback_rate=kwargs["feedback_rate"],
        feedback_delay_s=kwargs["feedback_delay"],
        feedback_shuffle=kwargs["feedback_shuffle"],
        drift_at_s=kwargs["drift_at"] if kwargs["scenario"] == "drift" else None,
    )
    try:
        simulator = Simulator(config, settings.producer_kafka_config())
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    console = Console(stderr=True)
    show_progress = console.is_terminal and not kwargs["quiet"]
    try:
        with (
            stop_on_signals(threading.Event()) as stop,
            live_progress(simulator, console, show_progress),
        ):
            summary = simulator.run(stop)
    except KafkaException as error:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {error.args[0].str()}"
        ) from None
    if kwargs["as_json"]:
        click.echo(json.dumps(summary.to_dict()))
    else:
        Console().print(summary_table(summary))
    if summary.failed:
        sys.exit(1)
