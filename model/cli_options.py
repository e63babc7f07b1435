"""Options and helpers that the `model` commands share (model/cli.py, model/catalogue_cli.py)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from model.data import DataError, SplitSpec
from model.metadata import QUANTIZATIONS, MetadataError

DIR = click.Path(path_type=Path, file_okay=False)
EXISTING_DIR = click.Path(path_type=Path, file_okay=False, exists=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Failures a user can cause become one clear line, not a traceback."""
    from model.export import ModelExportError
    from model.scorer import ModelLoadError

    try:
        yield
    except (DataError, MetadataError, ModelLoadError, ModelExportError) as error:
        raise click.ClickException(str(error)) from None


def splits(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(str(SplitSpec.parse(v)) for v in value)
    except DataError as error:
        raise click.BadParameter(str(error)) from None


def split_option(name: str, default: str, help_text: str) -> Callable[[Any], Any]:
    return click.option(
        name, multiple=True, default=[default], show_default=True, callback=splits, help=help_text
    )


model_dir_option = click.option(
    "--model", "model_dir", type=EXISTING_DIR, required=True, help="Model folder."
)
data_option = click.option(
    "--data",
    "data_dir",
    type=EXISTING_DIR,
    required=True,
    help="TweetEval-format folder (<DIR>/sentiment/...).",
)
quantize_option = click.option(
    "--quantize",
    type=click.Choice(QUANTIZATIONS),
    default="int8-static",
    show_default=True,
    help="int8-static: fixed scales, a post's scores depend only on its text; int8-dynamic: "
    "scales per batch (scores move with batch-mates); none: fp32.",
)


def smoothquant_option(default: str) -> Callable[[Any], Any]:
    return click.option(
        "--smoothquant",
        type=click.FloatRange(0, 1),
        default=None,
        metavar="ALPHA",
        help="int8-static only: SmoothQuant with this alpha first (0.75 suits mpnet): "
        "activation outlier channels move into the weights, calibrated on 256 bundled val "
        f"tweets [default: {default}].",
    )


max_length_option = click.option(
    "--max-length",
    type=click.IntRange(8, 4096),
    default=128,
    show_default=True,
    help="Texts are truncated to this many tokens.",
)
batch_size_option = click.option(
    "--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True
)


def threads_option(default: int | None, help_text: str) -> Callable[[Any], Any]:
    return click.option(
        "--threads",
        type=click.IntRange(1, 256),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def command_line() -> str:
    """The command this process runs, as a user would type it (stored in metadata.json)."""
    return shlex.join(["sentiment-stream", *sys.argv[1:]])
