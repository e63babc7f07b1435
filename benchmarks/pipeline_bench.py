"""Pipeline benchmark: TweetEval replayed through broker -> consumer -> PostgreSQL, measured
against the ceiling of the same model on the same machine in the same run.

It prints, with the CPU and its int8 instruction sets beside the figures (compare figures only
between runs that print the same, and prefer the ratios: a shared machine's load moves
wall-clock rates between runs, rates per CPU-second far less):

1. the ceiling (``model.bench.best_ceiling``: bare ``session.run`` on length-sorted windows of
   1,024 tweets, the best of sub-batches 32 and 64 and of ONNX Runtime's threads spinning or
   not), measured before and after the pipeline runs;
2. with ``--sweep``: the scorer alone (tokenising, sorting, padding, softmax) on micro-batches
   x sub-batches x padded-token budgets x each ``--parallelism``, as a share of the ceiling;
3. the pipeline on a backlog, at its default settings, at each ``--batch-size``, each
   ``--run-tokens`` (padded tokens per ``session.run``) and each ``--parallelism`` given:
   sustained tweets/s and tweets per CPU-second of the whole process tree (this process, the
   broker, PostgreSQL), each as a share of the ceiling (target >= 90%);
4. end-to-end latency (post created -> row committed) with tweets produced at half the
   ceiling (or ``--latency-rate``), for each batch wait x broker fetch wait x run tokens x
   parallelism given,
   over ``--rounds`` interleaved rounds: p50, p99, where the slowest 1% spent their time
   (broker and fetch, in the open batch, queued for the steps, the steps, the write), and the
   batches (sizes, the steps' time and rate, how busy they were, the sizes of the batches
   before the slowest one: a cascade of growing batches shows there);
5. peak memory of this process (it runs the pipeline).

The last line is JSON. The broker and PostgreSQL are the embedded ones unless given::

    python -m benchmarks.pipeline_bench --tweets 2048 --sweep
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from psycopg import sql
from pydantic import SecretStr

from benchmarks.machine import cpu_description
from benchmarks.watchlist_bench import FixedWatchlist, brand_like_words, watchlist
from consumer.batching import MicroBatcher
from consumer.build import batch_steps, build_pipeline, identify_step, write_parts
from consumer.settings import Settings
from model.bench import Ceiling, best_ceiling, cpu
from model.data import SAMPLE_DIR, read_split
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from observability.metrics import PipelineMetrics
from storage import migrate
from storage.scored_posts import COLUMNS, INSERT_NEW_ROWS
from storage.sink import PostgresSink
from storage.urls import libpq_url
from stream_core.batch import Batch, BatchStep, Outcome, RecordReader
from stream_core.events import CommittedBatch, PipelineState
from stream_core.records import ScoredPost, SourceRecord
from stream_core.settings import NO_LABELS_TOPIC
from watchlist.matcher import Matcher

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4
GROUP = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}


@contextlib.contextmanager
def services(bootstrap: str | None, database_url: str | None) -> Iterator[tuple[str, str]]:
    """The given broker and database, or embedded ones (a fresh database either way)."""
    with contextlib.ExitStack() as stack:
        if bootstrap is None:
            from embedded import EmbeddedBroker

            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        if database_url is None:
            from embedded import EmbeddedPostgres

            database_url = stack.enter_context(EmbeddedPostgres()).url()
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield bootstrap, url


def _child_kind(name: str) -> str:
    """What a child process of the benchmark is, by its name."""
    if "tansu" in name:
        return "broker"
    return "PostgreSQL" if "postgres" in name else "other"


def cpu_by_process() -> dict[str, float]:
    """CPU seconds of this process and of its children, the embedded broker and PostgreSQL
    (by their names; any other child counts as "other")."""
    me = psutil.Process()
    used = dict.fromkeys(("this process", "broker", "PostgreSQL", "other"), 0.0)
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            kind = "this process" if process.pid == me.pid else _child_kind(process.name())
            used[kind] += times.user + times.system
    return used


def process_tree_cpu_s() -> float:
    """CPU seconds of this process and its children (the embedded broker and PostgreSQL)."""
    return sum(cpu_by_process().values())


# --- the sink: COPY vs multi-row INSERT (--sink) --------------------------------------------


def fake_posts(texts: Sequence[str], first_offset: int) -> list[ScoredPost]:
    now = datetime.now(UTC)
    return [
        ScoredPost(
            post_id=str(first_offset + i),
            text=text,
            author="bench",
            lang="en",
            created_at=now,
            label="neutral",
            probabilities=(0.2, 0.6, 0.2),
            topic="sink-bench",
            partition=0,
            offset=first_offset + i,
            kafka_timestamp=now,
            model_version="bench",
        )
        for i, text in enumerate(texts)
    ]


def multi_row_insert(sink: PostgresSink, posts: Sequence[ScoredPost]) -> None:
    """The alternative the sink does not use: one INSERT ... VALUES with every row (and the
    same write parts after it)."""
    row = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    statement = INSERT_NEW_ROWS.format(source="VALUES " + ", ".join([row] * len(posts)))
    params = [value for post in posts for value in sink.row(post)]
    conn = sink.connection()
    with conn.transaction(), conn.cursor() as cursor:
        sink.insert(cursor, statement, posts, params)


def bench_sink(url: str, texts: Sequence[str]) -> dict[str, dict[int, float]]:
    sink = PostgresSink(url, labels=("negative", "neutral", "positive"), parts=write_parts())
    results: dict[str, dict[int, float]] = {"copy": {}, "insert": {}}
    offset = 0
    for batch_size in (64, 256):
        batches = max(10, 4096 // batch_size)
        for method in ("copy", "insert", "copy", "insert"):  # twice each, keep the best
            started = time.perf_counter()
            for _ in range(batches):
                chosen = [texts[(offset + i) % len(texts)] for i in range(batch_size)]
                posts = fake_posts(chosen, offset)
                offset += batch_size
                if method == "copy":
                    sink.write_batch(posts)
                else:
                    multi_row_insert(sink, posts)
            rate = batches * batch_size / (time.perf_counter() - started)
            results[method][batch_size] = max(rate, results[method].get(batch_size, 0.0))
    sink.close()
    return results


# --- the scorer alone: micro-batch x sub-batch x token budget (--sweep) ---------------------

SWEEP_MICRO_BATCHES = (16, 32, 48, 96, 1024)
SWEEP_SUB_BATCHES = (32, 64)
SWEEP_TOKEN_BUDGETS = (None, 512, 1024)


@dataclass(frozen=True)
class Rate:
    tweets_per_s: float
    tweets_per_cpu_s: float
    # Per CPU-second of this process alone (the pipeline's threads; like the ceiling's figure)
    consumer_tweets_per_cpu_s: float | None = None

    def share_of(self, top: Ceiling) -> str:
        alone = self.consumer_tweets_per_cpu_s
        return (
            f"{self.tweets_per_s / top.tweets_per_s:.1%} wall-clock, "
            f"{self.tweets_per_cpu_s / top.tweets_per_cpu_s:.1%} per CPU-s of the process tree"
            + ("" if alone is None else f", {alone / top.tweets_per_cpu_s:.1%} of the consumer's")
        )


def scorer_alone(scorer: Scorer, texts: Sequence[str], micro_batch: int) -> Rate:
    scorer.score(list(texts[:micro_batch]))  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), micro_batch):
        scorer.score(list(texts[start : start + micro_batch]))
    wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    return Rate(len(texts) / wall, len(texts) / cpu_s)


def sweep(scorers: dict[str, Scorer], texts: Sequence[str]) -> list[dict[str, Any]]:
    """The scorer alone (each parallelism's) on every micro-batch x sub-batch x token budget."""
    rows = []
    for micro_batch, sub_batch, budget, (parallelism, scorer) in itertools.product(
        SWEEP_MICRO_BATCHES, SWEEP_SUB_BATCHES, SWEEP_TOKEN_BUDGETS, scorers.items()
    ):
        rate = scorer_alone(scorer.resized(sub_batch, budget), texts, micro_batch)
        rows.append(
            {
                "micro_batch": micro_batch,
                "parallelism": parallelism,
                "sub_batch": sub_batch,
                "max_tokens": budget,
                "tweets_per_s": round(rate.tweets_per_s, 1),
                "tweets_per_cpu_s": round(rate.tweets_per_cpu_s, 1),
            }
        )
    return rows


# --- the pipeline: where each post's time goes ----------------------------------------------

Key = tuple[int, int]  # (partition, offset)


class FetchStamps:
    """A record reader that tells ``timeline`` when the poller got each record."""

    def __init__(self, inner: RecordReader, timeline: Timeline) -> None:
        self._inner = inner
        self._timeline = timeline

    @property
    def topics(self) -> Sequence[str]:
        return self._inner.topics

    def read(self, record: SourceRecord) -> Outcome:
        self._timeline.fetched_one((record.partition, record.offset))
        return self._inner.read(record)


def stamp(stamps: dict[Key, float], batch: Batch) -> Batch:
    """Note the time now for ``batch`` (keyed by its first post)."""
    if batch.posts:
        first = batch.posts[0]
        stamps[(first.partition, first.offset)] = time.time()
    return batch


class StepStamp:
    """A batch step that notes when a batch reached it."""

    def __init__(self, stamps: dict[Key, float]) -> None:
        self._stamps = stamps

    def process(self, batch: Batch) -> Batch:
        return stamp(self._stamps, batch)


class ThenStamp:
    """``step`` (the model: the last step, which has a thread of its own), then a note of when
    the batch left it."""

    def __init__(self, step: BatchStep, stamps: dict[Key, float]) -> None:
        self._step = step
        self._stamps = stamps

    def process(self, batch: Batch) -> Batch:
        return stamp(self._stamps, self._step.process(batch))


class CutStamps(MicroBatcher):
    """The pipeline's batcher, noting when each batch was cut (keyed by its first post)."""

    def __init__(self, batcher: MicroBatcher, stamps: dict[Key, float]) -> None:
        vars(self).update(vars(batcher))
        self._stamps = stamps

    def take(self) -> Batch | None:
        batch = super().take()
        if batch is not None and batch.posts:
            first = batch.posts[0]
            self._stamps[(first.partition, first.offset)] = time.time()
        return batch


STAGES = ("broker and fetch", "in the open batch", "queued for the steps", "steps", "write")


@dataclass(frozen=True)
class BatchTimes:
    """One committed batch: its posts, when it was cut, went through the steps, was stored."""

    posts: int
    cut: float
    steps_start: float
    steps_end: float
    committed: float

    def stages_of(self, created: float, fetched: float) -> tuple[float, ...]:
        """Seconds a post created and fetched at these times spent in each of ``STAGES``."""
        return (
            fetched - created,
            self.cut - fetched,
            self.steps_start - self.cut,
            self.steps_end - self.steps_start,
            self.committed - self.steps_end,
        )


@dataclass
class Timeline:
    """Per committed batch: when and how many posts; per post: its latency and its stages."""

    expected: int
    commits: list[tuple[float, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    stages: list[tuple[float, ...]] = field(default_factory=list)
    batches: list[BatchTimes] = field(default_factory=list)
    fetched: dict[Key, float] = field(default_factory=dict)
    cut: dict[Key, float] = field(default_factory=dict)
    model_start: dict[Key, float] = field(default_factory=dict)
    model_end: dict[Key, float] = field(default_factory=dict)
    started_at: float | None = None  # monotonic, when the first record was fetched
    cpu_at_start: float = 0.0
    cpu_at_end: float = 0.0
    own_cpu_at_start: float = 0.0
    own_cpu_at_end: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    def fetched_one(self, key: Key) -> None:
        if self.started_at is None:
            self.started_at, self.cpu_at_start = time.monotonic(), process_tree_cpu_s()
            self.own_cpu_at_start = time.process_time()
        self.fetched[key] = time.time()

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        self.commits.append((time.monotonic(), len(batch.posts)))
        committed = batch.committed_at.timestamp()
        first = (batch.posts[0].partition, batch.posts[0].offset) if batch.posts else (0, 0)
        cut = self.cut.get(first)
        start, end = self.model_start.get(first), self.model_end.get(first)
        times = None
        if cut is not None and start is not None and end is not None:
            times = BatchTimes(len(batch.posts), cut, start, end, committed)
            self.batches.append(times)
        for post in batch.posts:
            if post.created_at is None:
                continue
            created = post.created_at.timestamp()
            self.latencies.append(committed - created)
            fetched = self.fetched.get((post.partition, post.offset))
            if fetched is not None and times is not None:
                self.stages.append(times.stages_of(created, fetched))
        if sum(n for _, n in self.commits) >= self.expected:
            self.cpu_at_end = process_tree_cpu_s()
            self.own_cpu_at_end = time.process_time()
            self.done.set()

    def sustained(self) -> Rate:
        """From the first record fetched to the last batch committed: a backlog drained (the
        last batch's write, which nothing overlaps, counts too)."""
        assert self.started_at is not None
        posts = sum(n for _, n in self.commits)
        return Rate(
            posts / (self.commits[-1][0] - self.started_at),
            posts / (self.cpu_at_end - self.cpu_at_start),
            posts / (self.own_cpu_at_end - self.own_cpu_at_start),
        )

    def tail(self, q: float = 0.99) -> dict[str, float]:
        """Mean seconds per stage of the posts at or beyond the ``q`` latency quantile."""
        if not self.stages:
            return {}
        threshold = percentile([sum(s) for s in self.stages], q)
        slow = [s for s in self.stages if sum(s) >= threshold]
        return {name: statistics.fmean(s[i] for s in slow) for i, name in enumerate(STAGES)}

    def batch_figures(self) -> dict[str, Any]:
        """The batches: sizes (p50, p90, max), seconds in the steps and queued for them (p50,
        p99), the steps' posts per second, and the sizes of the ten batches before the
        slowest one committed (a cascade shows as sizes that grow)."""
        if len(self.batches) < 2:
            return {}
        sizes = [b.posts for b in self.batches]
        steps = [b.steps_end - b.steps_start for b in self.batches]
        queued = [b.steps_start - b.cut for b in self.batches]
        writes = [b.committed - b.steps_end for b in self.batches]
        slowest = max(
            range(len(self.batches)), key=lambda i: self.batches[i].committed - self.batches[i].cut
        )
        return {
            "batches": len(sizes),
            "size_p50_p90_max": [percentile(sizes, 0.5), percentile(sizes, 0.9), max(sizes)],
            "steps_s_p50_p99": [round(percentile(steps, q), 3) for q in (0.5, 0.99)],
            "queued_s_p50_p99": [round(percentile(queued, q), 3) for q in (0.5, 0.99)],
            "write_s_p50_p99": [round(percentile(writes, q), 3) for q in (0.5, 0.99)],
            "steps_posts_per_s": round(sum(sizes) / sum(steps), 1),
            "steps_busy_share": round(
                sum(steps) / (self.batches[-1].steps_end - self.batches[0].steps_start), 3
            ),
            "sizes_before_slowest": sizes[max(0, slowest - 9) : slowest + 1],
        }


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(30)


# The producers batch like a firehose's producers do (librdkafka's default linger is 5 ms); a
# post's created_at is stamped before the linger, so the latency includes it. One post per
# request instead makes the embedded broker (tansu, in-memory storage) dearer with every batch a
# partition holds: at 600 posts/s, 0.12 -> 0.45 cores within 40 s at linger 0 or 5 ms, and
# 0.05-0.12 cores for 90 s at 20 ms, cores the consumer shares with it on one machine.
PRODUCER_LINGER_MS = 20


def produce(
    bootstrap: str,
    topic: str,
    texts: Sequence[str],
    rate: float | None = None,
    linger_ms: int = PRODUCER_LINGER_MS,
) -> None:
    """Produce one JSON post per text; paced at ``rate`` per second when given."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms})
    started = time.monotonic()
    for i, text in enumerate(texts):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        value = {"id": str(i), "text": text, "created_at": datetime.now(UTC).isoformat()}
        producer.produce(topic, json.dumps(value).encode(), partition=i % PARTITIONS)
        producer.poll(0)
    producer.flush(60)


# The lifecycle steps switched on by --lifecycle: a watchlist of this many entities, and
# language identification (``consumer.build.batch_steps`` in the order ``consume`` runs them).
LIFECYCLE_ENTITIES = 1000


def run_pipeline(
    settings: Settings,
    scorer: Scorer,
    timeline: Timeline,
    feed: Any | None = None,
    *,
    lifecycle: bool = False,
) -> None:
    """Run the pipeline until ``timeline`` has seen every post; ``feed`` runs once assigned.
    ``lifecycle``: the watchlist's match and language identification run before the model."""
    metrics, state = PipelineMetrics(), PipelineState(model_loaded=True)
    watched = identify = None
    if lifecycle:
        words = brand_like_words([tweet.text for tweet in read_split(SAMPLE_DIR, "val")])
        watched = FixedWatchlist(Matcher(watchlist(LIFECYCLE_ENTITIES, words)))
        identify = identify_step(settings)
    *before_model, model = batch_steps(scorer, metrics, watched, identify=identify)
    steps = [
        StepStamp(timeline.model_start),
        *before_model,
        ThenStamp(model, timeline.model_end),
    ]
    pipeline = build_pipeline(
        settings, scorer=scorer, metrics=metrics, state=state, observers=[timeline], steps=steps
    )
    pipeline._reader = FetchStamps(pipeline._reader, timeline)
    pipeline._batcher = CutStamps(pipeline._batcher, timeline.cut)
    runner = threading.Thread(target=pipeline.run, name="pipeline")
    runner.start()
    try:
        if feed is not None:
            while not state.assigned_partitions():
                time.sleep(0.05)
            feed()
        if not timeline.done.wait(600):
            raise SystemExit("the pipeline did not finish within 10 minutes")
    finally:
        pipeline.stop()
        runner.join(60)


class Arrangement(NamedTuple):
    """One latency arrangement: the consumer's settings and the producer's linger."""

    wait_ms: int
    fetch_ms: int
    tokens: int
    lifecycle: bool
    parallelism: str
    linger_ms: int

    def describe(self) -> str:
        return (
            f"batch wait {self.wait_ms} ms, fetch wait {self.fetch_ms} ms, run tokens "
            f"{'default' if self.tokens < 0 else self.tokens or 'none'}, parallel "
            f"{self.parallelism}, producer linger {self.linger_ms} ms"
            f"{', lifecycle steps' if self.lifecycle else ''}"
        )


def measure_latency(
    settings: Settings,
    scorer: Scorer,
    texts: Sequence[str],
    rate: float,
    *,
    round_number: int,
    lifecycle: bool,
    linger_ms: int,
) -> dict[str, Any]:
    """The pipeline on a fresh topic fed ``texts`` at ``rate`` per second once it is assigned:
    latency percentiles, where the slowest 1% spent their time, and the batches (printed)."""
    bootstrap = settings.bootstrap_servers
    create_topic(bootstrap, settings.topic)
    live = Timeline(expected=len(texts))
    cpu_before, started = cpu_by_process(), time.monotonic()
    run_pipeline(
        settings,
        scorer,
        live,
        feed=lambda: threading.Thread(
            target=produce,
            args=(bootstrap, settings.topic, texts, rate, linger_ms),
            daemon=True,
        ).start(),
        lifecycle=lifecycle,
    )
    seconds = time.monotonic() - started
    cores = {  # what shares the machine with the model: the broker and PostgreSQL are local
        name: round((used - cpu_before[name]) / seconds, 2)
        for name, used in cpu_by_process().items()
    }
    p50, p99 = percentile(live.latencies, 0.5), percentile(live.latencies, 0.99)
    tail, batches = live.tail(), live.batch_figures()
    fetch_ms = settings.consumer_kafka_config()["fetch.wait.max.ms"]
    print(
        f"round {round_number}: latency at {rate:,.1f} tweets/s, batch wait "
        f"{settings.batch_wait_ms} ms, fetch wait {fetch_ms} ms, run tokens "
        f"{scorer.max_tokens or 'none'}, parallel runs {scorer.workers}, producer linger "
        f"{linger_ms} ms{', lifecycle steps' if lifecycle else ''}: "
        f"p50 {p50:.3f} s, p99 {p99:.3f} s; slowest 1%: "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in tail.items())
        + f" (load {os.getloadavg()[0]:.1f})\n  cores: "
        + ", ".join(f"{name} {used:.2f}" for name, used in cores.items())
        + "\n  batches: "
        + ", ".join(f"{name} {value}" for name, value in batches.items()),
        flush=True,
    )
    return {
        "round": round_number,
        "batch_wait_ms": settings.batch_wait_ms,
        "fetch_wait_ms": int(fetch_ms),
        "run_tokens": scorer.max_tokens,
        "parallel_runs": scorer.workers,
        "lifecycle": lifecycle,
        "producer_linger_ms": linger_ms,
        "p50_s": round(p50, 3),
        "p99_s": round(p99, 3),
        "slowest_1pct_s": {name: round(seconds, 3) for name, seconds in tail.items()},
        "batches": batches,
        "cores": cores,
        "load": round(os.getloadavg()[0], 1),
    }


def settings_for(bootstrap: str, url: str, topic: str, **overrides: Any) -> Settings:
    """The consumer's defaults, but for the broker, database, topic and ``overrides``."""
    fetch_wait_ms = overrides.pop("fetch_wait_ms", None)
    options = dict(GROUP)
    if fetch_wait_ms is not None:
        options["fetch.wait.max.ms"] = str(fetch_wait_ms)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bootstrap_servers=bootstrap,
        database_url=SecretStr(url),
        topic=topic,
        group_id=f"bench-{topic}",
        kafka_options={name: SecretStr(value) for name, value in options.items()},
        labels_topic=NO_LABELS_TOPIC,
        log_level="WARNING",
        **overrides,
    )


def percentile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def measure_ceiling(model: Path, texts: Sequence[str]) -> Ceiling:
    top = best_ceiling(model, texts)
    print(
        f"ceiling: {top.tweets_per_s:,.1f} tweets/s, {top.tweets_per_cpu_s:,.1f} per CPU-s "
        f"(sub-batch {top.sub_batch}, ONNX Runtime threads {'spinning' if top.spin else 'sleeping'}"
        f" between runs; load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    return top


def mean_ceiling(a: Ceiling, b: Ceiling) -> Ceiling:
    return Ceiling(
        (a.tweets_per_s + b.tweets_per_s) / 2,
        (a.tweets_per_cpu_s + b.tweets_per_cpu_s) / 2,
        a.sub_batch if a.tweets_per_s >= b.tweets_per_s else b.sub_batch,
    )


def with_run_tokens(scorer: Scorer, tokens: int) -> Scorer:
    """``scorer`` as loaded (``tokens`` < 0), or with runs of at most ``tokens`` padded tokens
    (0: runs of ``batch_size`` texts whatever their length)."""
    return scorer if tokens < 0 else scorer.resized(scorer.batch_size, tokens or None)


def ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--tweets", type=int, default=4096)
    parser.add_argument(
        "--batch-size",
        type=ints,
        default=[64],
        help="Micro-batch sizes run on the backlog beside the default (comma-separated).",
    )
    parser.add_argument("--sweep", action="store_true", help="The scorer-alone sweep (2).")
    parser.add_argument("--sweep-tweets", type=int, default=1024)
    parser.add_argument("--sink", action="store_true", help="COPY vs multi-row INSERT too.")
    parser.add_argument("--batch-wait-ms", type=ints, default=[50])
    parser.add_argument("--fetch-wait-ms", type=ints, default=[100])
    parser.add_argument(
        "--producer-linger-ms",
        type=ints,
        default=[PRODUCER_LINGER_MS],
        help="linger.ms of the latency runs' producer (comma-separated) [default: %(default)s].",
    )
    parser.add_argument(
        "--run-tokens",
        type=ints,
        default=[-1],
        help="Padded tokens per session.run of the latency runs (-1: the scorer's default, 0: "
        "runs of 32 texts whatever their length).",
    )
    parser.add_argument(
        "--spin",
        action="store_true",
        help="The pipeline's ONNX Runtime threads spin between runs (the consumer's sleep).",
    )
    parser.add_argument(
        "--parallelism",
        type=lambda text: text.split(","),
        default=["runs"],
        help="How the cores share a batch (runs, ops; comma-separated: the backlog and latency "
        "runs again with each after the first; see SENTIMENT_MODEL_PARALLELISM).",
    )
    parser.add_argument(
        "--lifecycle",
        action="store_true",
        help=f"Also run the backlog and latency with the watchlist's match "
        f"({LIFECYCLE_ENTITIES} entities) and language identification before the model.",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="Latency runs of each arrangement, interleaved."
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="Posts/s of the latency runs [default: half the ceiling].",
    )
    parser.add_argument(
        "--latency-only", action="store_true", help="Skip the backlog runs (3): the ceiling once."
    )
    parser.add_argument(
        "--tweeteval",
        type=Path,
        default=Path(os.environ.get("TWEETEVAL_DIR") or ROOT.parent / "shared/data/tweeteval"),
        help="TweetEval copy with the test split [default: $TWEETEVAL_DIR or ../shared].",
    )
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    from stream_core.logs import configure_logging

    configure_logging("WARNING", "console")
    machine = f"{cpu_description()}; int8: {cpu()}"
    print(f"cpu: {machine}", flush=True)
    tweets = [t.text for t in read_split(args.tweeteval, "test")]
    texts = [tweets[i % len(tweets)] for i in range(args.tweets)]
    scorers = {  # as `consume` loads the model
        parallelism: Scorer.load(args.model, spin=args.spin, parallelism=parallelism)
        for parallelism in args.parallelism
    }
    scorer = scorers[args.parallelism[0]]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    report: dict[str, Any] = {
        "model": scorer.version,
        "cpu": machine,
        "tweets": len(texts),
        "spin": args.spin,
        "parallelism": args.parallelism,
    }

    before = measure_ceiling(args.model, texts)
    if args.sweep:
        swept = texts[: args.sweep_tweets]
        top = measure_ceiling(args.model, swept) if len(swept) < len(texts) else before
        rows = sweep(scorers, swept)
        print(
            f"scorer alone on {len(swept)} tweets | tweets/s | per CPU-s | share of the ceiling "
            "on the same tweets (wall, per CPU-s)"
        )
        for row in rows:
            print(
                f"micro-batch {row['micro_batch']:>4} / parallel {row['parallelism']:>4} / "
                f"sub-batch {row['sub_batch']:>2} / "
                f"token budget {row['max_tokens'] or '-':>4} | {row['tweets_per_s']:>7,.1f} | "
                f"{row['tweets_per_cpu_s']:>7,.1f} | "
                f"{row['tweets_per_s'] / top.tweets_per_s:.1%}, "
                f"{row['tweets_per_cpu_s'] / top.tweets_per_cpu_s:.1%}",
                flush=True,
            )
        report["sweep"] = rows

    with services(args.bootstrap_servers, args.database_url) as (bootstrap, url):
        if args.sink:
            sink = bench_sink(url, tweets)
            for size in sink["copy"]:
                print(
                    f"sink, batches of {size}: COPY {sink['copy'][size]:,.0f} rows/s, "
                    f"multi-row INSERT {sink['insert'][size]:,.0f} rows/s"
                )
        backlog: dict[str, Rate] = {}
        first = args.parallelism[0]
        backlog_runs = [(defaults.batch_size, -1, False, first)]
        backlog_runs += [(defaults.batch_size, -1, False, p) for p in args.parallelism[1:]]
        backlog_runs += [(size, -1, False, first) for size in args.batch_size]
        backlog_runs += [(defaults.batch_size, t, False, first) for t in args.run_tokens if t >= 0]
        backlog_runs += [(defaults.batch_size, -1, True, first)] if args.lifecycle else []
        for batch_size, tokens, lifecycle, parallelism in [] if args.latency_only else backlog_runs:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic)
            produce(bootstrap, topic, texts)
            timeline = Timeline(expected=len(texts))
            sized = with_run_tokens(scorers[parallelism], tokens)
            run_pipeline(
                settings_for(bootstrap, url, topic, batch_size=batch_size),
                sized,
                timeline,
                lifecycle=lifecycle,
            )
            name = f"micro-batch {batch_size}, run tokens {sized.max_tokens or 'none'}"
            name += f", parallel {parallelism}"
            name += ", lifecycle steps" if lifecycle else ""
            if (batch_size, tokens, lifecycle, parallelism) == backlog_runs[0]:
                name += " (defaults)"
            measured = backlog[name] = timeline.sustained()
            print(
                f"pipeline on a backlog, {name}: {measured.tweets_per_s:,.1f} tweets/s, "
                f"{measured.tweets_per_cpu_s:,.1f} per CPU-s of the process tree, "
                f"{measured.consumer_tweets_per_cpu_s:,.1f} of the consumer's own "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        top = (
            before
            if args.latency_only
            else mean_ceiling(before, measure_ceiling(args.model, texts))
        )
        for name, measured in backlog.items():
            print(f"{name}: {measured.share_of(top)} of the ceiling")

        rate = args.latency_rate or top.tweets_per_s / 2
        paced = [tweets[i % len(tweets)] for i in range(int(rate * args.latency_seconds))]
        latency: list[dict[str, Any]] = []
        arrangements = [
            Arrangement(*choice)
            for choice in itertools.product(
                args.batch_wait_ms,
                args.fetch_wait_ms,
                args.run_tokens,
                [False, True] if args.lifecycle else [False],
                args.parallelism,
                args.producer_linger_ms,
            )
        ]
        p99s: dict[Arrangement, list[float]] = {arrangement: [] for arrangement in arrangements}
        for round_number in range(1, args.rounds + 1):
            for arrangement in arrangements:
                latency.append(
                    measure_latency(
                        settings_for(
                            bootstrap,
                            url,
                            f"bench-{uuid.uuid4().hex[:8]}",
                            batch_wait_ms=arrangement.wait_ms,
                            fetch_wait_ms=arrangement.fetch_ms,
                        ),
                        with_run_tokens(scorers[arrangement.parallelism], arrangement.tokens),
                        paced,
                        rate,
                        round_number=round_number,
                        lifecycle=arrangement.lifecycle,
                        linger_ms=arrangement.linger_ms,
                    )
                )
                p99s[arrangement].append(latency[-1]["p99_s"])
        if args.rounds > 1:
            for arrangement, runs in p99s.items():
                print(
                    f"{arrangement.describe()}: p99 median {statistics.median(runs):.3f} s of "
                    + ", ".join(f"{p:.3f}" for p in runs)
                )

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the pipeline's process: {peak_mib:,.0f} MiB; cpu: {machine}")
    report.update(
        ceiling_tweets_per_s=round(top.tweets_per_s, 1),
        ceiling_tweets_per_cpu_s=round(top.tweets_per_cpu_s, 1),
        pipeline={
            name: {
                "tweets_per_s": round(r.tweets_per_s, 1),
                "tweets_per_cpu_s": round(r.tweets_per_cpu_s, 1),
                "share_wall": round(r.tweets_per_s / top.tweets_per_s, 3),
                "share_cpu": round(r.tweets_per_cpu_s / top.tweets_per_cpu_s, 3),
                "share_consumer_cpu": round(
                    (r.consumer_tweets_per_cpu_s or 0.0) / top.tweets_per_cpu_s, 3
                ),
            }
            for name, r in backlog.items()
        },
        latency_rate_tweets_per_s=round(rate, 1),
        latency=latency,
        peak_rss_mib=round(peak_mib),
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
