"""One retrain: labelled posts -> data set -> fine-tuned candidate -> int8 export with its drift
profile -> candidate and active version scored on the same held-out posts -> registry (and
shadow or promotion, as the gate says).

Training starts from the active version's PyTorch checkpoint when the registry holds one (every
retrained version stores its own), else from ``base``. Each stage is timed; the record (the
options, the data set's counts, the losses, both figures, the stage times, the MLflow run id)
goes into the candidate's ``training`` metadata, so the registry row keeps it with or without
MLflow.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from language.identify import UNDETERMINED
from model.data import TASK, read_splits
from model.metadata import ModelMetadata, Preprocessing
from registry.store import ModelRegistry, ModelVersion
from retrain.dataset import Example, Holdout, RetrainData, build
from retrain.gate import GateDecision, judge
from retrain.tracking import Run, tracked_run
from storage.connection import connect
from storage.labelled_posts import labelled_since
from stream_core.contract import LABELS

log = structlog.get_logger(__name__)

HELD_OUT_SPLIT = "heldout"
TRAIN_SPLIT = "train"
STAGES = ("read", "dataset", "train", "export", "evaluate", "register")


class RetrainError(RuntimeError):
    """The retrain cannot go on (too few labels, a bad option): the message says why."""


@dataclass(frozen=True)
class RetrainOptions:
    since: timedelta
    holdout: Holdout = field(default_factory=lambda: Holdout(share=0.2))
    base: str | None = None  # the encoder when no active version has a checkpoint
    base_data: Path | None = None  # TweetEval-format folder mixed into training
    base_splits: tuple[str, ...] = ("train",)
    epochs: int = 1
    learning_rate: float = 5e-5
    batch_size: int = 32
    seed: int = 42
    threads: int = 2
    shadow: bool = False
    shadow_sample: float = 1.0
    promote_margin: float | None = None  # --promote-if-better
    min_train: int = 200
    min_held_out: int = 100
    out: Path | None = None  # keep the candidate folder (and its checkpoint) here

    def params(self) -> dict[str, Any]:
        return {
            "since": str(self.since),
            "holdout": str(self.holdout),
            "base": self.base,
            "base_data": str(self.base_data) if self.base_data else None,
            "base_splits": ",".join(self.base_splits),
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "shadow": self.shadow,
            "promote_margin": self.promote_margin,
            "min_train": self.min_train,
            "min_held_out": self.min_held_out,
        }


@dataclass
class RetrainResult:
    version: str
    status: str  # the candidate's status at the end: registered, shadow or active
    started_from: str  # the checkpoint training started from
    data: RetrainData
    gate: GateDecision
    stage_seconds: dict[str, float]
    record: dict[str, Any]
    mlflow_run_id: str | None
    candidate_dir: Path


Report = Callable[[str], None]


class _Stages:
    """Times each stage, logs it, and tells the user what runs now (``report``)."""

    def __init__(self, report: Report, run: Run) -> None:
        self.seconds: dict[str, float] = {}
        self._report = report
        self._run = run

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        number = STAGES.index(name) + 1
        self._report(f"[{number}/{len(STAGES)}] {what}")
        started = time.monotonic()
        yield
        self.seconds[name] = round(time.monotonic() - started, 2)
        self._run.log_metrics({f"stage_{name}_s": self.seconds[name]})
        log.info("retrain stage done", stage=name, seconds=self.seconds[name])


def retrain(
    database_url: str,
    options: RetrainOptions,
    *,
    cache_dir: Path,
    report: Report = print,
    now: datetime | None = None,
) -> RetrainResult:
    """Run the whole loop once; RetrainError when it cannot (nothing registered then)."""
    registry = ModelRegistry(database_url)
    since = (now or datetime.now(UTC)) - options.since
    active = registry.with_status("active")
    with tracked_run(f"retrain-since-{since:%Y%m%dT%H%M}") as run:
        run.log_params(options.params())
        stages = _Stages(report, run)
        with tempfile.TemporaryDirectory(prefix="retrain-") as tmp:
            work = Path(options.out) if options.out else Path(tmp)
            return _retrain(
                registry=registry,
                database_url=database_url,
                options=options,
                since=since,
                active=active,
                work=work,
                cache_dir=cache_dir,
                stages=stages,
                run=run,
                report=report,
            )


def _retrain(
    *,
    registry: ModelRegistry,
    database_url: str,
    options: RetrainOptions,
    since: datetime,
    active: ModelVersion | None,
    work: Path,
    cache_dir: Path,
    stages: _Stages,
    run: Run,
    report: Report,
) -> RetrainResult:
    from model.evaluate import evaluate
    from model.export import export_model
    from model.profile import write_reference_profile
    from model.scorer import Scorer
    from model.train import TrainingConfig, fine_tune

    active_meta = ModelMetadata.model_validate(active.metadata) if active else None
    labels = active_meta.labels if active_meta else LABELS
    languages = [*(active_meta.languages if active_meta else ("en",)), UNDETERMINED]
    preprocessing: Preprocessing = active_meta.preprocessing if active_meta else "cardiffnlp"
    max_length = active_meta.max_length if active_meta else 128

    with stages.stage("read", f"reading labelled posts since {since:%Y-%m-%d %H:%M} UTC"):
        with connect(database_url, "sentiment-stream retrain") as conn:
            posts = labelled_since(conn, since, languages)
        report(f"      {len(posts)} labelled posts in {', '.join(languages)}")

    with stages.stage("dataset", "building the leak-free data set"):
        base = _base_examples(options, labels)
        data = build([p for p in posts if p.label in labels], options.holdout, base)
        _check_counts(data, options, len(posts))
        for disagreement in data.disagreements:
            log.warning(
                "labels disagree",
                text=disagreement.text[:80],
                votes=disagreement.votes,
                kept=disagreement.kept or "none (tie: dropped)",
            )
        summary = data.summary()
        run.log_metrics({key: float(value) for key, value in summary.items()})
        report("      " + ", ".join(f"{key} {value}" for key, value in summary.items()))
        data_dir = _write_tweeteval(work / "data", data, labels)

    start, started_from = _starting_point(registry, active, options, cache_dir)
    checkpoint = work / "retrain"  # the version is named retrain-<sha256 of its ONNX file>
    estimate = _estimate_s(active, len(data.train) * options.epochs)
    with stages.stage(
        "train",
        f"fine-tuning from {started_from}: {len(data.train)} examples x {options.epochs} epochs"
        + (f", about {estimate / 60:.1f} min at the last retrain's rate" if estimate else ""),
    ):
        config = TrainingConfig(
            base=str(start),
            data_dir=data_dir,
            train_splits=(TRAIN_SPLIT,),
            epochs=options.epochs,
            learning_rate=options.learning_rate,
            max_length=max_length,
            batch_size=options.batch_size,
            seed=options.seed,
            preprocessing=preprocessing,
            threads=options.threads,
        )
        provenance = fine_tune(config, checkpoint)
        for epoch, loss in enumerate(provenance["epoch_losses"], 1):
            run.log_metrics({"train_loss": loss}, step=epoch)

    candidate_dir = work / "candidate"
    with stages.stage("export", "exporting int8-static with the drift reference profile"):
        export_model(
            str(checkpoint),
            candidate_dir,
            quantization="int8-static",
            max_length=max_length,
            preprocessing=preprocessing,
        )
        held_out_texts = [example.text for example in data.held_out]
        write_reference_profile(candidate_dir, held_out_texts, source="retrain held-out posts")

    with stages.stage(
        "evaluate", f"scoring candidate and active version on {len(data.held_out)} held-out posts"
    ):
        candidate = evaluate(Scorer.load(candidate_dir), data_dir, [HELD_OUT_SPLIT])
        active_figure = None
        if active is not None:
            active_dir = registry.fetch(active.version, cache_dir)
            active_figure = evaluate(Scorer.load(active_dir), data_dir, [HELD_OUT_SPLIT])
        decision = judge(
            candidate.macro_recall,
            active_figure.macro_recall if active_figure else None,
            options.promote_margin,
        )
        report(f"      {decision.reason}")
        run.log_metrics(
            {"candidate_macro_recall": candidate.macro_recall}
            | ({"active_macro_recall": active_figure.macro_recall} if active_figure else {})
        )

    record: dict[str, Any] = {
        "kind": "retrain",
        "options": options.params(),
        "started_from": started_from,
        "active_version": active.version if active else None,
        "since": since.isoformat(),
        "languages": languages,
        "dataset": data.summary(),
        "disagreements": [vars(d) for d in data.disagreements[:50]],
        "gate": decision.document(),
        "training": provenance,
        "train_examples_per_s": round(
            len(data.train) * options.epochs / max(stages.seconds["train"], 1e-9), 2
        ),
        "mlflow_run_id": run.run_id,
    }
    metrics = candidate.as_metrics() | {
        "held_out": "retrain held-out posts (the newest labelled window)",
        "active": active_figure.as_metrics() if active_figure else None,
    }
    with stages.stage("register", "registering the candidate with both figures"):
        record["stage_seconds"] = dict(stages.seconds)
        metadata = ModelMetadata.read(candidate_dir)
        metadata.with_updates(training=record, metrics=metrics).write(candidate_dir)
        run.log_folder(candidate_dir, "model")
        version = registry.register(
            candidate_dir, note=decision.reason, checkpoint=checkpoint
        ).version.version
        status = "registered"
        if decision.promote:
            registry.promote(version, reason=f"retrain gate: {decision.reason}")
            status = "active"
        elif options.shadow:
            registry.shadow(version, sample=options.shadow_sample, reason=decision.reason)
            status = "shadow"
        report(f"      {version}: {status}")
    return RetrainResult(
        version=version,
        status=status,
        started_from=started_from,
        data=data,
        gate=decision,
        stage_seconds=dict(stages.seconds),
        record=record,
        mlflow_run_id=run.run_id,
        candidate_dir=candidate_dir,
    )


def _base_examples(options: RetrainOptions, labels: Sequence[str]) -> list[Example]:
    if options.base_data is None:
        return []
    from model.data import read_label_names

    names = read_label_names(options.base_data)
    tweets = read_splits(options.base_data, list(options.base_splits))
    kept = [t for t in tweets if names[t.label_id] in labels]
    return [Example(t.text, names[t.label_id], (), None) for t in kept]


def _check_counts(data: RetrainData, options: RetrainOptions, posts: int) -> None:
    train = len(data.train)
    held = len(data.held_out)
    if train >= options.min_train and held >= options.min_held_out:
        return
    distinct = posts - data.duplicate_rows - data.folded_posts
    raise RetrainError(
        f"too few labelled posts: training needs at least {options.min_train} examples and has"
        f" {train}, evaluation needs at least {options.min_held_out} held-out examples and has"
        f" {held} ({posts} labelled posts read, {distinct} distinct texts): widen --since, add"
        " --base-data, lower --min-train / --min-held-out, or wait for more labels"
    )


def _write_tweeteval(folder: Path, data: RetrainData, labels: Sequence[str]) -> Path:
    """The data set in the TweetEval layout that model/train.py and model/evaluate.py read."""
    task = folder / TASK
    task.mkdir(parents=True, exist_ok=True)
    (task / "mapping.txt").write_text(
        "".join(f"{i}\t{label}\n" for i, label in enumerate(labels)), encoding="utf-8"
    )
    for split, examples in ((TRAIN_SPLIT, data.train), (HELD_OUT_SPLIT, data.held_out)):
        texts = "".join(" ".join(e.text.split()) + "\n" for e in examples)  # one line each
        ids = "".join(f"{labels.index(e.label)}\n" for e in examples)
        (task / f"{split}_text.txt").write_text(texts, encoding="utf-8")
        (task / f"{split}_labels.txt").write_text(ids, encoding="utf-8")
    return folder


def _starting_point(
    registry: ModelRegistry, active: ModelVersion | None, options: RetrainOptions, cache: Path
) -> tuple[Path | str, str]:
    """The checkpoint to fine-tune, and what it is in words."""
    if active is not None:
        stored = registry.fetch_checkpoint(active.version, cache)
        if stored is not None:
            return stored, f"the checkpoint of the active version {active.version}"
    if options.base is not None:
        return options.base, f"the base {options.base}"
    from model.encoders import minilm_l6_v2

    return minilm_l6_v2(), "the base encoder all-MiniLM-L6-v2"


def _estimate_s(active: ModelVersion | None, examples: int) -> float | None:
    """Seconds the training should take at the rate the active version's retrain measured."""
    training = active.metadata.get("training") if active else None
    rate = training.get("train_examples_per_s") if isinstance(training, dict) else None
    return examples / rate if isinstance(rate, int | float) and rate > 0 else None
