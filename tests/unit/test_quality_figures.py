"""TweetEval's figures from a confusion matrix (stream_core.quality), checked against scipy-free
arithmetic done by hand, and the edge cases of small online windows."""

from __future__ import annotations

import math

import numpy as np

from stream_core.contract import LABELS
from stream_core.quality import Confusion


def test_figures_of_the_default_models_evaluation() -> None:
    # model/assets/default/metadata.json: test[6000:8000].
    confusion = Confusion(LABELS, np.array([[454, 179, 15], [163, 683, 118], [13, 106, 269]]))
    assert confusion.total == 2000
    assert round(confusion.macro_recall, 4) == 0.7008
    assert round(confusion.accuracy, 4) == 0.703
    assert round(confusion.macro_f1, 4) == 0.6995
    assert confusion.per_class()["positive"] == {
        "precision": 0.6692,
        "recall": 0.6933,
        "f1": 0.681,
        "support": 388,
    }


def test_from_ids_and_from_counts_agree() -> None:
    gold = [0, 0, 1, 2, 2, 2]
    predicted = [0, 1, 1, 2, 2, 0]
    by_ids = Confusion.from_ids(LABELS, gold, predicted)
    rows = [("negative", "negative", 1), ("negative", "neutral", 1), ("neutral", "neutral", 1)]
    rows += [("positive", "positive", 2), ("positive", "negative", 1), ("bogus", "neutral", 9)]
    by_counts = Confusion.from_counts(LABELS, rows)
    assert by_ids.matrix.tolist() == by_counts.matrix.tolist()
    assert by_ids.macro_recall == (1 / 2 + 1 + 2 / 3) / 3


def test_a_class_without_gold_labels_is_left_out_of_the_macro_average() -> None:
    # Two negatives (one right), one neutral (right), no positive at all in the window.
    confusion = Confusion.from_ids(LABELS, [0, 0, 1], [0, 2, 1])
    assert confusion.macro_recall == (0.5 + 1.0) / 2
    assert confusion.per_class()["positive"]["recall"] is None
    assert confusion.figures()["n"] == 3


def test_an_empty_window_has_no_figures_rather_than_zeros() -> None:
    empty = Confusion.empty(LABELS)
    assert empty.total == 0
    assert math.isnan(empty.macro_recall) and math.isnan(empty.accuracy)
    figures = empty.figures()
    assert figures["macro_recall"] is None and figures["accuracy"] is None
