"""Model rollout benchmark: how long a promotion takes to reach every consumer, and what shadow
scoring costs the pipeline.

In one run, with one model (the shipped default unless --model) and the embedded broker and
PostgreSQL (unless given), it prints:

1. swap delay: two replicas (each a ``LiveScorer`` with its own change listener and cache)
   follow the registry while promotions alternate between two versions; from the commit of each
   change to both replicas serving it: median and max (the first swap of each version includes
   its download from PostgreSQL);
2. shadow cost: the same backlog of tweets through the pipeline with no shadow, with a shadow
   scoring every post, and with a 25% sample, interleaved over rounds; posts per CPU-second of
   the process (the shadow thread included) and wall-clock posts/s, each as a share of the
   no-shadow run of its round;
3. the CPU and its instruction-set flags (compare figures only between runs that print the
   same).

    python -m benchmarks.rollout_bench --tweets 2000 --swaps 10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from benchmarks.machine import cpu_description
from benchmarks.pipeline_bench import (
    Timeline,
    create_topic,
    produce,
    services,
    settings_for,
)
from consumer.build import build_pipeline
from consumer.shadow import ShadowScoring
from model.data import SAMPLE_DIR, read_split
from model.metadata import ModelMetadata
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from observability.metrics import PipelineMetrics
from registry.live import LiveScorer
from registry.store import ModelRegistry
from storage.coordination import ChangeListener
from storage.model_registry import CHANNEL
from stream_core.events import PipelineState


def second_version(model: Path, work: Path) -> Path:
    """The same model under another version name (what a promotion switches to)."""
    copy = work / "candidate"
    shutil.copytree(model, copy)
    metadata = ModelMetadata.read(copy)
    metadata.with_updates(version=f"{metadata.version}-b").write(copy)
    return copy


def bench_swaps(url: str, model: Path, work: Path, swaps: int) -> dict[str, float | int]:
    registry = ModelRegistry(url)
    first = registry.register(model, actor="bench").version.version
    second = registry.register(second_version(model, work), actor="bench").version.version
    registry.promote(first, actor="bench")
    replicas, listeners = [], []
    for i in range(2):
        live = LiveScorer(
            registry, Scorer.load(model), cache_dir=work / f"cache-{i}", load=Scorer.load
        )
        live.refresh()
        listener = ChangeListener(url, poll_s=5.0)
        listener.subscribe(CHANNEL, live.refresh_quietly)
        listener.start()
        replicas.append(live)
        listeners.append(listener)
    delays = []
    try:
        for swap in range(swaps):
            target = second if swap % 2 == 0 else first
            started = time.monotonic()
            registry.promote(target, actor="bench")
            while any(live.version != target for live in replicas):
                if time.monotonic() - started > 120:
                    raise SystemExit(f"the replicas did not serve {target} within 120 s")
                time.sleep(0.01)
            delays.append(time.monotonic() - started)
            time.sleep(0.5)
    finally:
        for listener in listeners:
            listener.stop()
    return {
        "swaps": swaps,
        "first_swap_s": round(delays[0], 3),
        "median_s": round(statistics.median(delays), 3),
        "max_s": round(max(delays), 3),
    }


def run_once(
    bootstrap: str, url: str, live: LiveScorer, texts: list[str], args: argparse.Namespace
) -> dict[str, float]:
    topic = f"rollout-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, texts)
    timeline = Timeline(expected=len(texts))
    metrics, state = PipelineMetrics(), PipelineState(model_loaded=True)
    shadow = ShadowScoring(live.shadow, url, metrics)
    settings = settings_for(
        bootstrap, url, topic, batch_size=args.batch_size, batch_wait_ms=args.batch_wait_ms
    )
    pipeline = build_pipeline(
        settings, scorer=live, metrics=metrics, state=state, observers=[timeline, shadow]
    )
    shadow.start()
    cpu_started, wall_started = time.process_time(), time.monotonic()
    runner = threading.Thread(target=pipeline.run, name="pipeline")
    runner.start()
    try:
        if not timeline.done.wait(600):
            raise SystemExit("the pipeline did not finish within 10 minutes")
        shadow.close(timeout_s=120)  # its queued work counts in its cost
        cpu_s, wall_s = time.process_time() - cpu_started, time.monotonic() - wall_started
    finally:
        pipeline.stop()
        runner.join(60)
    dropped = metrics.shadow_posts.labels(outcome="dropped")._value.get()
    return {
        "per_cpu_s": len(texts) / cpu_s,
        "wall_rate": len(texts) / wall_s,  # from the start: group join included, same each run
        "shadow_dropped": dropped,
    }


def bench_shadow(
    bootstrap: str, url: str, model: Path, args: argparse.Namespace
) -> dict[str, object]:
    registry = ModelRegistry(url)
    versions = {v.version for v in registry.versions()}
    live = LiveScorer(
        registry, Scorer.load(model), cache_dir=args.work / "cache-s", load=Scorer.load
    )
    candidate = next(v for v in sorted(versions) if v != live.version)
    texts = [tweet.text for tweet in read_split(SAMPLE_DIR, "val")][: args.tweets]
    rows: dict[str, list[dict[str, float]]] = {"none": [], "all": [], "sample 0.25": []}
    for _ in range(args.rounds):
        for name, sample in (("none", None), ("all", 1.0), ("sample 0.25", 0.25)):
            if sample is None and registry.get(candidate).status == "shadow":
                registry.retire(candidate, actor="bench")  # no shadow this run
            elif sample is not None:
                registry.shadow(candidate, sample=sample, actor="bench")
            live.refresh()
            live.wait_loaded(120)
            rows[name].append(run_once(bootstrap, url, live, texts, args))
    report: dict[str, object] = {}
    for name, runs in rows.items():
        report[name] = {
            "per_cpu_s": [round(r["per_cpu_s"], 1) for r in runs],
            "share_per_cpu_s": [
                round(r["per_cpu_s"] / base["per_cpu_s"], 3)
                for r, base in zip(runs, rows["none"], strict=True)
            ],
            "share_wall": [
                round(r["wall_rate"] / base["wall_rate"], 3)
                for r, base in zip(runs, rows["none"], strict=True)
            ],
            "shadow_dropped": [r["shadow_dropped"] for r in runs],
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--tweets", type=int, default=2000)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batch-wait-ms", type=int, default=100)
    parser.add_argument("--bootstrap")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}", flush=True)
    with (
        tempfile.TemporaryDirectory() as work,
        services(args.bootstrap, args.database_url) as (
            bootstrap,
            url,
        ),
    ):
        args.work = Path(work)
        swaps = bench_swaps(url, args.model, args.work, args.swaps)
        print(f"swap delay, commit -> both replicas serving: {swaps}", flush=True)
        shadow = bench_shadow(bootstrap, url, args.model, args)
        print(f"shadow cost (share of the no-shadow run of the same round): {shadow}", flush=True)
        print(json.dumps({"cpu": cpu_description(), "swaps": swaps, "shadow": shadow}))


if __name__ == "__main__":
    main()
