"""``model bench``: the scorer's throughput against PyTorch and against bare ONNX Runtime, and
what int8 costs in macro recall against the fp32 export of the same checkpoint; and the
ceiling (:func:`ceiling`), for any model folder.

All candidates score the same tweets in one process, one after the other, with the same number
of threads; each is warmed up first so start-up costs do not count.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from model.data import read_split
from model.evaluate import evaluate
from model.export import export_model
from model.metadata import ModelMetadata
from model.scorer import Scorer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    model_dir: Path
    data_dir: Path
    split: str
    checkpoint: Path
    fp32_model_dir: Path | None
    limit: int
    pipeline_limit: int
    batch_size: int
    threads: int


def _throughput(run: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    run()
    return n / (time.perf_counter() - started)


def _bare_session_run(scorer: Scorer, texts: Sequence[str]) -> float:
    """session.run alone on the scorer's runs, tokenised, sorted and padded beforehand, as many
    at once as the scorer runs them: what the scorer's own work (tokenising, softmax) costs."""
    runs = [feeds for _rows, feeds in scorer.batches(texts)]
    output = [scorer.session.get_outputs()[0].name]
    with ThreadPoolExecutor(scorer.workers) as pool:
        return _throughput(
            lambda: list(pool.map(lambda feeds: scorer.session.run(output, feeds), runs)),
            len(texts),
        )


def _one_text_at_a_time(scorer: Scorer, texts: Sequence[str]) -> dict[str, float]:
    """The scorer called once per text (as the pipeline is), and how far those scores are from
    the batched ones: int8 activation scales are per batch tensor (docs/model.md)."""
    single: list[npt.NDArray[np.float32]] = []
    speed = _throughput(
        lambda: single.extend(scorer.score([t]).probabilities[0] for t in texts), len(texts)
    )
    batched = scorer.score(texts).probabilities
    one_by_one = np.stack(single)
    return {
        "scorer_one_text_per_call_tweets_per_s": speed,
        "batched_vs_single_max_abs_prob_diff": float(np.abs(batched - one_by_one).max()),
        "batched_vs_single_label_agreement": float(
            (batched.argmax(axis=1) == one_by_one.argmax(axis=1)).mean()
        ),
    }


