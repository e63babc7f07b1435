"""Helpers for the pipeline tests: a fake scorer, topics, producing, reading back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from pydantic import SecretStr

from consumer.build import batch_steps, build_pipeline, write_parts
from consumer.pipeline import Pipeline
from consumer.settings import Settings
from observability.metrics import PipelineMetrics
from storage import migrate
from storage.sink import WritePart
from storage.urls import libpq_url
from stream_core.batch import BatchStep
from stream_core.contract import LABELS
from stream_core.events import BatchObserver, CommittedBatch, PipelineState
from watchlist.step import MatcherSource

# Short sessions: tansu's JoinGroup waits session.timeout.ms / 2.
FAST_GROUP = {"session.timeout.ms": "3000", "heartbeat.interval.ms": "500"}


@dataclass
class FakeScores:
    probabilities: np.ndarray
    label_ids: np.ndarray


class FakeScorer:
    """Scores by text length, instantly: the pipeline's logic without a model."""

    labels = LABELS
    version = "fake-1"

    def score(self, texts: Sequence[str]) -> FakeScores:
        ids = np.array([len(t) % 3 for t in texts], dtype=np.int64)
        probabilities = np.full((len(texts), 3), 0.1, dtype=np.float32)
        probabilities[np.arange(len(texts)), ids] = 0.8
        return FakeScores(probabilities, ids)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)


def post_value(i: int, **fields: Any) -> bytes:
    document = {"id": f"post-{i}", "text": f"message number {i} " + "x" * (i % 7)}
    document["created_at"] = "2024-05-01T12:00:00Z"
    document.update(fields)
    return json.dumps(document).encode()


def produce(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes | None],
    *,
    partitions: int,
    headers: Sequence[Sequence[tuple[str, bytes]]] | None = None,
    pace_s: float = 0.0,
) -> dict[int, int]:
    """Produce values round-robin over partitions; return the count per partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    counts: dict[int, int] = {}
    for i, value in enumerate(values):
        partition = i % partitions
        message_headers: list[tuple[str, str | bytes | None]] = list(headers[i]) if headers else []
        producer.produce(
            topic,
            value=value,
            key=f"key-{i}".encode(),
            partition=partition,
            headers=message_headers,
        )
        counts[partition] = counts.get(partition, 0) + 1
        producer.poll(0)
        if pace_s:
            time.sleep(pace_s)
    assert producer.flush(30) == 0
    return counts


def settings_for(bootstrap: str, database_url: str, topic: str, **overrides: Any) -> Settings:
    return Settings(
        bootstrap_servers=bootstrap,
        database_url=SecretStr(database_url),
        topic=topic,
        group_id=overrides.pop("group_id", f"group-{topic}"),
        batch_size=overrides.pop("batch_size", 32),
        batch_wait_ms=overrides.pop("batch_wait_ms", 50),
        kafka_options={
            k: SecretStr(v) for k, v in {**FAST_GROUP, **overrides.pop("kafka_options", {})}.items()
        },
        shutdown_timeout_s=overrides.pop("shutdown_timeout_s", 20),
        **overrides,
    )


class Recorder:
    """A batch observer that keeps what it saw."""

    def __init__(self) -> None:
        self.batches: list[CommittedBatch] = []

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        self.batches.append(batch)


@dataclass
class RunningPipeline:
    pipeline: Pipeline
    metrics: PipelineMetrics
    state: PipelineState
    recorder: Recorder
    thread: threading.Thread
    errors: list[BaseException]


@contextmanager
def running_pipeline(
    settings: Settings,
    scorer: Any | None = None,
    *,
    extra_steps: Sequence[BatchStep] = (),
    extra_parts: Sequence[WritePart] = (),
    watchlist: MatcherSource | None = None,
    observers: Sequence[BatchObserver] = (),
) -> Iterator[RunningPipeline]:
    """The pipeline in a thread of this process; stopped (and joined) on exit.

    ``extra_steps`` and ``extra_parts`` come after the standard ones (``consumer.build``);
    ``watchlist`` adds the match step, ``observers`` see committed batches after the recorder.
    """
    scorer = scorer or FakeScorer()
    metrics, state, recorder = PipelineMetrics(), PipelineState(model_loaded=True), Recorder()
    pipeline = build_pipeline(
        settings,
        scorer=scorer,
        metrics=metrics,
        state=state,
        observers=[recorder, *observers],
        steps=[*batch_steps(scorer, metrics, watchlist), *extra_steps],
        parts=[*write_parts(), *extra_parts],
    )
    with in_a_thread(pipeline) as (thread, errors):
        yield RunningPipeline(pipeline, metrics, state, recorder, thread, errors)


@contextmanager
def in_a_thread(
    pipeline: Pipeline, join_s: float = 60
) -> Iterator[tuple[threading.Thread, list[BaseException]]]:
    """Run ``pipeline`` in a thread; on exit, stop it and check that it stopped.

    Yields the thread and the list that gets what ``run`` raised, if anything.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pipeline.run()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="pipeline", daemon=True)
    thread.start()
    try:
        yield thread, errors
    finally:
        pipeline.stop()
        thread.join(join_s)
    assert not thread.is_alive(), "the pipeline did not stop"


def migrated(database_url: str) -> str:
    migrate.upgrade(database_url)
    return database_url


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(sql).fetchall()


def row_count(database_url: str) -> int:
    return int(query(database_url, "SELECT count(*) FROM scored_posts")[0][0])


def aggregate_total(database_url: str) -> int:
    total = query(database_url, "SELECT coalesce(sum(count), 0) FROM sentiment_minute_counts")
    return int(total[0][0])


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


def committed_offsets(bootstrap: str, group_id: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        found = consumer.committed(wanted, timeout=15)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list[Any]:
    """Every message of ``topic`` (stops once ``expected`` were read or at the timeout)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **FAST_GROUP,
        }
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages
