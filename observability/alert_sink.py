"""Delivers spike alerts to PostgreSQL (``sentiment_alerts``) and the alerts topic, off-thread.

The detector runs on the pipeline's thread and must never wait for the database, so alerts go
through a queue to one writer thread. Each alert is written in its own short transaction,
keyed by its id: a retry after a failure (or a resolve after a fire) can never write it twice.
Failures are logged and retried (``stream_core.backoff``) until :meth:`AlertSink.close`'s
deadline.
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
from storage import alerts
from storage.urls import libpq_url
from stream_core.backoff import Backoff, retry

log = structlog.get_logger(__name__)

# Alerts are rare and must land: retried from half a second, up to half a minute apart.
ALERT_BACKOFF = Backoff(initial_s=0.5, max_s=30.0)


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

        def pause(error: Exception, _attempt: int, delay_s: float) -> bool:
            log.warning("alert write failed; retrying", alert_id=record["id"], error=str(error))
            self._reset_connection()
            if time.monotonic() + delay_s > self._deadline:
                return False
            if self._stop.is_set():
                time.sleep(delay_s)
            else:
                self._stop.wait(delay_s)  # close() wakes us to retry before its deadline
            return True

        try:
            retry(
                lambda: self._write(alert, record),
                backoff=ALERT_BACKOFF,
                retry_on=lambda error: isinstance(error, psycopg.Error),
                pause=pause,
            )
        except psycopg.Error:
            log.error("alert dropped at shutdown", alert=record)

    def _write(self, alert: SpikeAlert, record: dict[str, Any]) -> None:
        if self._conn is None:
            self._conn = self._connect(self._dsn)
        with self._conn.transaction():
            if alert.firing:
                row = {
                    **record,
                    "id": alert.alert_id,
                    "detected_at": alert.detected_at,
                    "window_start": alert.window_start,
                    "window_end": alert.window_end,
                    "details": Jsonb({"dispersion": alert.dispersion}),
                }
                alerts.insert_alert(self._conn, row)
            else:
                assert alert.resolved_at is not None  # not firing: resolved
                alerts.resolve_alert(
                    self._conn, alert.alert_id, alert.resolved_at, alert.peak_share
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
