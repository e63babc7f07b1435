"""`sentiment-stream model ...`: export, train, evaluate and benchmark sentiment models.

torch, transformers and optimum are imported inside the commands (through the modules they
call), so ``--help`` and the other command groups stay fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from model.data import DataError, SplitSpec, read_splits
from model.export import DEFAULT_CHECKPOINT
from model.metadata import MetadataError, Preprocessing, Quantization
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings

_DIR = click.Path(path_type=Path, file_okay=False)
_EXISTING_DIR = click.Path(path_type=Path, file_okay=False, exists=True)
_console = Console()


@contextmanager
def _user_errors() -> Iterator[None]:
    """Failures a user can cause become one clear line, not a traceback."""
    from model.export import ModelExportError
    from model.scorer import ModelLoadError

    try:
        yield
    except (DataError, MetadataError, ModelLoadError, ModelExportError) as error:
        raise click.ClickException(str(error)) from None


def _splits(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    try:
        return tuple(str(SplitSpec.parse(v)) for v in value)
    except DataError as error:
        raise click.BadParameter(str(error)) from None


def _split_option(name: str, default: str, help_text: str) -> Callable[[Any], Any]:
    return click.option(
        name, multiple=True, default=[default], show_default=True, callback=_splits, help=help_text
    )


_model_dir_option = click.option(
    "--model", "model_dir", type=_EXISTING_DIR, required=True, help="Model folder."
)
_data_option = click.option(
    "--data",
    "data_dir",
    type=_EXISTING_DIR,
    required=True,
    help="TweetEval-format folder (<DIR>/sentiment/...).",
)
_quantize_option = click.option(
    "--quantize", type=click.Choice(["int8", "none"]), default="int8", show_default=True
)
_max_length_option = click.option(
    "--max-length",
    type=click.IntRange(8, 4096),
    default=128,
    show_default=True,
    help="Texts are truncated to this many tokens.",
)
_batch_size_option = click.option(
    "--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True
)


@click.group()
@settings_options(LoggingSettings)
def model(**flags: Any) -> None:
    """Export, train, evaluate and benchmark sentiment models."""
    settings = load_settings(LoggingSettings, flags)
    configure_logging(settings.log_level, settings.log_format)


@model.command()
@click.option(
    "--checkpoint",
    default=DEFAULT_CHECKPOINT,
    show_default=True,
    help="Hugging Face hub id or local checkpoint folder.",
)
@click.option("--out", type=_DIR, required=True, help="Model folder to write.")
@_quantize_option
@_max_length_option
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit).")
@click.option(
    "--preprocessing",
    type=click.Choice(["cardiffnlp", "none"]),
    default=None,
    help="Tweet normalisation (default: cardiffnlp for cardiffnlp checkpoints).",
)
def export(
    *,
    checkpoint: str,
    out: Path,
    quantize: str,
    max_length: int,
    revision: str | None,
    preprocessing: str | None,
) -> None:
    """Export a sequence-classification checkpoint to an ONNX model folder."""
    from model.export import export_model

    with _user_errors():
        metadata = export_model(
            checkpoint,
            out,
            quantization=cast(Quantization, quantize),
            max_length=max_length,
            revision=revision,
            preprocessing=cast(Preprocessing | None, preprocessing),
        )
    click.echo(
        f"{out}: {metadata.version} ({metadata.quantization}, labels {list(metadata.labels)})"
    )


def _check_disjoint(data_dir: Path, train: tuple[str, ...], evaluate: tuple[str, ...]) -> None:
    """Refuse to evaluate on lines that trained the model: the figures would be meaningless."""
    trained = {
        (SplitSpec.parse(s).name, t.line_no) for s in train for t in read_splits(data_dir, [s])
    }
    shared = [
        (SplitSpec.parse(s).name, t.line_no)
        for s in evaluate
        for t in read_splits(data_dir, [s])
        if (SplitSpec.parse(s).name, t.line_no) in trained
    ]
    if shared:
        name, line = shared[0]
        raise click.UsageError(
            f"{len(shared)} evaluation lines also train the model (first: {name} line {line}); "
            "choose disjoint --train-split / --eval-split ranges, e.g. test[0:6000] / test[6000:]"
        )


@model.command()
@click.option("--base", required=True, help="Encoder checkpoint to fine-tune (hub id or folder).")
@_data_option
@click.option("--out", type=_DIR, required=True, help="Model folder to write (ONNX).")
@_split_option("--train-split", "train", "Split or line range to train on; repeatable.")
@_split_option("--eval-split", "test", "Split or line range to evaluate on; repeatable.")
@click.option("--epochs", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True), default=5e-5, show_default=True)
@_max_length_option
@_batch_size_option
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--class-weighting",
    type=click.Choice(["balanced", "none"]),
    default="balanced",
    show_default=True,
    help="Weigh the loss by inverse class frequency.",
)
@click.option(
    "--preprocessing",
    type=click.Choice(["cardiffnlp", "none"]),
    default="cardiffnlp",
    show_default=True,
    help="Tweet normalisation, in training and in the scorer.",
)
@_quantize_option
@click.option(
    "--checkpoint-out",
    type=_DIR,
    default=None,
    help="Where the PyTorch checkpoint goes [default: artifacts/checkpoints/<out name>].",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="PyTorch CPU threads.",
)
@click.option("--note", default="", help="Free text stored with the training provenance.")
@click.option(
    "--min-macro-recall",
    type=click.FloatRange(0, 1),
    default=None,
    help="Exit non-zero when the evaluation's macro recall is below this (a release gate).",
)
def train(
    *,
    base: str,
    data_dir: Path,
    out: Path,
    train_split: tuple[str, ...],
    eval_split: tuple[str, ...],
    epochs: int,
    lr: float,
    max_length: int,
    batch_size: int,
    seed: int,
    class_weighting: str,
    preprocessing: str,
    quantize: str,
    checkpoint_out: Path | None,
    threads: int,
    note: str,
    min_macro_recall: float | None,
) -> None:
    """Fine-tune BASE on TweetEval-format data, export it to ONNX and evaluate it."""
    from model.evaluate import evaluate, record_metrics
    from model.export import export_model
    from model.scorer import Scorer
    from model.train import ClassWeighting, TrainingConfig, fine_tune

    checkpoint_dir = checkpoint_out or Path("artifacts") / "checkpoints" / out.name
    config = TrainingConfig(
        base=base,
        data_dir=data_dir,
        train_splits=train_split,
        epochs=epochs,
        learning_rate=lr,
        max_length=max_length,
        batch_size=batch_size,
        seed=seed,
        class_weighting=cast(ClassWeighting, class_weighting),
        preprocessing=cast(Preprocessing, preprocessing),
        threads=threads,
    )
    with _user_errors():
        _check_disjoint(data_dir, train_split, eval_split)
        provenance = fine_tune(config, checkpoint_dir)
        provenance.update(eval_splits=list(eval_split), checkpoint_dir=str(checkpoint_dir))
        if note:
            provenance["note"] = note
        export_model(
            str(checkpoint_dir),
            out,
            quantization=cast(Quantization, quantize),
            max_length=max_length,
            preprocessing=config.preprocessing,
            training=provenance,
        )
        evaluation = evaluate(Scorer.load(out), data_dir, eval_split)
        metadata = record_metrics(out, evaluation)
    _console.print(*evaluation.tables())
    click.echo(f"{out}: {metadata.version}, macro recall {evaluation.macro_recall:.4f}")
    if min_macro_recall is not None and evaluation.macro_recall < min_macro_recall:
        raise click.ClickException(
            f"macro recall {evaluation.macro_recall:.4f} is below --min-macro-recall "
            f"{min_macro_recall}"
        )


@model.command(name="evaluate")
@_model_dir_option
@_data_option
@_split_option("--split", "test", "Split or line range to evaluate on; repeatable.")
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also draw the confusion matrix into this PNG file.",
)
@click.option("--no-record", is_flag=True, help="Do not write the metrics into metadata.json.")
def evaluate_command(
    model_dir: Path, data_dir: Path, split: tuple[str, ...], plot: Path | None, no_record: bool
) -> None:
    """Macro recall (TweetEval's metric), accuracy, macro F1, per-class figures, confusion."""
    from model.evaluate import evaluate, plot_confusion, record_metrics
    from model.scorer import Scorer

    with _user_errors():
        scorer = Scorer.load(model_dir)
        evaluation = evaluate(scorer, data_dir, split)
        if not no_record:
            record_metrics(model_dir, evaluation)
    _console.print(*evaluation.tables())
    if plot is not None:
        plot_confusion(evaluation, plot, title=f"{scorer.version} on {', '.join(split)}")
        click.echo(f"confusion matrix written to {plot}")


@model.command()
@_model_dir_option
@_data_option
@click.option(
    "--split",
    default="test",
    show_default=True,
    callback=lambda c, p, v: _splits(c, p, (v,))[0],
    help="Split or line range whose tweets are scored.",
)
@click.option(
    "--checkpoint",
    type=_EXISTING_DIR,
    default=None,
    help="PyTorch checkpoint of the model [default: the folder's source_checkpoint].",
)
@click.option(
    "--fp32-model",
    type=_EXISTING_DIR,
    default=None,
    help="fp32 export of the checkpoint [default: exported on the fly].",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="Tweets to time the batched candidates on.",
)
@click.option(
    "--pipeline-limit",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Tweets to time the one-call-per-text pipeline on (it is slow).",
)
@_batch_size_option
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Threads for every candidate [default: the cores available].",
)
def bench(
    *,
    model_dir: Path,
    data_dir: Path,
    split: str,
    checkpoint: Path | None,
    fp32_model: Path | None,
    limit: int,
    pipeline_limit: int,
    batch_size: int,
    threads: int | None,
) -> None:
    """Tweets/s of the scorer vs the transformers pipeline, batched PyTorch and bare ONNX
    Runtime; macro recall of int8 vs fp32. The last line printed is one JSON object."""
    from model.bench import BenchConfig, checkpoint_of, run_bench
    from model.scorer import available_cores

    with _user_errors():
        checkpoint = checkpoint or checkpoint_of(model_dir)
        if checkpoint is None:
            raise click.UsageError(
                f"the PyTorch checkpoint of {model_dir} is not on disk: pass --checkpoint DIR"
            )
        figures = run_bench(
            BenchConfig(
                model_dir=model_dir,
                data_dir=data_dir,
                split=split,
                checkpoint=checkpoint,
                fp32_model_dir=fp32_model,
                limit=limit,
                pipeline_limit=pipeline_limit,
                batch_size=batch_size,
                threads=threads or available_cores(),
            )
        )
    table = Table(title=f"model bench: {figures['model_version']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.4f}" if isinstance(value, float) else str(value))
    _console.print(table)
    click.echo(json.dumps(figures))
