"""Coordination between the replicas of a fleet, through the PostgreSQL they all share.

* :class:`ElectedJobs`: periodic jobs that exactly one replica runs at a time (fleet-wide spike
  detection, partition maintenance, automated rollback...). The replica holding a session-level
  advisory lock on its own connection runs them. When it dies, PostgreSQL ends its session and
  releases the lock, and another replica takes it at its next try (within ``retry_s``).
* :class:`ChangeListener`: every replica hears about changes to shared state (the active model,
  the watchlist) within a second through LISTEN/NOTIFY, and re-reads it every ``poll_s`` anyway,
  so a notification lost in a reconnect (or behind a transaction-mode PgBouncer, which drops
  LISTEN) delays a change by one poll, never forever.
* :func:`notify`: NOTIFY inside the caller's transaction; PostgreSQL delivers it at commit, so a
  listener never reads the state before the change is visible.

Leadership is a lease on a live session, not a guarantee against every partition: a leader cut
off from the database keeps running its current job until its next statement fails. Jobs must
therefore be idempotent (write with ON CONFLICT, take their own row locks), which is also what
makes a takeover mid-job harmless.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg import sql

from storage.urls import libpq_url, redacted

log = structlog.get_logger(__name__)

Job = Callable[[psycopg.Connection[Any]], None]
Callback = Callable[[], None]

CONNECT_TIMEOUT_S = 5
RECONNECT_S = 1.0  # the listener's wait before reconnecting: changes must not wait a poll


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (the same in every replica)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def notify(conn: psycopg.Connection[Any], channel: str, payload: str = "") -> None:
    """Queue a notification on ``channel``; it is delivered when ``conn``'s transaction commits."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _connect(database_url: str, application_name: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        libpq_url(database_url),
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name=application_name,
    )


@dataclass
class _Scheduled:
    name: str
    every_s: float
    job: Job
    due: float = field(default=0.0)


class _BackgroundWorker:
    """A daemon thread running ``_run`` until ``stop``; configured before ``start``."""

    def __init__(self, thread_name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to finish, and wait for it (at most ``timeout_s``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _check_not_started(self, what: str) -> None:
        if self._thread.is_alive():
            raise RuntimeError(f"{what} before start()")

    def _run(self) -> None:
        raise NotImplementedError


class ElectedJobs(_BackgroundWorker):
    """Runs its jobs in a background thread, only while this replica holds the fleet's lock.

    ``lock_name`` names the fleet-wide role ("spike-detector", "db-maintenance"): replicas that
    use the same name elect one runner among themselves. ``on_elected`` / ``on_deposed`` let a
    job reset state it keeps in memory when the role moves.
    """

    def __init__(
        self,
        database_url: str,
        lock_name: str,
        *,
        retry_s: float = 2.0,
        on_elected: Callback | None = None,
        on_deposed: Callback | None = None,
    ) -> None:
        super().__init__(f"elected-{lock_name}")
        self._url = database_url
        self._lock_name = lock_name
        self._key = advisory_key(lock_name)
        self._retry_s = retry_s
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._jobs: list[_Scheduled] = []
        self._conn: psycopg.Connection[Any] | None = None
        self._leader = threading.Event()

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    def wait_until_leader(self, timeout_s: float) -> bool:
        return self._leader.wait(timeout_s)

    def add(self, name: str, every_s: float, job: Job) -> None:
        """Run ``job(connection)`` every ``every_s`` seconds while leader (first run at once)."""
        self._check_not_started("add jobs")
        self._jobs.append(_Scheduled(name, every_s, job))

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._tick()
                self._stop.wait(self._sleep_s())
        finally:
            self._step_down("stopped")

    def _tick(self) -> None:
        try:
            conn = self._connection()
            if not self.is_leader:
                self._try_lock(conn)
            else:
                conn.execute("SELECT 1")  # a dead session shows here, not in a job
            if self.is_leader:
                self._run_due_jobs(conn)
        except psycopg.Error as error:
            log.warning(
                "lost the database; role given up",
                role=self._lock_name,
                database=redacted(self._url),
                error=str(error).strip(),
            )
            self._step_down("connection lost")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = _connect(self._url, f"sentiment-stream {self._lock_name}")
        return self._conn

    def _try_lock(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        if row is None or not row[0]:
            return
        log.info("elected", role=self._lock_name)
        self._leader.set()
        for scheduled in self._jobs:
            scheduled.due = 0.0  # a new leader catches up at once
        if self._on_elected is not None:
            self._on_elected()

    def _run_due_jobs(self, conn: psycopg.Connection[Any]) -> None:
        for scheduled in self._jobs:
            if self._stop.is_set() or time.monotonic() < scheduled.due:
                continue
            scheduled.due = time.monotonic() + scheduled.every_s
            try:
                scheduled.job(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the session is gone, and the role with it
            except Exception:
                # A job's bug must not cost the fleet its other jobs; it runs again when due.
                log.exception("elected job failed", role=self._lock_name, job=scheduled.name)
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.rollback()

    def _sleep_s(self) -> float:
        if not self.is_leader or not self._jobs:
            return self._retry_s
        next_due = min(scheduled.due for scheduled in self._jobs)
        return min(self._retry_s, max(0.05, next_due - time.monotonic()))

    def _step_down(self, why: str) -> None:
        was_leader = self.is_leader
        self._leader.clear()
        if self._conn is not None:
            self._conn.close()  # ends the session: the lock is free for the others at once
            self._conn = None
        if was_leader:
            log.info("role given up", role=self._lock_name, why=why)
            if self._on_deposed is not None:
                self._on_deposed()


class ChangeListener(_BackgroundWorker):
    """Calls each channel's callbacks on NOTIFY, and every ``poll_s`` whatever happens.

    Callbacks mean "the state may have changed: read it again"; they run in the listener's
    thread, one at a time, and should be quick (hand heavy work, like loading a model, to
    another thread). A burst of notifications on one channel runs its callbacks once.
    """

    def __init__(self, database_url: str, *, poll_s: float = 5.0) -> None:
        super().__init__("change-listener")
        self._url = database_url
        self._poll_s = poll_s
        self._callbacks: dict[str, list[Callback]] = {}

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._check_not_started("subscribe")
        self._callbacks.setdefault(channel, []).append(callback)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with _connect(self._url, "sentiment-stream listener") as conn:
                    for channel in self._callbacks:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    # Changes made while we were not listening: read everything once.
                    self._call(set(self._callbacks))
                    self._listen(conn)
            except psycopg.Error as error:
                log.warning("change listener lost the database", error=str(error).strip())
                self._stop.wait(min(RECONNECT_S, self._poll_s))

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        next_poll = time.monotonic() + self._poll_s
        while not self._stop.is_set():
            # Short waits, so stop() is honoured within a second.
            wait_s = max(0.0, min(1.0, next_poll - time.monotonic()))
            notified = {note.channel for note in conn.notifies(timeout=wait_s)}
            if time.monotonic() >= next_poll:
                notified = set(self._callbacks)
                next_poll = time.monotonic() + self._poll_s
            self._call(notified)

    def _call(self, channels: set[str]) -> None:
        for channel in channels:
            for callback in self._callbacks.get(channel, ()):
                try:
                    callback()
                except Exception:
                    log.exception("change callback failed", channel=channel)
