"""Replica coordination against a real PostgreSQL: one elected runner, takeover, change events."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from storage.coordination import ChangeListener, ElectedJobs, advisory_key, notify
from storage.urls import libpq_url

pytestmark = pytest.mark.integration

FAST_RETRY_S = 0.2


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Runs:
    """Counts the runs of one replica's job (and can make it fail)."""

    def __init__(self, *, failing: bool = False) -> None:
        self.count = 0
        self.failing = failing
        self.lock = threading.Lock()

    def __call__(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT 1")
        with self.lock:
            self.count += 1
        if self.failing:
            raise ValueError("a bug in the job")


@pytest.fixture
def replicas(database_url: str) -> Iterator[Callable[..., tuple[ElectedJobs, Runs]]]:
    started: list[ElectedJobs] = []

    def start(lock_name: str = "test-role", *, every_s: float = 0.05) -> tuple[ElectedJobs, Runs]:
        runs = Runs()
        jobs = ElectedJobs(database_url, lock_name, retry_s=FAST_RETRY_S)
        jobs.add("count", every_s, runs)
        jobs.start()
        started.append(jobs)
        return jobs, runs

    yield start
    for jobs in started:
        jobs.stop()


def test_the_advisory_key_is_stable_and_signed_64_bit() -> None:
    key = advisory_key("spike-detector")
    assert key == advisory_key("spike-detector") != advisory_key("db-maintenance")
    assert -(2**63) <= key < 2**63


def test_exactly_one_replica_runs_the_jobs(
    replicas: Callable[..., tuple[ElectedJobs, Runs]],
) -> None:
    fleet = [replicas() for _ in range(3)]
    assert wait_for(lambda: any(jobs.is_leader for jobs, _ in fleet))
    time.sleep(0.5)  # several retry periods: nobody else may take the role meanwhile
    leaders = [(jobs, runs) for jobs, runs in fleet if jobs.is_leader]
    assert len(leaders) == 1
    assert leaders[0][1].count >= 3
    assert all(runs.count == 0 for jobs, runs in fleet if not jobs.is_leader)


def test_other_roles_elect_their_own_runner(
    replicas: Callable[..., tuple[ElectedJobs, Runs]],
) -> None:
    first, _ = replicas("role-a")
    second, _ = replicas("role-b")
    assert wait_for(lambda: first.is_leader and second.is_leader)


def test_a_stopped_leader_hands_over_within_the_retry_period(
    replicas: Callable[..., tuple[ElectedJobs, Runs]],
) -> None:
    fleet = [replicas(), replicas()]
    assert wait_for(lambda: any(jobs.is_leader for jobs, _ in fleet))
    (leader, _), (follower, follower_runs) = sorted(fleet, key=lambda pair: not pair[0].is_leader)
    leader.stop()
    assert not leader.is_leader
    started = time.monotonic()
    assert follower.wait_until_leader(5.0)
    assert time.monotonic() - started < FAST_RETRY_S + 1.0
    assert wait_for(lambda: follower_runs.count > 0)


def test_a_leader_whose_session_dies_steps_down_and_the_role_moves(
    replicas: Callable[..., tuple[ElectedJobs, Runs]], database_url: str
) -> None:
    fleet = [replicas(), replicas()]
    assert wait_for(lambda: any(jobs.is_leader for jobs, _ in fleet))
    with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
        # What a crashed replica looks like to PostgreSQL: its session ends.
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    assert killed == [(True,)]
    # Someone holds the role again soon, and still only one replica.
    time.sleep(FAST_RETRY_S * 3)
    assert wait_for(lambda: sum(jobs.is_leader for jobs, _ in fleet) == 1)


def test_a_failing_job_does_not_stop_the_others(database_url: str) -> None:
    broken, healthy = Runs(failing=True), Runs()
    jobs = ElectedJobs(database_url, "failing-role", retry_s=FAST_RETRY_S)
    jobs.add("broken", 0.05, broken)
    jobs.add("healthy", 0.05, healthy)
    jobs.start()
    try:
        assert wait_for(lambda: broken.count >= 3 and healthy.count >= 3)
        assert jobs.is_leader
    finally:
        jobs.stop()


def test_elected_and_deposed_callbacks_follow_the_role(database_url: str) -> None:
    events: list[str] = []
    jobs = ElectedJobs(
        database_url,
        "callback-role",
        retry_s=FAST_RETRY_S,
        on_elected=lambda: events.append("elected"),
        on_deposed=lambda: events.append("deposed"),
    )
    jobs.start()
    assert jobs.wait_until_leader(5.0)
    jobs.stop()
    assert events == ["elected", "deposed"]


class Calls:
    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self) -> None:
        self.times.append(time.monotonic())


@pytest.fixture
def listener_calls(database_url: str) -> Iterator[Callable[[float], Calls]]:
    listeners: list[ChangeListener] = []

    def start(poll_s: float) -> Calls:
        calls = Calls()
        listener = ChangeListener(database_url, poll_s=poll_s)
        listener.subscribe("model_changed", calls)
        listener.start()
        listeners.append(listener)
        assert wait_for(lambda: len(calls.times) >= 1)  # the read-everything call at start
        return calls

    yield start
    for listener in listeners:
        listener.stop()


def test_a_committed_notification_reaches_the_listener_within_a_second(
    listener_calls: Callable[[float], Calls], database_url: str
) -> None:
    calls = listener_calls(60.0)  # no polling during the test: only NOTIFY can call it
    before = len(calls.times)
    with psycopg.connect(libpq_url(database_url)) as conn:
        with conn.transaction():
            notify(conn, "model_changed", "v2")
            time.sleep(0.3)
            assert len(calls.times) == before  # not before the commit
        sent = time.monotonic()
    assert wait_for(lambda: len(calls.times) > before, timeout_s=3.0)
    assert calls.times[before] - sent < 1.5


def test_a_rolled_back_change_is_not_announced(
    listener_calls: Callable[[float], Calls], database_url: str
) -> None:
    calls = listener_calls(60.0)
    before = len(calls.times)
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("SELECT pg_notify('model_changed', 'never')")
        conn.rollback()
    time.sleep(1.5)
    assert len(calls.times) == before


def test_polling_calls_back_even_without_notifications(
    listener_calls: Callable[[float], Calls],
) -> None:
    calls = listener_calls(0.3)
    before = len(calls.times)
    assert wait_for(lambda: len(calls.times) >= before + 3, timeout_s=5.0)


def test_the_listener_comes_back_after_its_session_dies(
    listener_calls: Callable[[float], Calls], database_url: str
) -> None:
    calls = listener_calls(60.0)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'sentiment-stream listener' AND datname = current_database()"
        )
    before = len(calls.times)
    # On reconnect it calls back once (changes may have been missed), then hears NOTIFY again.
    assert wait_for(lambda: len(calls.times) > before, timeout_s=15.0)
    after_reconnect = len(calls.times)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        notify(conn, "model_changed")
    assert wait_for(lambda: len(calls.times) > after_reconnect, timeout_s=3.0)
