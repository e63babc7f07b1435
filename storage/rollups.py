"""Hourly and daily counts derived from the minute counts, and reading counts at the resolution
that fits a time range.

Every counted family (``sentiment_minute_counts`` keyed by label; the per-language and
per-entity ones as they come) is registered in ``count_rollups`` by its migration
(``migrations.rollups.add_rollups``), with ``<name>_hour_counts`` and ``<name>_day_counts``
beside it. A trigger notes in ``rollup_pending_hours`` each UTC hour a write touched;
:func:`refresh` takes those notes and recomputes the hours from the minutes and their days from
the hours, so the rollups equal the sums of the minute counts whatever arrives late, and a
replay (which adds no minute count) changes nothing. The rollups trail the minutes by one
refresh interval.

The notes are consumed and the sums recomputed in one transaction, under an advisory lock (one
refresh at a time). A write committed while a refresh runs leaves a note the refresh did not
take, so the next refresh counts it: nothing is ever missed, only sometimes recomputed twice.
Minutes, hours and days are kept for the aggregate retention (:func:`expire`); a note about an
hour older than that is dropped rather than recomputed from minutes already gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

from migrations.rollups import PENDING, REGISTRY, rollup_table
from storage.coordination import advisory_key
from storage.urls import libpq_url

REFRESH_LOCK = advisory_key("storage-rollup-refresh")
LABEL_COUNTS = "sentiment_minute_counts"
ENTITY_LABEL_COUNTS = "sentiment_entity_minute_counts"  # keyed by (entity, minute, label)


class Resolution(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


# The finest resolution whose bucket count stays around 1,500 for the range: what a chart can
# show, and what /stats sums, without reading more rows than that.
FINEST_FOR = ((timedelta(days=1), Resolution.MINUTE), (timedelta(days=60), Resolution.HOUR))


def resolution_for(span: timedelta) -> Resolution:
    """The resolution to read a range of ``span`` at (the Grafana dashboard uses the same)."""
    for longest, resolution in FINEST_FOR:
        if span <= longest:
            return resolution
    return Resolution.DAY


def counts_table(minute_table: str, resolution: Resolution) -> str:
    """``sentiment_minute_counts`` at ``resolution``: ``sentiment_hour_counts``..."""
    return (
        minute_table if resolution is Resolution.MINUTE else rollup_table(minute_table, resolution)
    )


@dataclass(frozen=True)
class Family:
    """A counted family: its minute table and the columns its counts are kept by."""

    minute_table: str
    dimensions: tuple[str, ...]

    def table(self, resolution: Resolution) -> sql.Identifier:
        return sql.Identifier(counts_table(self.minute_table, resolution))


def families(conn: psycopg.Connection[Any]) -> list[Family]:
    """The registered families (none in a schema older than the rollups)."""
    if conn.execute("SELECT to_regclass(%s)", (REGISTRY,)).fetchone() == (None,):
        return []
    rows = conn.execute(f"SELECT minute_table, dimensions FROM {REGISTRY} ORDER BY 1")
    return [Family(str(table), tuple(dimensions)) for table, dimensions in rows]


def _recompute(
    family: Family, resolution: Resolution, finer: Resolution, span: str
) -> sql.Composed:
    """Replace the ``resolution`` buckets listed in %(buckets)s with sums of the ``finer`` ones.

    Minute counts only ever grow, so every bucket and key found before is found again.
    """
    keys = sql.SQL(", ").join(sql.Identifier(d) for d in family.dimensions)
    finer_keys = sql.SQL(", ").join(sql.Identifier("f", d) for d in family.dimensions)
    return sql.SQL(
        "INSERT INTO {table} AS r ({bucket}, {keys}, count)"
        " SELECT b.bucket, {finer_keys}, sum(f.count)"
        " FROM unnest(%(buckets)s::timestamptz[]) AS b(bucket)"
        " JOIN {finer} AS f ON f.{finer_bucket} >= b.bucket"
        " AND f.{finer_bucket} < b.bucket + {span}::interval"
        " GROUP BY b.bucket, {finer_keys} ORDER BY b.bucket, {finer_keys}"
        " ON CONFLICT ({bucket}, {keys}) DO UPDATE SET count = EXCLUDED.count"
    ).format(
        table=family.table(resolution),
        bucket=sql.Identifier(resolution),
        keys=keys,
        finer_keys=finer_keys,
        finer=family.table(finer),
        finer_bucket=sql.Identifier(finer),
        span=sql.Literal(span),
    )


@dataclass(frozen=True)
class RefreshReport:
    hours: int  # hours recomputed, over every family
    days: int


def refresh(conn: psycopg.Connection[Any], horizon: datetime) -> RefreshReport:
    """Recompute the hours the writes since the last refresh touched, and their days (hours
    before ``horizon``, whose minutes may be gone, are left as they are)."""
    hours_done = days_done = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (REFRESH_LOCK,))
        for family in families(conn):
            rows = conn.execute(
                f"DELETE FROM {PENDING} WHERE minute_table = %s RETURNING hour",
                (family.minute_table,),
            )
            hours = sorted({hour for (hour,) in rows if hour >= horizon})
            if not hours:
                continue
            days = sorted({hour.astimezone(UTC).replace(hour=0) for hour in hours})
            hourly = _recompute(family, Resolution.HOUR, Resolution.MINUTE, "1 hour")
            conn.execute(hourly, {"buckets": hours})
            daily = _recompute(family, Resolution.DAY, Resolution.HOUR, "24 hours")
            conn.execute(daily, {"buckets": days})
            hours_done += len(hours)
            days_done += len(days)
    return RefreshReport(hours_done, days_done)


def expire(conn: psycopg.Connection[Any], horizon: datetime) -> dict[str, int]:
    """Delete every family's minutes, hours and days before ``horizon``; rows deleted by table.

    Aggregates are small (three labels make 1,440 minute rows a day): a DELETE is the right
    tool here, unlike for posts.
    """
    deleted: dict[str, int] = {}
    for family in families(conn):
        for resolution in Resolution:
            table = family.table(resolution)
            statement = sql.SQL("DELETE FROM {table} WHERE {bucket} < %s").format(
                table=table, bucket=sql.Identifier(resolution)
            )
            deleted[counts_table(family.minute_table, resolution)] = conn.execute(
                statement, (horizon,)
            ).rowcount
    conn.execute(f"DELETE FROM {PENDING} WHERE hour < %s", (horizon,))
    return deleted


@dataclass(frozen=True)
class LabelCounts:
    """Label counts since ``since`` (the start of the first bucket read), at ``resolution``."""

    counts: Mapping[str, int]
    since: datetime
    resolution: Resolution


def label_counts(
    conn: psycopg.Connection[Any], window: timedelta, entity: str | None = None
) -> LabelCounts:
    """Posts per label over the last ``window`` (of the posts naming the watched ``entity``,
    when given), read at the resolution that fits it: whole buckets, from the one holding
    ``now - window``."""
    resolution = resolution_for(window)
    (since,) = conn.execute(
        "SELECT date_trunc(%s, now() - %s::interval, 'UTC')", (str(resolution), window)
    ).fetchone() or (None,)
    assert isinstance(since, datetime)
    family = LABEL_COUNTS if entity is None else ENTITY_LABEL_COUNTS
    of_entity = sql.SQL("" if entity is None else " AND entity = %(entity)s")
    rows = conn.execute(
        sql.SQL(
            "SELECT label, sum(count)::bigint FROM {table} WHERE {bucket} >= %(since)s{of_entity}"
            " GROUP BY label"
        ).format(
            table=sql.Identifier(counts_table(family, resolution)),
            bucket=sql.Identifier(resolution),
            of_entity=of_entity,
        ),
        {"since": since, "entity": entity},
    ).fetchall()
    return LabelCounts({str(label): int(count) for label, count in rows}, since, resolution)


class PostgresWindowCounts:
    """Posts per label over the last ``window`` (``observability.window_counts.WindowCounts``),
    at the resolution that fits it; one short connection per call (``/stats`` is rare)."""

    def __init__(self, database_url: str, timeout_s: int = 5) -> None:
        self._dsn = libpq_url(database_url)
        self._timeout_s = timeout_s

    def __call__(self, window: timedelta, entity: str | None = None) -> LabelCounts:
        with psycopg.connect(
            self._dsn,
            connect_timeout=self._timeout_s,
            options=f"-c statement_timeout={self._timeout_s * 1000}",
        ) as conn:
            return label_counts(conn, window, entity)
