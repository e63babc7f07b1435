"""TweetEval's sentiment metrics for a model folder: macro-averaged recall (the official one),
accuracy, macro F1, per-class precision / recall / F1 and the confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.table import Table

from model.data import LabelledTweet, read_label_names, read_splits
from model.metadata import ModelMetadata, utc_now
from model.progress import progress_bar
from model.scorer import Scorer
from stream_core.quality import Confusion, ratio

# Scored in chunks only so that the progress bar moves; the Scorer batches within each.
_CHUNK = 256


@dataclass(frozen=True)
class Evaluation(Confusion):
    """A :class:`~stream_core.quality.Confusion` of a model on named splits of a data set."""

    splits: tuple[str, ...] = ()

    def as_metrics(self) -> dict[str, Any]:
        """The document stored under ``metrics`` in metadata.json."""
        return {
            "metric": "macro_recall",  # TweetEval's official sentiment metric
            "splits": list(self.splits),
            **self.figures(),
            "evaluated_at": utc_now().isoformat(),
        }

    def tables(self) -> tuple[Table, Table]:
        """Per-class figures with the macro averages, and the confusion matrix."""
        title = f"{', '.join(self.splits)}: {self.total} tweets"
        figures = Table(title=title)
        figures.add_column("label")
        for column in ("precision", "recall", "F1", "support"):
            figures.add_column(column, justify="right")
        for i, label in enumerate(self.labels):
            figures.add_row(
                label,
                f"{self.precision[i]:.4f}",
                f"{self.recall[i]:.4f}",
                f"{self.f1[i]:.4f}",
                str(self.support[i]),
            )
        figures.add_section()
        figures.add_row("macro", "", f"{self.macro_recall:.4f}", f"{self.macro_f1:.4f}", "")
        figures.caption = (
            f"macro recall {self.macro_recall:.4f} (TweetEval's metric), "
            f"accuracy {self.accuracy:.4f}, macro F1 {self.macro_f1:.4f}"
        )
        confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
        confusion.add_column("")
        for label in self.labels:
            confusion.add_column(label, justify="right")
        for i, label in enumerate(self.labels):
            confusion.add_row(label, *(str(n) for n in self.matrix[i]))
        return figures, confusion


def predict_ids(
    scorer: Scorer, tweets: Sequence[LabelledTweet], what: str
) -> npt.NDArray[np.int64]:
    """The scorer's label ids for ``tweets``, with a progress bar."""
    predicted = np.empty(len(tweets), dtype=np.int64)
    with progress_bar() as bar:
        task = bar.add_task(what, total=len(tweets), status="")
        for start in range(0, len(tweets), _CHUNK):
            chunk = tweets[start : start + _CHUNK]
            predicted[start : start + len(chunk)] = scorer.score([t.text for t in chunk]).label_ids
            bar.advance(task, len(chunk))
    return predicted


def evaluate(scorer: Scorer, data_dir: Path, splits: Sequence[str]) -> Evaluation:
    """Score the given splits (or line ranges) and compare with their gold labels."""
    names = read_label_names(data_dir)
    if names != scorer.labels:
        raise ValueError(
            f"the model's labels {list(scorer.labels)} differ from the data's {list(names)}"
        )
    tweets = read_splits(data_dir, list(splits))
    predicted = predict_ids(scorer, tweets, f"evaluating {scorer.version}")
    truth = np.array([t.label_id for t in tweets], dtype=np.int64)
    confusion = Confusion.from_ids(names, truth, predicted)
    return Evaluation(names, confusion.matrix, tuple(splits))


def record_metrics(
    model_dir: Path,
    evaluation: Evaluation,
    command: str | None = None,
    throughput: dict[str, Any] | None = None,
) -> ModelMetadata:
    """Write the evaluation (and the command that made it, and a throughput measurement when
    given) into the folder's metadata.json; the ONNX file is untouched."""
    metrics = evaluation.as_metrics()
    if command is not None:
        metrics["command"] = command
    changes: dict[str, Any] = {"metrics": metrics}
    if throughput is not None:
        changes["throughput"] = throughput
    metadata = ModelMetadata.read(model_dir).with_updates(**changes)
    metadata.write(model_dir)
    return metadata


def plot_confusion(evaluation: Evaluation, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    normalised = np.nan_to_num(ratio(evaluation.matrix, evaluation.support[:, None]))
    figure, axes = plt.subplots(figsize=(5, 4.4), dpi=120)
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(evaluation.labels))
    axes.set_xticks(ticks, evaluation.labels)
    axes.set_yticks(ticks, evaluation.labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in ticks:
        for j in ticks:
            colour = "white" if normalised[i, j] > 0.5 else "black"
            text = f"{evaluation.matrix[i, j]}\n{normalised[i, j]:.0%}"
            axes.text(j, i, text, ha="center", va="center", color=colour, fontsize=9)
    axes.set_title(f"{title}\nmacro recall {evaluation.macro_recall:.3f}", fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
