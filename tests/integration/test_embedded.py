"""The embedded broker and PostgreSQL start, answer, and leave no process behind."""

from __future__ import annotations

import psutil
import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from embedded import EmbeddedBroker, EmbeddedPostgres

pytestmark = pytest.mark.integration


def test_embedded_postgres_serves_tcp_and_stops_by_pid() -> None:
    with EmbeddedPostgres() as server:
        pid = server.pid
        assert pid is not None and psutil.pid_exists(pid)
        server.create_database("demo")
        with psycopg.connect(server.conninfo("demo")) as conn:
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        data = server.base_dir
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not data.exists()


def test_embedded_postgres_keeps_data_across_restart() -> None:
    with EmbeddedPostgres() as server:
        with psycopg.connect(server.conninfo()) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
        server.stop()
        server.start()
        with psycopg.connect(server.conninfo()) as conn:
            assert conn.execute("SELECT x FROM t").fetchone() == (42,)


def test_embedded_broker_round_trip() -> None:
    with EmbeddedBroker() as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        producer.produce("roundtrip", b"hello", key=b"k")
        assert producer.flush(10) == 0
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap_servers,
                "group.id": "g",
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 2000,
            }
        )
        consumer.subscribe(["roundtrip"])
        message = None
        for _ in range(40):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                break
        consumer.close()
        assert message is not None and message.value() == b"hello"
        pid = broker.pid
    assert pid is not None and not psutil.pid_exists(pid)
