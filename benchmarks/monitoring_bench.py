"""Model monitoring benchmark: what the elected replica's jobs cost, what they take from the
hot path, and how soon the drift scenario is detected.

In one run, on one PostgreSQL (the embedded one unless ``--database-url``), with the shipped
default model (or ``--model``):

1. cost of one run of each job with every window due (quality; drift per window of
   15m / 1h / 24h), wall and CPU seconds of this process, median of ``--repeats``, with the
   windows holding ``--posts-15m`` / ``--posts-1h`` / ``--posts-24h`` stored posts (a 10%
   labelled sample), and from that the share of one core at the default schedule;
2. the scorer's throughput (the hot path's bulk) with and without the jobs running beside it
   on their real schedule, in alternating rounds, as tweets per second and per CPU-second;
3. drift detection delay: a replay at ``--rate`` posts/s, plain for ``--plain-s`` seconds then
   the drift scenario (producer_sim.feedback.drifted); the drift job runs at every tick of the
   timeline (``--tick-s``, the default interval) and the first tick with a PSI above 0.2 in the
   15m window is the detection (the InputDrift rule then waits its `for:` of 10 minutes).

The last line is JSON.

    python -m benchmarks.monitoring_bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from benchmarks.machine import cpu_description
from benchmarks.storage_bench import fresh_database, server
from model.data import SAMPLE_DIR, read_split
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from monitoring.jobs import MonitoringJobs, served_model
from monitoring.settings import MonitoringSettings
from observability.metrics import PipelineMetrics
from producer_sim.feedback import drifted
from storage import migrate
from storage.urls import libpq_url
from stream_core.contract import LABELS

INSERT = """
INSERT INTO scored_posts (post_id, text, label, prob_negative, prob_neutral, prob_positive,
    model_version, scored_at, kafka_topic, kafka_partition, kafka_offset, gold_label,
    gold_label_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::real[], %s::real[], %s::real[],
    %s::text[], %s::timestamptz[], %s::text[], %s::int[], %s::bigint[], %s::text[],
    %s::timestamptz[])
