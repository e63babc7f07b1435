"""How well predicted labels agree with gold labels: TweetEval's figures from a confusion matrix.

One definition for every place that measures a model: ``model evaluate`` on a data set, online
quality from late gold labels (``storage.quality``), shadow comparison and rollback (the model
registry), retraining gates. Macro-averaged recall over the classes is TweetEval's official
sentiment metric. A class with no gold label in the matrix has no recall (NaN, ``None`` in
documents) and is left out of the macro averages, so a small online window that happens to hold
no positive post is not scored as if the model had missed every positive one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


def ratio(numerator: npt.NDArray[Any], denominator: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """``numerator / denominator`` element-wise, NaN where the denominator is 0."""
    num = numerator.astype(np.float64)
    den = denominator.astype(np.float64)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def _mean(values: npt.NDArray[np.float64]) -> float:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def rounded(value: float, digits: int = 4) -> float | None:
    """``value`` rounded for a JSON document; None for NaN (no data)."""
    return None if np.isnan(value) else round(float(value), digits)


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix over ``labels``: rows are gold labels, columns predicted labels."""

    labels: tuple[str, ...]
    matrix: npt.NDArray[np.int64]

    @classmethod
    def empty(cls, labels: Sequence[str]) -> Confusion:
        return cls(tuple(labels), np.zeros((len(labels), len(labels)), dtype=np.int64))

    @classmethod
    def from_ids(
        cls,
        labels: Sequence[str],
        gold_ids: Sequence[int] | npt.NDArray[np.int64],
        predicted_ids: Sequence[int] | npt.NDArray[np.int64],
    ) -> Confusion:
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
        np.add.at(matrix, (np.asarray(gold_ids), np.asarray(predicted_ids)), 1)
        return cls(tuple(labels), matrix)

    @classmethod
    def from_counts(
        cls, labels: Sequence[str], counts: Iterable[tuple[str, str, int]]
    ) -> Confusion:
        """From ``(gold, predicted, count)`` rows; rows naming a label outside ``labels`` are
        ignored (a stray gold header value is no class of the model)."""
        index = {label: i for i, label in enumerate(labels)}
        confusion = cls.empty(labels)
        for gold, predicted, count in counts:
            if gold in index and predicted in index:
                confusion.matrix[index[gold], index[predicted]] += count
        return confusion

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    @property
    def support(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.matrix.sum(axis=1), dtype=np.int64)

    @property
    def recall(self) -> npt.NDArray[np.float64]:
        return ratio(np.diag(self.matrix), self.support)

    @property
    def precision(self) -> npt.NDArray[np.float64]:
        return ratio(np.diag(self.matrix), self.matrix.sum(axis=0))

    @property
    def f1(self) -> npt.NDArray[np.float64]:
        p, r = np.nan_to_num(self.precision), self.recall
        return ratio(2 * p * r, p + r)

    @property
    def macro_recall(self) -> float:
        """Mean recall over the classes with gold labels (NaN when there are none)."""
        return _mean(self.recall)

    @property
    def macro_f1(self) -> float:
        return _mean(self.f1)

    @property
    def accuracy(self) -> float:
        total = self.total
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def per_class(self) -> dict[str, dict[str, float | int | None]]:
        """Precision, recall, F1 and support of every label (None where undefined)."""
        precision, recall, f1, support = self.precision, self.recall, self.f1, self.support
        return {
            label: {
                "precision": rounded(precision[i]),
                "recall": rounded(recall[i]),
                "f1": rounded(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(self.labels)
        }

    def figures(self) -> dict[str, Any]:
        """The headline figures, per-class figures and matrix as one JSON-ready document."""
        return {
            "n": self.total,
            "macro_recall": rounded(self.macro_recall),
            "accuracy": rounded(self.accuracy),
            "macro_f1": rounded(self.macro_f1),
            "per_class": self.per_class(),
            "confusion_matrix": self.matrix.tolist(),
        }
