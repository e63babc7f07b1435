"""Pipeline benchmark: TweetEval replayed through broker -> consumer -> PostgreSQL.

In one run, on the same tweets and the same model, it prints:

1. the PostgreSQL sink: COPY + INSERT ... SELECT (what the sink does) against a multi-row
   INSERT ... VALUES, in rows per second, for two batch sizes;
2. the bare scorer's throughput (``Scorer.score`` in batches, nothing else);
3. the pipeline's sustained throughput on a backlog, and its ratio to (2) (target >= 0.9);
   (the bare scorer is measured just before and just after the pipeline; their mean counts);
4. end-to-end latency (post created -> row committed), p50 and p99, with the tweets produced
   at half the pipeline's throughput;
5. the CPU and the instruction sets ONNX Runtime's int8 kernels use (compare figures only
   between runs that print the same).

The last line is JSON. The broker and PostgreSQL are the embedded ones unless given::

    python -m benchmarks.pipeline_bench --model model/assets/default --tweets 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from psycopg import sql

from consumer.build import build_pipeline, write_parts
from consumer.settings import Settings
from model.data import read_split
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from observability.metrics import PipelineMetrics
from storage import migrate
from storage.scored_posts import COLUMNS, INSERT_NEW_ROWS
from storage.sink import PostgresSink
from storage.urls import libpq_url
from stream_core.events import CommittedBatch, PipelineState
from stream_core.records import ScoredPost

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


# --- 1. the sink: COPY vs multi-row INSERT --------------------------------------------------


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


# --- 2. the bare scorer --------------------------------------------------------------------


def bench_scorer(scorer: Scorer, texts: Sequence[str], batch_size: int) -> float:
    scorer.score(list(texts[:batch_size]))  # warm-up
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        scorer.score(list(texts[start : start + batch_size]))
    return len(texts) / (time.perf_counter() - started)


# --- 3 and 4. the pipeline -----------------------------------------------------------------


@dataclass
class Timeline:
    """Per committed batch: when (monotonic) and how many posts; per post: its latency."""

    commits: list[tuple[float, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    expected: int = 0

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        self.commits.append((time.monotonic(), len(batch.posts)))
        self.latencies += [
            (batch.committed_at - post.created_at).total_seconds()
            for post in batch.posts
            if post.created_at is not None
        ]
        if sum(n for _, n in self.commits) >= self.expected:
            self.done.set()


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(30)


def produce(bootstrap: str, topic: str, texts: Sequence[str], rate: float | None = None) -> None:
    """Produce one JSON post per text; paced at ``rate`` per second when given."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0 if rate else 20})
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


def run_pipeline(
    settings: Settings, scorer: Scorer, timeline: Timeline, feed: Any | None = None
) -> None:
    """Run the pipeline until ``timeline`` has seen every post; ``feed`` runs once assigned."""
    metrics, state = PipelineMetrics(), PipelineState(model_loaded=True)
    pipeline = build_pipeline(
        settings, scorer=scorer, metrics=metrics, state=state, observers=[timeline]
    )
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


def settings_for(bootstrap: str, url: str, topic: str, args: argparse.Namespace) -> Settings:
    return Settings.model_validate(
        {
            "bootstrap_servers": bootstrap,
            "database_url": url,
            "topic": topic,
            "group_id": f"bench-{topic}",
            "batch_size": args.batch_size,
            "batch_wait_ms": args.batch_wait_ms,
            "kafka_options": GROUP,
            "log_level": "WARNING",
        }
    )


def sustained_rate(timeline: Timeline) -> float:
    """Posts per second from the first committed batch to the last (the backlog drains)."""
    (first_at, first_n), last_at = timeline.commits[0], timeline.commits[-1][0]
    return (sum(n for _, n in timeline.commits) - first_n) / (last_at - first_at)


def percentile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


# The instruction sets ONNX Runtime's int8 kernels use: figures from machines that differ here
# are not comparable, so every figure is printed beside them.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu() -> str:
    """The CPU's model name and which of ``CPU_FLAGS`` it has (Linux; "unknown" elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    fields = {
        key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)
    }
    flags = set(fields.get("flags", "").split())
    found = " ".join(flag for flag in CPU_FLAGS if flag in flags) or "none of " + ", ".join(
        CPU_FLAGS
    )
    return f"{fields.get('model name', 'unknown')}; {found}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--tweets", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batch-wait-ms", type=int, default=100)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--tweeteval", type=Path, default=ROOT.parent / "shared/data/tweeteval")
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    from stream_core.logs import configure_logging

    configure_logging("WARNING", "console")
    tweets = [t.text for t in read_split(args.tweeteval, "test")]
    texts = [tweets[i % len(tweets)] for i in range(args.tweets)]
    scorer = Scorer.load(args.model, batch_size=min(args.batch_size, 32))

    with services(args.bootstrap_servers, args.database_url) as (bootstrap, url):
        sink = bench_sink(url, tweets)
        for size in sink["copy"]:
            print(
                f"sink, batches of {size}: COPY {sink['copy'][size]:,.0f} rows/s, "
                f"multi-row INSERT {sink['insert'][size]:,.0f} rows/s"
            )
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic)
        produce(bootstrap, topic, texts)
        # The bare scorer runs just before and just after the pipeline, and the mean is the
        # reference: on a shared machine the load drifts between phases.
        before = bench_scorer(scorer, texts, args.batch_size)
        backlog = Timeline(expected=len(texts))
        run_pipeline(settings_for(bootstrap, url, topic, args), scorer, backlog)
        sustained = sustained_rate(backlog)
        after = bench_scorer(scorer, texts, args.batch_size)
        bare = (before + after) / 2
        print(
            f"bare scorer: {bare:,.1f} tweets/s ({before:,.1f} before, {after:,.1f} after; "
            f"{scorer.version}, {len(texts)} tweets)"
        )
        print(f"pipeline: {sustained:,.1f} tweets/s sustained = {sustained / bare:.1%} of bare")
        print(f"cpu: {cpu()}")

        rate = sustained / 2
        paced = [tweets[i % len(tweets)] for i in range(int(rate * args.latency_seconds))]
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic)
        live = Timeline(expected=len(paced))
        run_pipeline(
            settings_for(bootstrap, url, topic, args),
            scorer,
            live,
            feed=lambda: threading.Thread(
                target=produce, args=(bootstrap, topic, paced, rate), daemon=True
            ).start(),
        )
        p50, p99 = percentile(live.latencies, 0.5), percentile(live.latencies, 0.99)
        print(f"latency at {rate:,.1f} tweets/s: p50 {p50:.3f} s, p99 {p99:.3f} s")

    print(
        json.dumps(
            {
                "model": scorer.version,
                "cpu": cpu(),
                "tweets": len(texts),
                "batch_size": args.batch_size,
                "batch_wait_ms": args.batch_wait_ms,
                "bare_scorer_tweets_per_s": round(bare, 1),
                "pipeline_tweets_per_s": round(sustained, 1),
                "pipeline_vs_bare": round(sustained / bare, 3),
                "latency_rate_tweets_per_s": round(rate, 1),
                "latency_p50_s": round(p50, 3),
                "latency_p99_s": round(p99, 3),
                "sink_copy_rows_per_s": {k: round(v) for k, v in sink["copy"].items()},
                "sink_insert_rows_per_s": {k: round(v) for k, v in sink["insert"].items()},
            }
        )
    )


if __name__ == "__main__":
    main()