"""


def store(
    conn: psycopg.Connection[Any],
    version: str,
    texts: Sequence[str],
    probabilities: npt.NDArray[np.float32],
    *,
    gold: Sequence[str],
    times: Sequence[datetime],
    first_offset: int,
    labelled_share: float = 0.1,
) -> None:
    n = len(texts)
    rng = random.Random(first_offset)  # noqa: S311 - a benchmark's sample
    labelled = [rng.random() < labelled_share for _ in range(n)]
    conn.execute(
        INSERT,
        (
            [f"p{first_offset + i}" for i in range(n)],
            list(texts),
            [LABELS[int(row.argmax())] for row in probabilities],
            probabilities[:, 0].tolist(),
            probabilities[:, 1].tolist(),
            probabilities[:, 2].tolist(),
            [version] * n,
            list(times),
            ["posts"] * n,
            [0] * n,
            list(range(first_offset, first_offset + n)),
            [g if keep else None for g, keep in zip(gold, labelled, strict=True)],
            [t if keep else None for t, keep in zip(times, labelled, strict=True)],
        ),
    )


def cycle(values: Sequence[Any], n: int) -> list[Any]:
    return [values[i % len(values)] for i in range(n)]


def timed(action: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def job_costs(
    url: str,
    *,
    scorer: Scorer,
    texts: list[str],
    probs: npt.NDArray[np.float32],
    gold: list[str],
    args: argparse.Namespace,
) -> dict[str, dict[str, float]]:
    now = datetime.now(UTC)
    layout = [  # (posts, window start, window end): each window holds its posts and the shorter
        (args.posts_15m, now - timedelta(minutes=15), now),
        (args.posts_1h - args.posts_15m, now - timedelta(hours=1), now - timedelta(minutes=15)),
        (args.posts_24h - args.posts_1h, now - timedelta(hours=24), now - timedelta(hours=1)),
    ]
    offset = 0
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for n, start, end in layout:
            step = (end - start) / max(n, 1)
            times = [start + step * i for i in range(n)]
            store(
                conn,
                scorer.version,
                cycle(texts, n),
                probs[np.arange(n) % len(texts)],
                gold=cycle(gold, n),
                times=times,
                first_offset=offset,
            )
            offset += n
        conn.execute("ANALYZE scored_posts")
    results: dict[str, dict[str, float]] = {}
    served = served_model(scorer.version, scorer.labels, scorer.folder, scorer.metadata.metrics)
    for task, windows in (
        ("quality (15m,1h,24h)", "15m,1h,24h"),
        ("drift 15m", "15m"),
        ("drift 1h", "1h"),
        ("drift 24h", "24h"),
    ):
        settings = MonitoringSettings.model_validate({"monitor_windows": windows})
        walls, cpus = [], []
        for _ in range(args.repeats):
            jobs = MonitoringJobs(settings, served, PipelineMetrics().monitoring)
            jobs.elected()
            run = jobs.run_quality if task.startswith("quality") else jobs.run_drift
            with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                wall, cpu = timed(lambda run=run, conn=conn: run(conn))  # type: ignore[misc]
            walls.append(wall)
            cpus.append(cpu)
        results[task] = {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}
        print(
            f"  {task:22s} wall {results[task]['wall_s']:.3f} s, CPU {results[task]['cpu_s']:.3f} s"
        )
    return results


def scorer_round(scorer: Scorer, texts: list[str], seconds: float) -> tuple[float, float]:
    """Tweets per second and per CPU-second of this process, scoring for ``seconds``."""
    done, wall, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        scorer.score(texts[:256])
        done += 256
    return done / (time.perf_counter() - wall), done / (time.process_time() - cpu)


def hot_path(
    url: str, scorer: Scorer, texts: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Alternating rounds: the scorer alone, and the scorer with the jobs on their schedule."""
    served = served_model(scorer.version, scorer.labels, scorer.folder, scorer.metadata.metrics)
    jobs = MonitoringJobs(MonitoringSettings(), served, PipelineMetrics().monitoring)
    jobs.elected()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        jobs.run_quality(conn)  # the steady state: every window measured once already
        jobs.run_drift(conn)
    rounds: dict[str, list[tuple[float, float]]] = {"without jobs": [], "with jobs": []}
    for _ in range(args.rounds):
        for name, got in rounds.items():
            stop = threading.Event()
            worker = None
            if name == "with jobs":

                def tick(stop: threading.Event) -> None:
                    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
                        while not stop.is_set():
                            jobs.run_quality(conn)
                            jobs.run_drift(conn)
                            stop.wait(jobs.settings.monitor_interval_s)

                worker = threading.Thread(target=tick, args=(stop,), daemon=True)
                worker.start()
            rate = scorer_round(scorer, texts, args.round_s)
            stop.set()
            if worker is not None:
                worker.join()
            got.append(rate)
            print(f"  {name:13s} {rate[0]:8.1f} tweets/s, {rate[1]:8.1f} per CPU-s")
    medians = {
        name: (statistics.median(r[0] for r in got), statistics.median(r[1] for r in got))
        for name, got in rounds.items()
    }
    return {
        "rounds": rounds,
        "wall_ratio": medians["with jobs"][0] / medians["without jobs"][0],
        "cpu_ratio": medians["with jobs"][1] / medians["without jobs"][1],
    }


