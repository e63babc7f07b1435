"""Every export format of one checkpoint, measured in one run (issue 15).

For int8-static, int8-dynamic and fp32 (``none``) it prints:

1. throughput, tweets/s wall-clock and per CPU-second of this process, with 1 and 2 intra-op
   threads; rounds are interleaved (format after format, round after round) so that the load of
   a shared machine falls on all formats alike, and the ratio to int8-dynamic is given;
2. batch invariance: the largest probability difference between batched scoring (sub-batches of
   32, length-sorted, as the scorer does) and one-by-one scoring, and the share of equal labels;
3. macro recall on the evaluation lines (TweetEval test[6000:8000] by default);
4. the CPU and its flags (compare figures only between runs that print the same).

The last line is JSON::

    python -m benchmarks.quantization_bench --checkpoint CKPT --data ../shared/data/tweeteval
    python -m benchmarks.quantization_bench --model int8-static=DIR --model int8-dynamic=DIR ...
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import cpu_description
from model.data import read_split
from model.evaluate import evaluate
from model.export import export_model
from model.metadata import QUANTIZATIONS, Quantization
from model.scorer import Scorer

REFERENCE: Quantization = "int8-dynamic"


def timed(scorer: Scorer, texts: list[str]) -> tuple[float, float]:
    """(tweets per wall-clock second, tweets per CPU-second of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    scorer.score(texts)
    return len(texts) / (time.perf_counter() - wall), len(texts) / (time.process_time() - cpu)


def invariance(folder: Path, texts: list[str]) -> dict[str, float]:
    scorer = Scorer.load(folder, threads=1, batch_size=32)
    batched = scorer.score(texts).probabilities
    alone = np.stack([scorer.score([text]).probabilities[0] for text in texts])
    return {
        "max_prob_diff_batched_vs_alone": float(np.abs(batched - alone).max()),
        "label_agreement": float((batched.argmax(axis=1) == alone.argmax(axis=1)).mean()),
    }


def measure(folders: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    texts = [t.text for t in read_split(args.data, args.split)]
    timed_texts = texts[: args.limit]
    scorers = {
        (name, threads): Scorer.load(folder, threads=threads, batch_size=32)
        for name, folder in folders.items()
        for threads in (1, 2)
    }
    for scorer in scorers.values():
        scorer.score(timed_texts[:64])  # warm-up
    rounds: dict[tuple[str, int], list[tuple[float, float]]] = {key: [] for key in scorers}
    for _ in range(args.rounds):
        for key, scorer in scorers.items():
            rounds[key].append(timed(scorer, timed_texts))
    figures: dict[str, Any] = {}
    for name, folder in folders.items():
        entry: dict[str, Any] = {}
        for threads in (1, 2):
            wall = float(np.median([w for w, _ in rounds[name, threads]]))
            per_cpu = float(np.median([c for _, c in rounds[name, threads]]))
            ref_wall = float(np.median([w for w, _ in rounds[REFERENCE, threads]]))
            ref_cpu = float(np.median([c for _, c in rounds[REFERENCE, threads]]))
            entry[f"threads_{threads}"] = {
                "tweets_per_s": round(wall, 1),
                "tweets_per_cpu_s": round(per_cpu, 1),
                "wall_vs_int8_dynamic": round(wall / ref_wall, 3),
                "per_cpu_s_vs_int8_dynamic": round(per_cpu / ref_cpu, 3),
            }
        entry.update(invariance(folder, texts[: args.invariance_limit]))
        scorer = Scorer.load(folder, batch_size=32)
        entry["macro_recall"] = round(evaluate(scorer, args.data, [args.split]).macro_recall, 4)
        entry["version"] = scorer.version
        figures[name] = entry
    reference_recall = figures[REFERENCE]["macro_recall"]
    for entry in figures.values():
        entry["macro_recall_points_vs_int8_dynamic"] = round(
            100 * (entry["macro_recall"] - reference_recall), 2
        )
    return figures


def print_table(figures: dict[str, Any], cpu: str, args: argparse.Namespace) -> None:
    print(f"CPU: {cpu}")
    print(f"{args.limit} tweets of {args.split} timed, {args.rounds} interleaved rounds, median")
    header = (
        "format        thr  tweets/s  /CPU-s  wall x dyn  CPU-s x dyn  max diff  labels  recall"
    )
    print(header)
    for name, entry in figures.items():
        for threads in (1, 2):
            t = entry[f"threads_{threads}"]
            print(
                f"{name:13} {threads:>3} {t['tweets_per_s']:>9.1f} {t['tweets_per_cpu_s']:>7.1f}"
                f" {t['wall_vs_int8_dynamic']:>11.3f} {t['per_cpu_s_vs_int8_dynamic']:>12.3f}"
                f" {entry['max_prob_diff_batched_vs_alone']:>9.2g}"
                f" {entry['label_agreement']:>7.2%} {entry['macro_recall']:>7.4f}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="exported once per format")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="FORMAT=DIR",
        help="an already exported folder of the checkpoint, instead of exporting that format",
    )
    parser.add_argument("--data", type=Path, required=True, help="TweetEval-format folder")
    parser.add_argument("--split", default="test[6000:8000]")
    parser.add_argument("--limit", type=int, default=1000, help="tweets per timed round")
    parser.add_argument("--invariance-limit", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preprocessing", default="cardiffnlp", choices=["cardiffnlp", "none"])
    args = parser.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.model)
    folders = {name: Path(folder) for name, folder in given.items()}
    missing = [name for name in QUANTIZATIONS if name not in folders]
    if missing and args.checkpoint is None:
        parser.error(f"no folder for {missing}: pass --checkpoint to export them")
    with tempfile.TemporaryDirectory(prefix="quantization-bench-") as tmp:
        for name in missing:
            folders[name] = Path(tmp) / name
            export_model(
                str(args.checkpoint),
                folders[name],
                quantization=name,
                preprocessing=args.preprocessing,
            )
        figures = measure({name: folders[name] for name in QUANTIZATIONS}, args)
    cpu = cpu_description()
    print_table(figures, cpu, args)
    print(json.dumps({"cpu": cpu, "split": args.split, "rounds": args.rounds, **figures}))


if __name__ == "__main__":
    main()