def _torch_figures(config: BenchConfig, texts: Sequence[str], max_length: int) -> dict[str, float]:
    """Tweets/s of the transformers pipeline (one call per text) and of batched PyTorch."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.set_num_threads(config.threads)
    tokenizer = AutoTokenizer.from_pretrained(config.checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(config.checkpoint).eval()
    classify = pipeline(
        "text-classification", model=model, tokenizer=tokenizer, device=-1, top_k=None
    )
    one_by_one = list(texts[: config.pipeline_limit])
    classify(one_by_one[:4], truncation=True, max_length=max_length)  # warm-up

    def per_text() -> None:
        for text in one_by_one:
            classify(text, truncation=True, max_length=max_length)

    # Batched PyTorch gets the scorer's own advantages: length-sorted batches, dynamic padding.
    ordered = sorted(texts, key=len)
    batches = [
        ordered[i : i + config.batch_size] for i in range(0, len(ordered), config.batch_size)
    ]

    def batched() -> None:
        with torch.inference_mode():
            for batch in batches:
                inputs = tokenizer(
                    batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
                )
                model(**inputs)

    return {
        "pipeline_tweets_per_s": _throughput(per_text, len(one_by_one)),
        "torch_batched_tweets_per_s": _throughput(batched, len(texts)),
    }


def run_bench(config: BenchConfig) -> dict[str, Any]:
    tweets = read_split(config.data_dir, config.split)
    texts = [t.text for t in tweets[: config.limit]]
    scorer = Scorer.load(config.model_dir, threads=config.threads, batch_size=config.batch_size)
    scorer.score(texts[: config.batch_size])  # warm-up
    figures: dict[str, Any] = {
        "model_version": scorer.version,
        "cpu": cpu(),
        "split": config.split,
        "tweets": len(texts),
        "pipeline_tweets": min(len(texts), config.pipeline_limit),
        "threads": config.threads,
        "batch_size": config.batch_size,
        "scorer_tweets_per_s": _throughput(lambda: scorer.score(texts), len(texts)),
        "bare_ort_tweets_per_s": _bare_session_run(scorer, texts),
        "ceiling_tweets_per_s": best_ceiling(config.model_dir, texts, config.threads).tweets_per_s,
        **_one_text_at_a_time(scorer, texts[: config.pipeline_limit]),
    }
    # Pre-processed as the scorer does it, so PyTorch sees exactly the same token ids.
    prepared = [scorer.prepare(text) for text in texts]
    figures.update(_torch_figures(config, prepared, scorer.metadata.max_length))
    with tempfile.TemporaryDirectory(prefix="bench-fp32-") as tmp:
        fp32_dir = config.fp32_model_dir
        if fp32_dir is None:
            fp32_dir = Path(tmp)
            export_model(
                str(config.checkpoint),
                fp32_dir,
                quantization="none",
                max_length=scorer.metadata.max_length,
                preprocessing=scorer.metadata.preprocessing,
            )
        fp32 = Scorer.load(fp32_dir, threads=config.threads, batch_size=config.batch_size)
        fp32.score(texts[: config.batch_size])
        figures["fp32_scorer_tweets_per_s"] = _throughput(lambda: fp32.score(texts), len(texts))
        fp32_recall = evaluate(fp32, config.data_dir, [config.split]).macro_recall
    int8_recall = evaluate(scorer, config.data_dir, [config.split]).macro_recall
    figures.update(
        int8_macro_recall=int8_recall,
        fp32_macro_recall=fp32_recall,
        int8_minus_fp32_macro_recall_points=100 * (int8_recall - fp32_recall),
        scorer_vs_pipeline=figures["scorer_tweets_per_s"] / figures["pipeline_tweets_per_s"],
        scorer_vs_torch_batched=figures["scorer_tweets_per_s"]
        / figures["torch_batched_tweets_per_s"],
        scorer_vs_bare_ort=figures["scorer_tweets_per_s"] / figures["bare_ort_tweets_per_s"],
        int8_vs_fp32_speed=figures["scorer_tweets_per_s"] / figures["fp32_scorer_tweets_per_s"],
    )
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in figures.items()}


def run_ceiling(
    model_dir: Path, data_dir: Path, split: str, limit: int, threads: int
) -> dict[str, Any]:
    """The ceiling alone (:func:`ceiling`): what ``model bench`` gives for a folder whose PyTorch
    checkpoint is not on disk."""
    texts = [t.text for t in read_split(data_dir, split)[:limit]]
    best = best_ceiling(model_dir, texts, threads)
    return {
        "model_version": ModelMetadata.read(model_dir).version,
        "cpu": cpu(),
        "split": split,
        "tweets": len(texts),
        "threads": threads,
        "ceiling_tweets_per_s": round(best.tweets_per_s, 1),
        "ceiling_tweets_per_cpu_s": round(best.tweets_per_cpu_s, 1),
        "ceiling_sub_batch": best.sub_batch,
        "ceiling_spin": best.spin,
    }


def checkpoint_of(model_dir: Path) -> Path | None:
    """The PyTorch checkpoint a model folder was exported from, when it is still on disk."""
    source = Path(ModelMetadata.read(model_dir).source_checkpoint)
    return source if (source / "config.json").is_file() else None


CEILING_WINDOW = 1024  # posts sorted by length together, as the consumer's largest batches are
CEILING_SUB_BATCHES = (32, 64)


@dataclass(frozen=True, order=True)
class Ceiling:
    """The most a replica can score: bare ``session.run`` on length-sorted windows."""

    tweets_per_s: float
    # Per second of this process's CPU time (all its threads); the best configuration here
    # need not be the fastest by wall-clock on a loaded machine, so each is its own maximum.
    tweets_per_cpu_s: float
    sub_batch: int  # of CEILING_SUB_BATCHES, the one with the best wall-clock rate
    spin: bool = False  # whether ONNX Runtime's threads spin-waited (Scorer.load), likewise

    def best_with(self, other: Ceiling) -> Ceiling:
        fastest = max(self, other)
        return replace(fastest, tweets_per_cpu_s=max(self.tweets_per_cpu_s, other.tweets_per_cpu_s))


def best_ceiling(model_dir: Path, texts: Sequence[str], threads: int | None = None) -> Ceiling:
    """:func:`ceiling` with ONNX Runtime's threads sleeping between runs (as the scorer loads
    the model) and spinning (its own default): the better of the two. The session runs one run
    at a time on every core, as bare ONNX Runtime does (``parallelism="ops"``)."""
    sleeping, spinning = (
        ceiling(
            Scorer.load(model_dir, threads=threads, spin=spin, parallelism="ops"), texts, spin=spin
        )
        for spin in (False, True)
    )
    return sleeping.best_with(spinning)


def ceiling(
    scorer: Scorer, texts: Sequence[str], window: int = CEILING_WINDOW, *, spin: bool = False
) -> Ceiling:
    """Bare ``session.run`` on windows of ``window`` texts, each tokenised, sorted by length and
    padded beforehand, in sub-batches of 32 and of 64: the better of the two (by wall-clock, and
    by CPU time, each on its own). Nothing else runs
    (no tokenising, no softmax, no broker, no database): what the pipeline is measured against.
    ``spin``: how ``scorer`` was loaded (recorded in the result).
    """
    output = [scorer.session.get_outputs()[0].name]
    best: Ceiling | None = None
    for sub_batch in CEILING_SUB_BATCHES:
        sized = scorer.resized(sub_batch)
        runs = [
            feeds
            for start in range(0, len(texts), window)
            for _rows, feeds in sized.batches(texts[start : start + window])
        ]
        for feeds in runs[: -(-min(window, len(texts)) // sub_batch)]:
            scorer.session.run(output, feeds)  # warm-up: one window, so every shape is seen
        started, cpu_started = time.perf_counter(), time.process_time()
        for feeds in runs:
            scorer.session.run(output, feeds)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        figure = Ceiling(len(texts) / wall, len(texts) / max(cpu, 1e-9), sub_batch, spin)
        best = figure if best is None else best.best_with(figure)
    assert best is not None
    return best


# The instruction sets ONNX Runtime's int8 kernels use: figures from machines that differ here
# are not comparable, so every figure is printed beside them.
CPU_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu() -> str:
    """The CPU's model name and which of ``CPU_FLAGS`` it has (Linux; "unknown" elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    fields: dict[str, str] = {}
    for key, _, value in (line.partition(":") for line in lines):
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    found = " ".join(flag for flag in CPU_FLAGS if flag in flags) or "none of " + ", ".join(
        CPU_FLAGS
    )
    return f"{fields.get('model name', 'unknown')}; {found}"
