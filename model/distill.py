"""Soft targets for knowledge distillation: teachers' probabilities on training and unlabelled
tweets. The teachers are model folders, scored with the same ONNX :class:`Scorer` as in
production, so a teacher can be any exported model or several of them (an ensemble)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from model.data import DataError, read_text_lines
from model.progress import progress_bar
from model.scorer import Scorer

log = structlog.get_logger(__name__)

_CHUNK = 256  # texts per Scorer call, so that the progress bar moves


def read_unlabelled(paths: Sequence[Path]) -> list[str]:
    """Tweets, one per line, from files, or from every ``*_text.txt`` under a folder (a
    TweetEval-style layout such as ``other_tasks/``); blank lines are skipped."""
    texts: list[str] = []
    for path in paths:
        files = sorted(path.rglob("*_text.txt")) if path.is_dir() else [path]
        if not files:
            raise DataError(f"{path} holds no *_text.txt file of unlabelled tweets")
        texts += [line for file in files for line in read_text_lines(file) if line.strip()]
    return texts


def teacher_probabilities(
    teachers: Sequence[Path],
    texts: Sequence[str],
    labels: Sequence[str],
    cache_dir: Path | None = None,
) -> npt.NDArray[np.float32]:
    """The teachers' probabilities for ``texts``, averaged: (len(texts), len(labels)).

    With ``cache_dir``, each teacher's probabilities are kept there under a key of its version
    (the ONNX file's hash) and the texts, so other runs (seeds, distillation settings) on the
    same tweets do not score them again: a base-size teacher takes minutes on two cores.
    """
    total = np.zeros((len(texts), len(labels)), dtype=np.float64)
    for teacher in teachers:
        scorer = Scorer.load(teacher)
        if scorer.labels != tuple(labels):
            raise DataError(
                f"teacher {teacher} predicts {list(scorer.labels)}, the data has {list(labels)}"
            )
        key = hashlib.sha256(json.dumps([scorer.version, list(texts)]).encode()).hexdigest()
        cached = cache_dir / f"teacher-{key[:24]}.npy" if cache_dir else None
        if cached is not None and cached.is_file():
            total += np.load(cached)
            log.info("teacher probabilities from the cache", teacher=scorer.version)
            continue
        probabilities = np.empty((len(texts), len(labels)), dtype=np.float32)
        with progress_bar() as bar:
            task = bar.add_task(f"teacher {scorer.version}", total=len(texts), status="")
            for start in range(0, len(texts), _CHUNK):
                chunk = texts[start : start + _CHUNK]
                probabilities[start : start + len(chunk)] = scorer.score(chunk).probabilities
                bar.advance(task, len(chunk))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, probabilities)
        total += probabilities
    return (total / max(len(teachers), 1)).astype(np.float32)
