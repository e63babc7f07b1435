"""``model compare``: several model folders on the same tweets in one run: macro recall and
tweets/s of each, with the CPU they ran on.

Throughput on a shared machine moves with the neighbours' load, so the models are timed in turns
(round-robin, several rounds) and each gets the median of its rounds: a burst of load hits all of
them alike, and only ratios measured in one run are compared.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.data import read_splits
from model.evaluate import Evaluation, evaluate
from model.metadata import utc_now
from model.scorer import Scorer

_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


@dataclass(frozen=True)
class CompareConfig:
    models: tuple[Path, ...]
    data_dir: Path
    splits: tuple[str, ...]
    threads: int
    batch_size: int
    rounds: int


def cpu_description() -> dict[str, Any]:
    """The CPU model name and the SIMD flags that decide int8 speed (Linux /proc/cpuinfo)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return {"model": "unknown", "flags": []}
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in info.splitlines())
        if key.strip() in ("model name", "flags")
    )
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", "unknown"),
        "flags": [flag for flag in _FLAGS_OF_INTEREST if flag in flags],
    }


@dataclass(frozen=True)
class Measured:
    folder: Path
    scorer: Scorer
    evaluation: Evaluation
    rounds_tweets_per_s: tuple[float, ...]

    @property
    def tweets_per_s(self) -> float:
        return statistics.median(self.rounds_tweets_per_s)

    def size_mb(self) -> float:
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file()) / 1e6


def compare(config: CompareConfig) -> list[Measured]:
    texts = [t.text for t in read_splits(config.data_dir, list(config.splits))]
    scorers = [
        Scorer.load(folder, threads=config.threads, batch_size=config.batch_size)
        for folder in config.models
    ]
    evaluations = [evaluate(scorer, config.data_dir, config.splits) for scorer in scorers]
    timings: list[list[float]] = [[] for _ in scorers]
    for _round in range(config.rounds):
        for scorer, times in zip(scorers, timings, strict=True):
            started = time.perf_counter()
            scorer.score(texts)
            times.append(len(texts) / (time.perf_counter() - started))
    return [
        Measured(folder, scorer, evaluation, tuple(times))
        for folder, scorer, evaluation, times in zip(
            config.models, scorers, evaluations, timings, strict=True
        )
    ]


def throughput_record(
    measured: Measured, others: list[Measured], config: CompareConfig, command: str
) -> dict[str, Any]:
    """The ``throughput`` document of metadata.json for one compared model."""
    return {
        "tweets_per_s": round(measured.tweets_per_s, 1),
        "rounds_tweets_per_s": [round(t, 1) for t in measured.rounds_tweets_per_s],
        "splits": list(config.splits),
        "tweets": measured.evaluation.support.sum().item(),
        "threads": config.threads,
        "batch_size": config.batch_size,
        "cpu": cpu_description(),
        "same_run": {
            other.scorer.version: round(other.tweets_per_s, 1)
            for other in others
            if other is not measured
        },
        "measured_at": utc_now().isoformat(),
        "command": command,
    }
