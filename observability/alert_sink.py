"""Delivers spike alerts to PostgreSQL (``sentiment_alerts``) and the alerts topic, off-thread.

The detector runs on the pipeline's thread and must never wait for the database, so alerts go
through a queue to one writer thread. Each alert is written in its own short transaction,
keyed by its id: a retry after a failure (or a resolve after a fire) can never write it twice.
Failures are logged and retried with backoff until :meth:`AlertSink.close`'s deadline.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from confluent_kafka import KafkaException, Producer
from psycopg.types.json import Jsonb

from observability.spike import SpikeAlert
from storage.urls import libpq_url

log = structlog.get_logger(__name__)

INSERT_ALERT = """
INSERT INTO sentiment_alerts (
    id, kind, entity, detected_at, window_start, window_end, negative_share, baseline_share,
    volume, zscore, peak_share, model_version, details
) VALUES (
    %(id)s, %(kind)s, %(entity)s, %(detected_at)s, %(window_start)s, %(window_end)s,
    %(negative_share)s, %(baseline_share)s, %(volume)s, %(zscore)s, %(peak_share)s,
    %(model_version)s, %(details)s
)
ON CONFLICT DO NOTHING
"""
# No target on purpose: a retry hits the primary key, and an alert for a kind and scope that
# already has an open one (two detectors racing in a takeover) hits uq_sentiment_alerts_one_open.

RESOLVE_ALERT = """
UPDATE sentiment_alerts SET resolved_at = %(resolved_at)s, peak_share = %(peak_share)s
WHERE id = %(id)s
"""

MAX_BACKOFF_S = 30.0


def alert_record(alert: SpikeAlert, model_version: str) -> dict[str, Any]:
    """The alert as one JSON-ready object: the Kafka message and the table row agree on it."""
    return {
        "id": str(alert.alert_id),
        "kind": str(alert.kind),
        "entity": alert.entity,
        "status": "firing" if alert.firing else "resolved",
        "detected_at": alert.detected_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "window_start": alert.window_start.isoformat(),
        "window_end": alert.window_end.isoformat(),
        "negative_share": alert.negative_share,
        "baseline_share": alert.baseline_share,
        "peak_share": alert.peak_share,
        "volume": alert.volume,
        "zscore": alert.zscore,
        "dispersion": alert.dispersion,
        "model_version": model_version,
    }


class AlertSink:
    """A writer thread: ``submit`` never blocks; ``close`` drains what it can by a deadline."""

    def __init__(
        self,
        database_url: str,
        model_version: str,
        *,
        topic: str = "",
        producer: Producer | None = None,
        connect: Callable[[str], psycopg.Connection[Any]] | None = None,
    ) -> None:
        self._dsn = libpq_url(database_url)
        self._model_version = model_version
        self._topic = topic
        self._producer = producer
        self._connect = connect or _connect
        self._conn: psycopg.Connection[Any] | None = None
        self._queue: queue.Queue[SpikeAlert] = queue.Queue()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self.written = 0  # rows inserted or updated, for tests and logs
        self._thread = threading.Thread(target=self._run, name="alert-sink", daemon=True)
        self._thread.start()

    def submit(self, alert: SpikeAlert) -> None:
        self._queue.put(alert)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued within ``timeout_s``, then stop (what is left is logged)."""
        self._deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._thread.join(timeout_s + 1)
        if self._producer is not None:
            self._producer.flush(max(0.0, self._deadline - time.monotonic()))
        if self._conn is not None:
            self._conn.close()
        if not self._queue.empty():
            log.error("alerts not delivered before shutdown", count=self._queue.qsize())

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                alert = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._producer is not None:
                    self._producer.poll(0)
                continue
            self._deliver(alert)

    def _deliver(self, alert: SpikeAlert) -> None:
        record = alert_record(alert, self._model_version)
        self._publish(record)
        backoff = 0.5
        while True:
            try:
                self._write(alert, record)
                return
            except psycopg.Error as error:
                log.warning("alert write failed; retrying", alert_id=record["id"], error=str(error))
                self._reset_connection()
            if time.monotonic() + backoff > self._deadline:
                log.error("alert dropped at shutdown", alert=record)
                return
            if self._stop.is_set():
                time.sleep(backoff)
            else:
                self._stop.wait(backoff)  # close() wakes us to retry before its deadline
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _write(self, alert: SpikeAlert, record: dict[str, Any]) -> None:
        if self._conn is None:
            self._conn = self._connect(self._dsn)
        with self._conn.transaction():
            if alert.firing:
                details = {"dispersion": alert.dispersion}
                self._conn.execute(
                    INSERT_ALERT,
                    {
                        **record,
                        "id": alert.alert_id,
                        "detected_at": alert.detected_at,
                        "window_start": alert.window_start,
                        "window_end": alert.window_end,
                        "details": Jsonb(details),
                    },
                )
            else:
                self._conn.execute(
                    RESOLVE_ALERT,
                    {
                        "id": alert.alert_id,
                        "resolved_at": alert.resolved_at,
                        "peak_share": alert.peak_share,
                    },
                )
        self.written += 1
        log.info("alert stored", alert_id=record["id"], status=record["status"])

    def _publish(self, record: dict[str, Any]) -> None:
        if self._producer is None or not self._topic:
            return
        try:
            self._producer.produce(
                self._topic,
                value=json.dumps(record).encode(),
                key=record["kind"].encode(),
                on_delivery=_log_delivery,
            )
            self._producer.poll(0)
        except (BufferError, RuntimeError, KafkaException) as error:
            # librdkafka retries by itself; a full queue, a closed producer or a refused message
            # only loses the copy on the topic: the table row is still written (and the thread
            # that writes every later alert lives on).
            log.error("alert not produced", alert_id=record["id"], error=str(error))

    def _reset_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def _connect(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, connect_timeout=5, autocommit=True)


def _log_delivery(error: object, message: object) -> None:
    if error is not None:
        log.error("alert delivery failed", error=str(error))
