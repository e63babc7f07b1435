"""Fleet-wide spike detection on a real PostgreSQL (and, for whole replicas, a real broker).

One spike is one alert row whatever the number of replicas; a spike on one watched entity
alerts for that entity only when the stream's share barely moves; the detector role moves to
another replica when its holder dies, and the open alert moves with it. Short windows and high
rates keep each scenario to seconds (the settings below).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from observability import runtime
from observability.alert_sink import AlertSink
from observability.fleet_spikes import ROLE, FleetSpikes
from observability.metrics import PipelineMetrics
from observability.runtime import ObservabilityRuntime
from observability.settings import DetectorSettings
from storage.coordination import ElectedJobs
from storage.second_counts import SecondCounts
from storage.sink import InsertedRows
from storage.urls import libpq_url
from stream_core.events import PipelineState
from stream_core.records import ScoredPost
from tests.fixtures import pipeline as support
from tests.fixtures.fakes import FakeScorer
from watchlist.rules import WatchEntity
from watchlist.store import WatchStore

pytestmark = pytest.mark.integration

# A 2 s window judged every 0.2 s: a spike is caught within a few seconds of fake traffic.
FAST_DETECTOR: dict[str, Any] = {
    "alert_window_s": 2.0,
    "alert_min_volume": 40,
    "alert_baseline_half_life_s": 30.0,
    "alert_baseline_min_volume": 200,
    "alert_cooldown_s": 60.0,
    "alert_tick_s": 0.2,
    "alert_history_s": 60.0,
    "watch_alert_min_volume": 30,
    "watch_alert_baseline_min_volume": 100,
}
WATCHED = (
    WatchEntity(name="acme", keywords=["acme"], metrics=True),
    WatchEntity(name="globex", keywords=["globex"], metrics=True),
)


def alerts(database_url: str) -> list[tuple[Any, ...]]:
    return support.query(
        database_url,
        "SELECT id, kind, entity, detected_at, resolved_at FROM sentiment_alerts ORDER BY 4",
    )


@dataclass
class Traffic:
    """Posts at ``rate`` per second, a tenth naming acme and a tenth globex, a third negative;
    from ``spike_at`` for ``spike_s`` seconds every acme post is negative."""

    rate: int = 400
    spike_at: float = 6.0
    spike_s: float = 4.0
    calm_after_s: float = 4.0
    started: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.spike_at + self.spike_s + self.calm_after_s

    def post(self, i: int, elapsed_s: float) -> tuple[str, tuple[str, ...], str]:
        """(text, entities, label) of the i-th post; the label as the fake scorer gives it."""
        rng = random.Random(i)
        entities: tuple[str, ...] = ()
        if i % 10 == 0:
            entities = ("acme",)
        elif i % 10 == 5:
            entities = ("globex",)
        spiking = self.spike_at <= elapsed_s < self.spike_at + self.spike_s
        negative = (spiking and entities == ("acme",)) or rng.random() < 1 / 3
        label = "negative" if negative else rng.choice(["neutral", "positive"])
        return with_label(f"post {i} {' '.join(entities)}", label), entities, label

    def run(self, send: Callable[[list[tuple[str, tuple[str, ...], str]]], None]) -> None:
        """Call ``send`` every 0.1 s with the posts due, until the end."""
        self.started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - self.started) < self.duration_s:
            due = int(elapsed * self.rate)
            send([self.post(i, i / self.rate) for i in range(sent, due)])
            sent = due
            time.sleep(0.1)


def with_label(text: str, label: str) -> str:
    """``text`` padded so that the fake scorer (label = length % 3) gives it ``label``."""
    wanted = ("negative", "neutral", "positive").index(label)
    return text + " " + "." * ((wanted - len(text) - 1) % 3)


# --- the takeover, with counts written as the replicas' write part writes them --------------


def write_counts(database_url: str, posts: list[tuple[str, tuple[str, ...], str]]) -> None:
    scored = [
        ScoredPost(post_id=str(n), text=text, topic="t", partition=0, offset=n, label=label,
                   entities=entities)
        for n, (text, entities, label) in enumerate(posts)
    ]  # fmt: skip
    with psycopg.connect(libpq_url(database_url)) as conn, conn.cursor() as cursor:
        row = cursor.execute("SELECT now()").fetchone()  # the transaction's time, as in the sink
        assert row is not None
        SecondCounts().write(cursor, InsertedRows(scored, row[0]))


@contextmanager
def detector_replica(database_url: str) -> Iterator[tuple[ElectedJobs, AlertSink]]:
    """What runtime.start runs for the detector role, and only that."""
    settings = DetectorSettings(**FAST_DETECTOR)
    sink = AlertSink(database_url, "fake-1")
    fleet = FleetSpikes(
        settings.detector_config(),
        settings.entity_detector_config(),
        PipelineMetrics(),
        sink.submit,
        watched=lambda: {"acme", "globex"},
        history_s=settings.alert_history_s,
    )
    jobs = ElectedJobs(
        database_url, ROLE, retry_s=0.5, on_elected=fleet.elected, on_deposed=fleet.deposed
    )
    jobs.add("spike-detection", settings.alert_tick_s, fleet.run)
    jobs.start()
    try:
        yield jobs, sink
    finally:
        jobs.stop()
        sink.close()


def test_the_role_and_the_open_alert_move_when_the_detector_dies(database_url: str) -> None:
    support.migrated(database_url)
    traffic = Traffic(spike_at=6.0, spike_s=6.0, calm_after_s=4.0)
    writer = threading.Thread(
        target=traffic.run, args=(lambda posts: write_counts(database_url, posts),)
    )
    with ExitStack() as stack:
        first, _ = stack.enter_context(detector_replica(database_url))
        assert first.wait_until_leader(5)
        second, _ = stack.enter_context(detector_replica(database_url))
        writer.start()
        support.wait_until(lambda: len(alerts(database_url)) == 1, 15, "the first alert")
        with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
            # A crashed replica, as PostgreSQL sees it: its session ends.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"
            )
        first.stop()  # ... and it never comes back
        killed_at = time.monotonic()
        assert second.wait_until_leader(5)
        takeover_s = time.monotonic() - killed_at
        writer.join()
        support.wait_until(
            lambda: alerts(database_url)[0][4] is not None, 10, "the spike to be resolved"
        )
    ((_, kind, entity, _, resolved_at),) = alerts(database_url)
    print(f"detector role taken over in {takeover_s:.2f} s")
    assert (kind, entity) == ("negative_spike", "acme")
    assert resolved_at is not None  # resolved by the new detector, under the old alert's id


# --- whole replicas: pipeline, watchlist and detector candidacy each -------------------------


@dataclass
class Replica:
    runtime: ObservabilityRuntime
    metrics: PipelineMetrics
    pipeline: support.RunningPipeline


def start_replicas(
    stack: ExitStack, count: int, bootstrap: str, database_url: str, topic: str
) -> list[Replica]:
    settings = support.settings_for(bootstrap, database_url, topic, http_port=0, **FAST_DETECTOR)
    replicas = []
    for _ in range(count):
        metrics = PipelineMetrics()
        served = runtime.start(settings, FakeScorer(), metrics, PipelineState(model_loaded=True))
        stack.callback(served.close)
        running = stack.enter_context(
            support.running_pipeline(
                settings, watchlist=served.watchlist, observers=served.observers
            )
        )
        replicas.append(Replica(served, metrics, running))
    return replicas


def gauge(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.mark.parametrize("replica_count", [1, 4])
def test_a_spike_on_one_entity_is_one_alert_for_it_with_any_number_of_replicas(
    kafka_bootstrap: str, database_url: str, topic: str, replica_count: int
) -> None:
    partitions = 4
    support.create_topic(kafka_bootstrap, topic, partitions)
    support.migrated(database_url)
    WatchStore(database_url).sync(WATCHED, prune=True)
    traffic = Traffic()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    sent = [0]

    def send(posts: list[tuple[str, tuple[str, ...], str]]) -> None:
        for text, _, _ in posts:
            value = json.dumps({"id": f"p{sent[0]}", "text": text}).encode()
            producer.produce(topic, value, partition=sent[0] % partitions)
            sent[0] += 1
        producer.poll(0)

    with ExitStack() as stack:
        replicas = start_replicas(stack, replica_count, kafka_bootstrap, database_url, topic)

        def owned() -> list[tuple[str, int]]:
            return [p for r in replicas for p in r.pipeline.state.assigned_partitions()]

        support.wait_until(
            lambda: sorted(owned()) == [(topic, p) for p in range(partitions)],
            60,
            "every partition owned once",
        )
        traffic.run(send)
        spike_started = traffic.started + traffic.spike_at
        assert producer.flush(30) == 0
        support.wait_until(lambda: support.row_count(database_url) >= sent[0], 60, "every row")
        support.wait_until(
            lambda: len(alerts(database_url)) == 1 and alerts(database_url)[0][4] is not None,
            10,
            "the spike alert, resolved",
        )
        time.sleep(1.0)  # a few more ticks: nothing else may fire
        leaders = sum(gauge(r.metrics, "sentiment_detector_leader") for r in replicas)
        fired = {
            scope: sum(
                gauge(r.metrics, "sentiment_alerts_total", kind="negative_spike", scope=scope)
                for r in replicas
            )
            for scope in ("stream", "entity")
        }
        for replica in replicas:
            assert not replica.pipeline.errors
    ((_, kind, entity, detected_at, _),) = alerts(database_url)
    assert (kind, entity) == ("negative_spike", "acme")
    assert leaders == 1
    assert fired == {"stream": 0, "entity": 1}
    delay = detected_at.timestamp() - (time.time() - (time.monotonic() - spike_started))
    print(f"{replica_count} replica(s): one alert for acme, {delay:.1f} s after the spike began")
