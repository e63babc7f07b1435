"""Alerts land once in sentiment_alerts (and on the alerts topic), surviving database trouble."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from observability.alert_sink import AlertSink
from observability.spike import AlertKind, SpikeAlert
from storage.migrate import downgrade, upgrade
from storage.urls import libpq_url

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def an_alert() -> SpikeAlert:
    return SpikeAlert(
        alert_id=uuid.uuid4(),
        kind=AlertKind.NEGATIVE_SPIKE,
        detected_at=T0,
        window_start=T0 - timedelta(seconds=20),
        window_end=T0,
        negative_share=0.55,
        baseline_share=0.2,
        volume=900,
        zscore=12.5,
        dispersion=1.1,
        peak_share=0.55,
    )


def alert_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(
            "SELECT id, kind, negative_share, peak_share, resolved_at, volume, model_version, "
            "details FROM sentiment_alerts"
        ).fetchall()


def wait_for(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_fire_then_resolve_is_one_row_written_once(database_url: str) -> None:
    upgrade(database_url)
    sink = AlertSink(database_url, "model-v1")
    fired = an_alert()
    resolved = replace(fired, peak_share=0.8, resolved_at=T0 + timedelta(seconds=40))
    sink.submit(fired)
    sink.submit(fired)  # a retry of the same alert
    sink.submit(resolved)
    sink.close()
    assert sink.written == 3
    ((row_id, kind, share, peak, resolved_at, volume, version, details),) = alert_rows(database_url)
    assert (row_id, kind, share, peak, volume, version) == (
        fired.alert_id,
        "negative_spike",
        0.55,
        0.8,
        900,
        "model-v1",
    )
    assert resolved_at == T0 + timedelta(seconds=40)
    assert details == {"dispersion": 1.1}


def test_database_failures_are_retried(database_url: str) -> None:
    upgrade(database_url)
    attempts: list[str] = []

    def flaky_connect(dsn: str) -> psycopg.Connection[Any]:
        attempts.append(dsn)
        if len(attempts) < 3:
            raise psycopg.OperationalError("connection refused (simulated)")
        return psycopg.connect(dsn, autocommit=True)

    sink = AlertSink(database_url, "model-v1", connect=flaky_connect)
    sink.submit(an_alert())
    wait_for(lambda: sink.written == 1)
    sink.close()
    assert len(attempts) == 3
    assert len(alert_rows(database_url)) == 1


class RefusingProducer:
    """A producer that refuses every message, as librdkafka does one that is too large."""

    def produce(self, *_args: Any, **_kwargs: Any) -> None:
        raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0


def test_a_refused_topic_copy_still_stores_every_alert(database_url: str) -> None:
    upgrade(database_url)
    producer = cast(Producer, RefusingProducer())
    sink = AlertSink(database_url, "model-v1", topic="alerts", producer=producer)
    sink.submit(an_alert())
    sink.submit(replace(an_alert(), entity="acme"))
    sink.close()
    assert sink.written == 2
    assert len(alert_rows(database_url)) == 2


def test_one_open_alert_per_kind_and_scope_whoever_writes_it(database_url: str) -> None:
    """Two detectors racing (a takeover) cannot open a second row for one spike; a new alert
    opens once the last one for that scope is resolved, and other scopes are independent."""
    upgrade(database_url)
    sink = AlertSink(database_url, "model-v1")
    first, rival, acme = an_alert(), an_alert(), replace(an_alert(), entity="acme")
    later = replace(an_alert(), detected_at=T0 + timedelta(minutes=5))
    for alert in (first, rival, acme, replace(first, resolved_at=T0 + timedelta(seconds=30))):
        sink.submit(alert)
    sink.submit(later)
    sink.close()
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute("SELECT id, entity, resolved_at IS NULL FROM sentiment_alerts")
        assert set(rows.fetchall()) == {
            (first.alert_id, None, False),
            (acme.alert_id, "acme", True),
            (later.alert_id, None, True),
        }


def test_submit_never_blocks_and_close_gives_up_by_its_deadline(database_url: str) -> None:
    # No schema: every write fails. submit() returns at once; close() returns near its deadline.
    sink = AlertSink(database_url, "model-v1")
    started = time.monotonic()
    sink.submit(an_alert())
    assert time.monotonic() - started < 0.5
    sink.close(timeout_s=2)
    assert time.monotonic() - started < 6
    assert sink.written == 0


def test_migration_0002_downgrades_and_upgrades(database_url: str) -> None:
    upgrade(database_url)
    downgrade(database_url, "0001")
    with psycopg.connect(libpq_url(database_url)) as conn:
        assert conn.execute("SELECT to_regclass('sentiment_alerts')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('scored_posts')").fetchone() != (None,)
    upgrade(database_url)
    assert alert_rows(database_url) == []


def test_alerts_are_produced_to_the_alerts_topic(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    upgrade(database_url)
    alerts_topic = f"{topic}.alerts"
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    sink = AlertSink(database_url, "model-v1", topic=alerts_topic, producer=producer)
    fired = an_alert()
    sink.submit(fired)
    sink.submit(replace(fired, resolved_at=T0 + timedelta(seconds=30)))
    sink.close()

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([alerts_topic])
    messages: list[Message] = []
    deadline = time.monotonic() + 30
    while len(messages) < 2 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            messages.append(message)
    consumer.close()
    assert [m.key() for m in messages] == [b"negative_spike", b"negative_spike"]
    bodies = [json.loads(m.value() or b"") for m in messages]
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert {b["id"] for b in bodies} == {str(fired.alert_id)}
    assert bodies[0]["negative_share"] == 0.55
    assert bodies[1]["resolved_at"] == (T0 + timedelta(seconds=30)).isoformat()
