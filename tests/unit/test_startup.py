"""Start-up that waits (stream_core.startup) and what is worth waiting for, without services."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException

from storage.refusals import refused_for_good
from stream_core.backoff import Backoff
from stream_core.kafka import worth_waiting_for
from stream_core.startup import StoppedWhileWaitingError, wait_for

FAST = Backoff(initial_s=0.01, max_s=0.05)


class DownError(Exception):
    pass


class Flaky:
    """Raises ``error`` on the first ``failures`` calls, then answers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or DownError("connection refused")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "up"


def is_down(error: Exception) -> bool:
    return isinstance(error, DownError)


def test_waits_out_passing_failures_then_answers() -> None:
    probe = Flaky(failures=4)
    result = wait_for("db", probe, timeout_s=30, worth_waiting=is_down, backoff=FAST)
    assert (result, probe.calls) == ("up", 5)


def test_a_failure_not_worth_waiting_for_raises_at_once() -> None:
    probe = Flaky(failures=4, error=ValueError("wrong password"))
    with pytest.raises(ValueError, match="wrong password"):
        wait_for("db", probe, timeout_s=30, worth_waiting=is_down, backoff=FAST)
    assert probe.calls == 1


def test_after_the_deadline_the_last_error_propagates_unchanged() -> None:
    probe = Flaky(failures=10**6)
    started = time.monotonic()
    with pytest.raises(DownError, match="connection refused"):
        wait_for("db", probe, timeout_s=0.3, worth_waiting=lambda e: True, backoff=FAST)
    assert 0.3 <= time.monotonic() - started < 5
    assert probe.calls > 3


def test_a_zero_timeout_tries_once() -> None:
    probe = Flaky(failures=1)
    with pytest.raises(DownError):
        wait_for("db", probe, timeout_s=0, worth_waiting=lambda e: True, backoff=FAST)
    assert probe.calls == 1


def test_a_stop_request_ends_the_wait() -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(StoppedWhileWaitingError, match="stopped while waiting for db"):
        wait_for(
            "db",
            Flaky(failures=10**6),
            timeout_s=60,
            worth_waiting=lambda e: True,
            stop=stop,
            backoff=Backoff(initial_s=0.05, max_s=0.1),
        )


@pytest.mark.parametrize(
    ("message", "lasting"),
    [
        ('FATAL:  password authentication failed for user "app"', True),
        ("fe_sendauth: no password supplied", True),
        ('FATAL:  database "nodb" does not exist', True),
        ('FATAL:  role "nobody" does not exist', True),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "app"', True),
        ("port 5432 failed: Connection refused\n\tIs the server running on that host?", False),
        ("FATAL:  the database system is starting up", False),
        ("FATAL:  the database system is shutting down", False),
        ("FATAL:  sorry, too many clients already", False),
        ("timeout expired", False),
        ('could not translate host name "postgres" to address', False),
    ],
)
def test_which_database_refusals_are_lasting(message: str, lasting: bool) -> None:
    assert refused_for_good(psycopg.OperationalError(message)) is lasting


def test_a_broker_that_refuses_our_credentials_is_not_worth_waiting_for() -> None:
    assert worth_waiting_for(KafkaException(KafkaError(KafkaError._TRANSPORT, "refused")))
    assert worth_waiting_for(KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)))
    assert not worth_waiting_for(KafkaException(KafkaError(KafkaError._AUTHENTICATION, "SASL")))
    assert not worth_waiting_for(ValueError("not a broker failure"))
