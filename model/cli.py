"""`sentiment-stream model ...`: export, train, evaluate and benchmark sentiment models.

torch, transformers and optimum are imported inside the commands (through the modules they
call), so ``--help`` and the other command groups stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from model.catalogue_cli import COMMANDS
from model.cli_options import (
    DIR,
    EXISTING_DIR,
    batch_size_option,
    command_line,
    data_option,
    max_length_option,
    model_dir_option,
    quantize_option,
    smoothquant_option,
    split_option,
    splits,
    threads_option,
    user_errors,
)
from model.data import SAMPLE_DIR, SplitSpec, read_splits
from model.export import DEFAULT_CHECKPOINT
from model.metadata import Preprocessing, Quantization
from model.settings import ModelSettings
from stream_core.cli_options import load_settings, settings_options
from stream_core.logs import configure_logging
from stream_core.settings import LoggingSettings

_console = Console()
TRAINING_RECORD = "training.json"  # beside a checkpoint: how `model train` made it


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
@click.option("--out", type=DIR, required=True, help="Model folder to write.")
@quantize_option
@smoothquant_option("none")
@max_length_option
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit).")
@click.option(
    "--preprocessing",
    type=click.Choice(["cardiffnlp", "none"]),
    default=None,
    help="Tweet normalisation (default: cardiffnlp for cardiffnlp checkpoints).",
)
@click.option(
    "--profile-data",
    type=EXISTING_DIR,
    default=None,
    help="TweetEval-format folder whose val split becomes the drift reference profile "
    "(default: the bundled validation sample).",
)
@click.option("--no-profile", is_flag=True, help="Write no drift reference profile.")
def export(
    *,
    checkpoint: str,
    out: Path,
    quantize: str,
    smoothquant: float | None,
    max_length: int,
    revision: str | None,
    preprocessing: str | None,
    profile_data: Path | None,
    no_profile: bool,
) -> None:
    """Export a sequence-classification checkpoint to an ONNX model folder, with the drift
    reference profile of the validation posts."""
    from model.export import export_model

    with user_errors():
        metadata = export_model(
            checkpoint,
            out,
            quantization=cast(Quantization, quantize),
            max_length=max_length,
            revision=revision,
            preprocessing=cast(Preprocessing | None, preprocessing),
            smoothquant=smoothquant,
        )
        if not no_profile:
            _write_profile(out, profile_data or SAMPLE_DIR, ("val",))
    click.echo(
        f"{out}: {metadata.version} ({metadata.quantization}, labels {list(metadata.labels)})"
    )


def _write_profile(model_dir: Path, data_dir: Path, split: tuple[str, ...]) -> None:
    from model.profile import PROFILE_FILE, write_reference_profile

    tweets = read_splits(data_dir, list(split))
    source = f"{data_dir.name} {', '.join(split)}"
    profile = write_reference_profile(model_dir, [t.text for t in tweets], source=source)
    click.echo(f"{model_dir / PROFILE_FILE}: drift reference of {profile.posts} posts ({source})")


@model.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Member model folder or name (default, accurate); repeatable, at least two. The "
    "first one's tokenizer reads the text.",
)
@click.option(
    "--weight",
    "weights",
    type=click.FloatRange(0, min_open=True),
    multiple=True,
    help="Each member's weight, in --model order [default: equal]; normalised to sum to 1.",
)
@click.option("--out", type=DIR, required=True, help="Model folder to write.")
@click.option(
    "--name",
    default=None,
    help="Name in the version (<name>-<sha256[:12]>) [default: the --out folder's name].",
)
@settings_options(ModelSettings, "models_dir")
def ensemble(
    *,
    models: tuple[str, ...],
    weights: tuple[float, ...],
    out: Path,
    name: str | None,
    **flags: Any,
) -> None:
    """Join model folders into one that averages their probabilities (one ONNX graph, one
    tokenizer; a member whose vocabulary numbers the same tokens otherwise is remapped in the
    graph), with the drift reference profile of the bundled validation posts."""
    from model.catalogue import resolve
    from model.data import read_split
    from model.ensemble import Member, build_ensemble

    settings = load_settings(ModelSettings, flags)
    if weights and len(weights) != len(models):
        raise click.UsageError(f"{len(weights)} --weight for {len(models)} --model: give one each")
    with user_errors():
        folders = [resolve(m, settings.models_dir)[1] for m in models]
        members = [
            Member(folder, weight)
            for folder, weight in zip(folders, weights or [1.0] * len(folders), strict=True)
        ]
        texts = [t.text for t in read_split(SAMPLE_DIR, "val")]
        metadata = build_ensemble(members, out, name=name or out.name, check_texts=texts)
        _write_profile(out, SAMPLE_DIR, ("val",))
    described = (metadata.ensemble or {}).get("members", [])
    shares = ", ".join(f"{m['version']} {m['weight']:g}" for m in described)
    click.echo(f"{out}: {metadata.version} ({metadata.quantization}) = {shares}")


@model.command()
@model_dir_option
@click.option(
    "--data",
    "data_dir",
    type=EXISTING_DIR,
    default=SAMPLE_DIR,
    show_default="the bundled validation sample",
    help="TweetEval-format folder (<DIR>/sentiment/...).",
)
@split_option("--split", "val", "Split or line range the reference is built from; repeatable.")
def profile(model_dir: Path, data_dir: Path, split: tuple[str, ...]) -> None:
    """Write the folder's drift reference profile (profile.json) from these posts: label mix,
    lengths, token counts, truncation, unknown tokens, URLs/mentions/emoji/hashtags,
    confidence. A folder exported before profiles existed gets one this way."""
    with user_errors():
        _write_profile(model_dir, data_dir, split)


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


def _check_unlabelled(
    data_dir: Path, unlabelled: tuple[Path, ...], evaluate: tuple[str, ...]
) -> None:
    """Refuse unlabelled tweets that are evaluation tweets: a teacher would leak into them."""
    from model.distill import read_unlabelled

    evaluation = {t.text.strip() for t in read_splits(data_dir, list(evaluate))}
    shared = [text for text in read_unlabelled(list(unlabelled)) if text.strip() in evaluation]
    if shared:
        raise click.UsageError(
            f"{len(shared)} --unlabelled tweets are evaluation tweets (first: {shared[0]!r}); "
            "pass files that hold none of the --eval-split lines"
        )


@model.command()
@click.option("--base", required=True, help="Encoder checkpoint to fine-tune (hub id or folder).")
@data_option
@click.option("--out", type=DIR, required=True, help="Model folder to write (ONNX).")
@split_option("--train-split", "train", "Split or line range to train on; repeatable.")
@split_option("--eval-split", "test", "Split or line range to evaluate on; repeatable.")
@click.option("--epochs", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True), default=5e-5, show_default=True)
@max_length_option
@batch_size_option
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
@quantize_option
@smoothquant_option("none")
@click.option(
    "--checkpoint-out",
    type=DIR,
    default=None,
    help="Where the PyTorch checkpoint goes [default: artifacts/checkpoints/<out name>].",
)
@threads_option(2, "PyTorch CPU threads.")
@click.option(
    "--freeze-layers",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Freeze the embeddings and this many bottom layers; their output is computed once, "
    "so each epoch runs only the top layers (a base-size encoder trains several times faster).",
)
@click.option(
    "--frozen-cache",
    type=DIR,
    default=None,
    help="Keep the frozen layers' output in this folder, so that runs with other seeds or "
    "options on the same base, layers and tweets skip that pass.",
)
@click.option(
    "--teacher",
    "teachers",
    type=EXISTING_DIR,
    multiple=True,
    help="Model folder whose probabilities are soft targets (knowledge distillation); "
    "repeatable: several teachers are averaged.",
)
@click.option(
    "--unlabelled",
    type=click.Path(path_type=Path, exists=True),
    multiple=True,
    help="File of tweets (one per line), or folder of *_text.txt files, that the teachers "
    "label softly for extra training; repeatable.",
)
@click.option(
    "--distill-weight",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Share of the loss on the teachers' soft targets (the rest: gold labels).",
)
@click.option(
    "--distill-temperature",
    type=click.FloatRange(0, min_open=True),
    default=2.0,
    show_default=True,
    help="Softmax temperature of the distillation loss.",
)
@click.option(
    "--teacher-cache",
    type=DIR,
    default=None,
    help="Keep the teachers' probabilities in this folder, so that runs with other seeds or "
    "distillation settings on the same tweets skip scoring them.",
)
@click.option(
    "--reuse-checkpoint",
    is_flag=True,
    help="When --checkpoint-out already holds a trained checkpoint, export and evaluate it "
    "instead of training again (its record is read from the training.json beside it).",
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
    smoothquant: float | None,
    checkpoint_out: Path | None,
    threads: int,
    freeze_layers: int,
    frozen_cache: Path | None,
    teachers: tuple[Path, ...],
    unlabelled: tuple[Path, ...],
    distill_weight: float,
    distill_temperature: float,
    teacher_cache: Path | None,
    reuse_checkpoint: bool,
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
        freeze_layers=freeze_layers,
        frozen_cache=None if frozen_cache is None else str(frozen_cache),
        teachers=tuple(str(t) for t in teachers),
        unlabelled=tuple(str(u) for u in unlabelled),
        distill_weight=distill_weight,
        distill_temperature=distill_temperature,
        teacher_cache=None if teacher_cache is None else str(teacher_cache),
    )
    if unlabelled and not teachers:
        raise click.UsageError("--unlabelled tweets need a --teacher to label them")
    with user_errors():
        _check_disjoint(data_dir, train_split, eval_split)
        _check_unlabelled(data_dir, unlabelled, eval_split)
        if reuse_checkpoint and (checkpoint_dir / "config.json").is_file():
            provenance = _reused_training(checkpoint_dir)
        else:
            provenance = fine_tune(config, checkpoint_dir)
            provenance.update(
                eval_splits=list(eval_split),
                checkpoint_dir=str(checkpoint_dir),
                command=command_line(),
            )
            if note:
                provenance["note"] = note
            (checkpoint_dir / TRAINING_RECORD).write_text(
                json.dumps(provenance, indent=2) + "\n", encoding="utf-8"
            )
        export_model(
            str(checkpoint_dir),
            out,
            quantization=cast(Quantization, quantize),
            max_length=max_length,
            preprocessing=config.preprocessing,
            training=provenance,
            smoothquant=smoothquant,
        )
        evaluation = evaluate(Scorer.load(out), data_dir, eval_split)
        metadata = record_metrics(out, evaluation, command_line())
        _write_profile(out, data_dir, eval_split)
    _console.print(*evaluation.tables())
    click.echo(f"{out}: {metadata.version}, macro recall {evaluation.macro_recall:.4f}")
    if min_macro_recall is not None and evaluation.macro_recall < min_macro_recall:
        raise click.ClickException(
            f"macro recall {evaluation.macro_recall:.4f} is below --min-macro-recall "
            f"{min_macro_recall}"
        )


def _reused_training(checkpoint_dir: Path) -> dict[str, Any]:
    """The training record of a checkpoint trained earlier (``--reuse-checkpoint``)."""
    record = checkpoint_dir / TRAINING_RECORD
    if record.is_file():
        training: dict[str, Any] = json.loads(record.read_text(encoding="utf-8"))
    else:
        training = {
            "checkpoint_dir": str(checkpoint_dir),
            "note": f"reused checkpoint without {TRAINING_RECORD}: its training is not recorded",
        }
    training["reused_by"] = command_line()
    click.echo(f"reusing the checkpoint in {checkpoint_dir} (--reuse-checkpoint): not training")
    return training


@model.command(name="evaluate")
@model_dir_option
@data_option
@split_option("--split", "test", "Split or line range to evaluate on; repeatable.")
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

    with user_errors():
        scorer = Scorer.load(model_dir)
        evaluation = evaluate(scorer, data_dir, split)
        if not no_record:
            record_metrics(model_dir, evaluation, command_line())
    _console.print(*evaluation.tables())
    if plot is not None:
        plot_confusion(evaluation, plot, title=f"{scorer.version} on {', '.join(split)}")
        click.echo(f"confusion matrix written to {plot}")


@model.command()
@model_dir_option
@data_option
@click.option(
    "--split",
    default="test",
    show_default=True,
    callback=lambda c, p, v: splits(c, p, (v,))[0],
    help="Split or line range whose tweets are scored.",
)
@click.option(
    "--checkpoint",
    type=EXISTING_DIR,
    default=None,
    help="PyTorch checkpoint of the model [default: the folder's source_checkpoint].",
)
@click.option(
    "--fp32-model",
    type=EXISTING_DIR,
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
@batch_size_option
@threads_option(None, "Threads for every candidate [default: the cores available].")
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
    Runtime; macro recall of int8 vs fp32; the ceiling (bare ONNX Runtime on length-sorted
    windows of 1,024 tweets, the best of sub-batches of 32 and 64: what a consumer replica is
    measured against). Without the folder's PyTorch checkpoint, the ceiling only. The last
    line printed is one JSON object."""
    from model.bench import BenchConfig, checkpoint_of, run_bench, run_ceiling
    from model.scorer import available_cores

    with user_errors():
        checkpoint = checkpoint or checkpoint_of(model_dir)
        if checkpoint is None:
            click.echo(
                f"the PyTorch checkpoint of {model_dir} is not on disk (--checkpoint DIR): "
                "the ceiling only"
            )
            figures = run_ceiling(model_dir, data_dir, split, limit, threads or available_cores())
        else:
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


for _command in COMMANDS:
    model.add_command(_command)