def detection_delay(
    url: str,
    scorer: Scorer,
    texts: list[str],
    probs: npt.NDArray[np.float32],
    args: argparse.Namespace,
) -> dict[str, Any]:
    rng = random.Random(7)  # noqa: S311 - a benchmark's sample
    tweets = read_split(SAMPLE_DIR, "val")
    shifted = [drifted(t, i, tweets, rng).text for i, t in enumerate(tweets)]
    shifted_probs = scorer.score(shifted).probabilities
    start = datetime(2030, 1, 1, tzinfo=UTC)
    drift_at = start + timedelta(seconds=args.plain_s)
    total_s = args.plain_s + args.drift_s
    n = int(total_s * args.rate)
    step = timedelta(seconds=1 / args.rate)
    times = [start + step * i for i in range(n)]
    plain_n = int(args.plain_s * args.rate)
    version = "delay-bench"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        phases = ((texts, probs, times[:plain_n]), (shifted, shifted_probs, times[plain_n:]))
        for phase, (phase_texts, phase_probs, phase_times) in enumerate(phases):
            count = len(phase_times)
            store(
                conn,
                version,
                cycle(phase_texts, count),
                phase_probs[np.arange(count) % len(phase_texts)],
                gold=cycle(["neutral"], count),
                times=phase_times,
                first_offset=10_000_000 * (phase + 1),
                labelled_share=0,
            )
        served = served_model(version, scorer.labels, scorer.folder, None)
        clock = [start]
        jobs = MonitoringJobs(
            MonitoringSettings.model_validate({"monitor_windows": "15m"}),
            served,
            PipelineMetrics().monitoring,
            clock=lambda: clock[0],
        )
        metrics = jobs.metrics
        detected: dict[str, Any] = {}
        highest_plain = 0.0
        t = start + timedelta(seconds=args.tick_s)
        while t <= start + timedelta(seconds=total_s):
            clock[0] = t
            jobs.elected()  # every window due at each tick of the timeline
            jobs.run_drift(conn)
            psis = {
                s.labels["feature"]: s.value
                for family in metrics.drift_psi.collect()
                for s in family.samples
            }
            top = max(psis.items(), key=lambda kv: kv[1], default=("", 0.0))
            if t <= drift_at:
                highest_plain = max(highest_plain, top[1])
            elif top[1] > 0.2 and not detected:
                detected = {
                    "delay_s": (t - drift_at).total_seconds(),
                    "feature": top[0],
                    "psi": round(top[1], 3),
                    "over_threshold": sorted(f for f, v in psis.items() if v > 0.2),
                }
            t += timedelta(seconds=args.tick_s)
    return {"detected": detected, "highest_psi_before_drift": round(highest_plain, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--database-url")
    parser.add_argument("--posts-15m", type=int, default=5000)
    parser.add_argument("--posts-1h", type=int, default=20000)
    parser.add_argument("--posts-24h", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-s", type=float, default=40.0)
    parser.add_argument("--rate", type=float, default=20.0, help="Replay posts/s (delay test).")
    parser.add_argument("--plain-s", type=float, default=300.0)
    parser.add_argument("--drift-s", type=float, default=300.0)
    parser.add_argument("--parts", default="1,2,3", help="Which of the three parts to run.")
    parser.add_argument("--tick-s", type=float, default=MonitoringSettings().monitor_interval_s)
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}")
    scorer = Scorer.load(args.model)
    tweets = read_split(SAMPLE_DIR, "val")
    texts = [t.text for t in tweets]
    gold = [LABELS[t.label_id] for t in tweets]
    probs = scorer.score(texts).probabilities
    report: dict[str, Any] = {"cpu": cpu_description()}
    with server(args.database_url) as server_url, fresh_database(server_url) as url:
        migrate.upgrade(url)
        parts = set(args.parts.split(","))
        if "1" in parts or "2" in parts:
            print("1. one run of each job, every window due:")
            costs = job_costs(url, scorer=scorer, texts=texts, probs=probs, gold=gold, args=args)
            interval = MonitoringSettings().monitor_interval_s
            # Steady state: quality and drift 15m and 1h every tick, drift 24h every 15 min.
            per_s = (
                costs["quality (15m,1h,24h)"]["cpu_s"]
                + costs["drift 15m"]["cpu_s"]
                + costs["drift 1h"]["cpu_s"]
            ) / interval + costs["drift 24h"]["cpu_s"] / (24 * 3600 / 96)
            print(f"  steady state, {interval:.0f} s ticks: {per_s:.2%} of one core (this process)")
            report["job_costs"] = costs
            report["core_share"] = per_s
        if "2" in parts:
            print("2. scorer throughput with and without the jobs beside it:")
            report["hot_path"] = hot_path(url, scorer, texts, args)
            print(
                f"  with/without: {report['hot_path']['wall_ratio']:.3f} wall-clock, "
                f"{report['hot_path']['cpu_ratio']:.3f} per CPU-second"
            )
        if "3" in parts:
            print(f"3. drift detection delay ({args.tick_s:.0f} s ticks):")
            report["detection"] = detection_delay(url, scorer, texts, probs, args)
            print(f"  {report['detection']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
