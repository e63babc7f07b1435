"""Time partitions of ``scored_posts`` and of every table registered beside it.

Each registered table (``partitioned_tables``; a migration registers it with
``migrations.partitioning.register_partitioned``) is range-partitioned on its time column,
``kafka_timestamp``. :func:`maintain` does, for each:

* **ahead**: creates the partitions of the current interval, the one before and
  ``policy.ahead`` after it, so that no insert waits for one; and the partition of any
  retained interval that rows in the default partition belong to (a backfill, a producer
  clock running ahead), moving those rows in. A partition is created as a plain table and
  ATTACHed, which locks the parent table only against other DDL, never against inserts;
* **retention**: moves the table's ``kept_from`` to the start of the interval holding
  ``now - retention``, deletes the default partition's rows older than that (strays: a
  healthy stream leaves none there), then detaches and drops every partition that ends at or
  before it. A drop takes as long as deleting a file, whatever the partition holds. Writers skip
  rows older than ``kept_from`` (``storage.sink``), so a dropped partition is never written
  again, and a replay of a message whose row is gone is not stored (or counted) twice.

DETACH needs a moment's exclusive lock on the parent table, which waits for the batches in
flight; a long query holding the table (a dashboard scanning it) would make the stream queue
behind the DETACH. Each DDL statement therefore gives up after ``policy.lock_timeout_s`` and is
retried a few times, then left for the next run.

Rows without a time (a message Kafka gave no timestamp: message format v0) live in the default
partition and are never expired by time; :class:`TableReport` counts them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_args

import psycopg
import structlog
from psycopg import sql

from migrations.partitioning import REGISTRY
from storage.settings import PartitionInterval as Interval
from storage.settings import StorageSettings

log = structlog.get_logger(__name__)

INTERVALS: tuple[Interval, ...] = get_args(Interval)

DDL_ATTEMPTS = 3
_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")

T = TypeVar("T")


def kept_from(table: str) -> str:
    """SQL for ``table``'s ``kept_from`` (``-infinity`` when not registered): the oldest time
    a writer still stores."""
    return (
        f"(SELECT coalesce(max(kept_from), '-infinity') FROM {REGISTRY} "
        f"WHERE table_name = '{table}')"
    )


def floor(moment: datetime, interval: Interval) -> datetime:
    """The start of the UTC ``interval`` holding ``moment`` (weeks start on Monday, as in
    PostgreSQL's ``date_trunc``)."""
    moment = moment.astimezone(UTC)
    if interval == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def following(start: datetime, interval: Interval) -> datetime:
    """The start of the interval after the one starting at ``start``."""
    if interval == "hour":
        return start + timedelta(hours=1)
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(weeks=1)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(table: str, lower: datetime) -> str:
    """``scored_posts_p20250105`` (``..._p20250105T13`` for hours): the table and its start."""
    stamp = f"{lower:%Y%m%d}" if lower.hour == 0 else f"{lower:%Y%m%dT%H}"
    return f"{table}_p{stamp}"


@dataclass(frozen=True)
class PartitionPolicy:
    """How registered tables are partitioned and how long their rows are kept."""

    interval: Interval = "day"
    ahead: int = 3  # intervals created ahead of the current one
    retention: timedelta = timedelta(days=30)
    lock_timeout_s: float = 2.0

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> PartitionPolicy:
        return cls(
            interval=settings.partition_interval,
            ahead=settings.partitions_ahead,
            retention=timedelta(days=settings.retention_days),
        )

    def horizon(self, now: datetime) -> datetime:
        """Rows from here on are kept: the start of the interval holding ``now - retention``."""
        return floor(now - self.retention, self.interval)


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime
    upper: datetime


@dataclass(frozen=True)
class DroppedPartition:
    name: str
    lower: datetime
    upper: datetime
    bytes: int  # table, indexes and TOAST
    seconds: float  # DETACH + DROP


@dataclass
class TableReport:
    """What :func:`maintain` did to one table."""

    table: str
    kept_from: datetime | None = None
    created: list[Partition] = field(default_factory=list)
    moved_rows: int = 0  # from the default partition into partitions created for them
    dropped: list[DroppedPartition] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # locked: left for the next run
    stray_rows_deleted: int = 0  # expired rows of the default partition
    untimed_rows: int = 0  # rows without a time, kept in the default partition


@dataclass(frozen=True)
class _Layout:
    """A registered table as the catalog describes it."""

    table: str
    column: str
    default: str
    partitions: list[Partition]


def registered_tables(conn: psycopg.Connection[Any]) -> list[str]:
    return [name for (name,) in conn.execute(f"SELECT table_name FROM {REGISTRY} ORDER BY 1")]


def _layout(conn: psycopg.Connection[Any], table: str) -> _Layout:
    (column,) = conn.execute(
        "SELECT a.attname FROM pg_partitioned_table p JOIN pg_attribute a"
        " ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
        " WHERE p.partrelid = %s::regclass",
        (table,),
    ).fetchone() or (None,)
    if column is None:
        raise ValueError(f"{table} is registered in {REGISTRY} but is not partitioned")
    default = ""
    partitions = []
    for name, bound in conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (table,),
    ):
        found = _BOUND.fullmatch(bound)
        if found is not None:
            lower, upper = (datetime.fromisoformat(found[1]), datetime.fromisoformat(found[2]))
            partitions.append(Partition(name, lower.astimezone(UTC), upper.astimezone(UTC)))
        elif bound == "DEFAULT":
            default = name
    if not default:
        raise ValueError(f"{table} has no default partition (register_partitioned makes it)")
    return _Layout(table, column, default, sorted(partitions, key=lambda p: p.lower))


def uncovered(wanted: Partition, existing: list[Partition]) -> Iterator[tuple[datetime, datetime]]:
    """The parts of ``wanted``'s range that no existing partition covers."""
    start = wanted.lower
    for partition in existing:
        if partition.upper <= start or partition.lower >= wanted.upper:
            continue
        if partition.lower > start:
            yield start, partition.lower
        start = max(start, partition.upper)
    if start < wanted.upper:
        yield start, wanted.upper


def _retrying(what: str, action: Callable[[], T], pause_s: float) -> T | None:
    """``action`` (one transaction of DDL), retried when a lock timed out; None if it never
    got its locks."""
    for attempt in range(DDL_ATTEMPTS):
        try:
            return action()
        except psycopg.errors.LockNotAvailable:
            log.info("partition DDL waited too long for a lock", what=what, attempt=attempt + 1)
            time.sleep(pause_s * (attempt + 1))
    return None


class _TableMaintenance:
    def __init__(
        self, conn: psycopg.Connection[Any], table: str, policy: PartitionPolicy, now: datetime
    ) -> None:
        self.conn = conn
        self.policy = policy
        self.now = now
        self.layout = _layout(conn, table)
        self.report = TableReport(table)
        self.ident = sql.Identifier(table)
        self.default = sql.Identifier(self.layout.default)
        self.column = sql.Identifier(self.layout.column)

    def _lock_timeout(self) -> None:
        timeout = f"{int(self.policy.lock_timeout_s * 1000)}ms"
        self.conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))

    def create_ahead(self) -> None:
        interval = self.policy.interval
        slots = {floor(self.now, interval)}
        slots.add(floor(floor(self.now, interval) - timedelta(microseconds=1), interval))
        for _ in range(self.policy.ahead):
            slots.add(following(max(slots), interval))
        horizon = self.policy.horizon(self.now)
        stray = self.conn.execute(
            sql.SQL(
                "SELECT DISTINCT date_trunc(%s, {column}, 'UTC') FROM {default}"
                " WHERE {column} >= %s AND {column} < %s"
            ).format(column=self.column, default=self.default),
            (interval, horizon, following(max(slots), interval)),
        )
        slots.update(start for (start,) in stray)
        for start in sorted(slots):
            wanted = Partition("", start, following(start, interval))
            for lower, upper in uncovered(wanted, self.layout.partitions):
                self._create(lower, upper)

    def _create(self, lower: datetime, upper: datetime) -> None:
        name = partition_name(self.layout.table, lower)

        def create() -> int:
            with self.conn.transaction():
                self._lock_timeout()
                self.conn.execute(
                    sql.SQL(
                        "CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS"
                        " INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)"
                    ).format(name=sql.Identifier(name), table=self.ident)
                )
                moved = self.conn.execute(
                    sql.SQL(
                        "WITH moved AS (DELETE FROM {default} WHERE {column} >= %s"
                        " AND {column} < %s RETURNING *) INSERT INTO {name} SELECT * FROM moved"
                    ).format(default=self.default, column=self.column, name=sql.Identifier(name)),
                    (lower, upper),
                ).rowcount
                self.conn.execute(
                    sql.SQL(
                        "ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({lower})"
                        " TO ({upper})"
                    ).format(
                        table=self.ident,
                        name=sql.Identifier(name),
                        lower=sql.Literal(lower),
                        upper=sql.Literal(upper),
                    )
                )
                return moved

        moved = _retrying(f"create {name}", create, self.policy.lock_timeout_s)
        if moved is None:
            self.report.busy.append(name)
            return
        partition = Partition(name, lower, upper)
        self.layout.partitions.append(partition)
        self.layout.partitions.sort(key=lambda p: p.lower)
        self.report.created.append(partition)
        self.report.moved_rows += moved
        log.info("partition created", table=self.layout.table, partition=name, moved_rows=moved)

    def expire(self) -> None:
        table = self.layout.table
        with self.conn.transaction():
            (horizon,) = self.conn.execute(
                f"UPDATE {REGISTRY} SET kept_from = greatest(kept_from, %s)"
                " WHERE table_name = %s RETURNING kept_from",
                (self.policy.horizon(self.now), table),
            ).fetchone() or (None,)
            assert isinstance(horizon, datetime)
            self.report.kept_from = horizon
            self.report.stray_rows_deleted = self.conn.execute(
                sql.SQL("DELETE FROM {default} WHERE {column} < %s").format(
                    default=self.default, column=self.column
                ),
                (horizon,),
            ).rowcount
        for partition in [p for p in self.layout.partitions if p.upper <= horizon]:
            self._drop(partition)

    def _drop(self, partition: Partition) -> None:
        name = sql.Identifier(partition.name)

        def drop() -> DroppedPartition:
            started = time.perf_counter()
            with self.conn.transaction():
                self._lock_timeout()
                (size,) = self.conn.execute(
                    "SELECT pg_total_relation_size(%s::regclass)", (partition.name,)
                ).fetchone() or (0,)
                self.conn.execute(
                    sql.SQL("ALTER TABLE {table} DETACH PARTITION {name}").format(
                        table=self.ident, name=name
                    )
                )
                self.conn.execute(sql.SQL("DROP TABLE {name}").format(name=name))
            return DroppedPartition(
                partition.name,
                partition.lower,
                partition.upper,
                int(size),
                time.perf_counter() - started,
            )

        dropped = _retrying(f"drop {partition.name}", drop, self.policy.lock_timeout_s)
        if dropped is None:
            self.report.busy.append(partition.name)
            return
        self.layout.partitions.remove(partition)
        self.report.dropped.append(dropped)
        log.info(
            "partition dropped",
            table=self.layout.table,
            partition=partition.name,
            bytes=dropped.bytes,
            seconds=round(dropped.seconds, 4),
        )

    def count_untimed(self) -> None:
        (untimed,) = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {default} WHERE {column} IS NULL").format(
                default=self.default, column=self.column
            )
        ).fetchone() or (0,)
        self.report.untimed_rows = int(untimed)


def maintain(
    conn: psycopg.Connection[Any],
    policy: PartitionPolicy,
    *,
    now: datetime | None = None,
    expire: bool = True,
) -> list[TableReport]:
    """Create the partitions ahead and (unless ``expire`` is False) drop the expired ones, for
    every registered table. ``conn`` must be in autocommit mode: each step is its own
    transaction, so a lock that is not granted costs one step, not the run."""
    if not conn.autocommit:
        raise ValueError("maintain needs an autocommit connection")
    if now is None:
        (now,) = conn.execute("SELECT now()").fetchone() or (datetime.now(UTC),)
    assert now is not None
    reports: list[TableReport] = []
    if conn.execute("SELECT to_regclass(%s)", (REGISTRY,)).fetchone() == (None,):
        return reports  # a schema older than the partitioned layout
    for table in registered_tables(conn):
        work = _TableMaintenance(conn, table, policy, now)
        work.create_ahead()
        if expire:
            work.expire()
        work.count_untimed()
        reports.append(work.report)
    return reports
