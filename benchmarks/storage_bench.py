"""Storage benchmark: the sink on the partitioned layout against the flat table it replaced, at
tens of millions of rows, and what retention costs.

In one run, on one PostgreSQL (the embedded one unless ``--database-url``), it prints:

1. **flat** (the layout before revision 0004, its sink statement, the minute counts): sink
   rows/s into an empty table, then with ``--rows`` (10 million) already stored; bytes per
   stored row; then how long `db upgrade` takes to turn those rows into the partitioned layout;
2. **partitioned** (today's layout, sink and write parts, rollup trigger included): rows/s
   empty, then with ``--rows`` stored over ``--days`` daily partitions (the last one today, the
   one written to); its ratio to the empty rate (the target is >= 90%); bytes per row;
3. one `db maintain` with nothing to drop (the hourly run), then a **retention cycle**: retention
   set to ``--retention-days``, `db maintain` drops the older partitions; the time per drop, and
   the database's size before and after (back to the retained days' worth);
4. GB a day at 1k, 10k and 100k posts/s from the bytes per row.

Rows are prefilled with SQL (generate_series), not through Kafka. The CPU and its flags are
printed first; the last line is JSON. Run it niced (it keeps 2 CPUs busy for a while) and with
~12 GB free for 10 million rows (one layout at a time; each database is dropped after use)::

    nice -n 19 python -m benchmarks.storage_bench            # --rows 1000000 for a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.machine import cpu_description
from consumer.build import write_parts
from storage import migrate
from storage.maintenance import StoragePolicy, maintain_storage
from storage.partitions import PartitionPolicy, maintain
from storage.scored_posts import COLUMN_LIST, COPY_TO_STAGING, INSERT_NEW_ROWS, STAGING_DDL
from storage.sink import PostgresSink
from storage.urls import libpq_url
from stream_core.contract import LABELS
from stream_core.records import ScoredPost

WORDS = (
    "the",
    "a",
    "new",
    "just",
    "love",
    "hate",
    "great",
    "awful",
    "today",
    "game",
    "phone",
    "update",
    "service",
    "team",
    "win",
    "lose",
    "why",
    "really",
    "so",
    "best",
    "worst",
    "ever",
    "never",
    "always",
    "thanks",
    "please",
    "help",
    "delay",
    "price",
    "launch",
    "vote",
    "match",
)

# The flat layout's statement: the same rows, its key without the partition column.
FLAT_FROM_STAGING = INSERT_NEW_ROWS.format(
    source=f"SELECT {COLUMN_LIST} FROM scored_posts_staging "
    "ORDER BY kafka_topic, kafka_partition, kafka_offset"
).replace("kafka_offset, kafka_timestamp) DO NOTHING", "kafka_offset) DO NOTHING")

# Tweet-sized texts (60-140 characters of words), a few authors, three labels.
PREFILL = f"""
INSERT INTO scored_posts ({COLUMN_LIST}, scored_at)
SELECT 'p' || i,
       substr(repeat(md5(i::text) || ' ' || md5((i * 7)::text) || ' ', 3), 1, (60 + i %% 80)::int),
       'user' || i %% 50000, 'en', ts, (ARRAY['negative', 'neutral', 'positive'])[1 + i %% 3],
       0.2, 0.3, 0.5, 'bench-1', 'posts', (i %% 12)::int, i, ts,
       CASE WHEN i %% 10 = 0 THEN 'neutral' END, NULL, ts + interval '1 second'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
     LATERAL (SELECT %(start)s::timestamptz + (i - %(first)s) * %(step)s::interval) AS t(ts)
"""


def text(pick: random.Random) -> str:
    """60 to 140 characters of words, like a tweet."""
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < pick.randint(60, 140):
        words.append(pick.choice(WORDS))
    return " ".join(words)


class Writer:
    """Writes batches of fresh posts (Kafka time: now) through a sink, as the pipeline does."""

    def __init__(self, url: str, flat: bool, batch_size: int) -> None:
        self.url = url
        self.sink = PostgresSink(url, labels=LABELS, parts=write_parts())
        self.conn: psycopg.Connection[Any] | None = None
        self.flat = flat
        self.batch_size = batch_size
        self.offset = 10**12  # past every prefilled offset
        self.pick = random.Random(1)  # noqa: S311 (test data, not secrets)

    def batch(self) -> list[ScoredPost]:
        now = datetime.now(UTC)
        posts = [
            ScoredPost(
                post_id=f"w{self.offset + i}",
                text=text(self.pick),
                author=f"user{self.pick.randrange(50000)}",
                lang="en",
                created_at=now,
                topic="posts",
                partition=(self.offset + i) % 12,
                offset=self.offset + i,
                kafka_timestamp=now,
                label=self.pick.choice(LABELS),
                probabilities=(0.2, 0.3, 0.5),
                model_version="bench-1",
            )
            for i in range(self.batch_size)
        ]
        self.offset += self.batch_size
        return posts

    def write(self, posts: Sequence[ScoredPost]) -> None:
        if not self.flat:
            self.sink.write_batch(posts)
            return
        conn = self.flat_connection()
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(COPY_TO_STAGING) as copy:
                for post in posts:
                    copy.write_row(self.sink.row(post))
            self.sink.insert(cursor, FLAT_FROM_STAGING, posts)

    def flat_connection(self) -> psycopg.Connection[Any]:
        """What the sink's connection was before 0004 (the sink refuses a flat table now)."""
        if self.conn is None:
            self.conn = psycopg.connect(libpq_url(self.url), autocommit=True)
            self.conn.execute("SET TIME ZONE 'UTC'")
            self.conn.execute(STAGING_DDL)
        return self.conn

    def rate(self, rows: int, rounds: int) -> float:
        """Rows/s writing ``rows`` per round, the median of ``rounds`` (batches made before the
        clock starts)."""
        self.write(self.batch())  # warm-up: the connection, its staging table, plans
        rates = []
        for _ in range(rounds):
            batches = [self.batch() for _ in range(max(1, rows // self.batch_size))]
            started = time.perf_counter()
            for posts in batches:
                self.write(posts)
            rates.append(len(batches) * self.batch_size / (time.perf_counter() - started))
        return statistics.median(rates)

    def close(self) -> None:
        self.sink.close()
        if self.conn is not None:
            self.conn.close()


@contextlib.contextmanager
def server(database_url: str | None) -> Iterator[str]:
    if database_url is not None:
        yield database_url
        return
    from embedded import EmbeddedPostgres

    with EmbeddedPostgres() as embedded:
        yield embedded.url()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    from sqlalchemy.engine import make_url

    name = f"storage_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def prefill(url: str, rows: int, days: int, now: datetime) -> float:
    """``rows`` rows spread evenly over the ``days`` days ending ``now``; seconds it took."""
    start = now - timedelta(days=days)
    step = timedelta(days=days) / rows
    chunk = 1_000_000
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for first in range(0, rows, chunk):
            last = min(rows, first + chunk) - 1
            conn.execute(
                PREFILL,
                {"first": first, "last": last, "start": start + first * step, "step": step},
            )
            print(
                f"  prefilled {last + 1:,} rows ({time.perf_counter() - started:.0f} s)", flush=True
            )
        conn.execute("VACUUM ANALYZE scored_posts")
    return time.perf_counter() - started


def stored(url: str) -> tuple[int, int]:
    """Rows of scored_posts and the bytes they take, indexes and TOAST included."""
    with psycopg.connect(libpq_url(url)) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM scored_posts").fetchone() or (0,)
        (size,) = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)),"  # flat: no partitions
            " pg_total_relation_size('scored_posts'))"
            " FROM pg_partition_tree('scored_posts'::regclass)"
        ).fetchone() or (0,)
    return int(rows), int(size)


def database_size(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        (size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone() or (0,)
    return int(size)


def bench_flat(server_url: str, args: argparse.Namespace, now: datetime) -> dict[str, float]:
    with fresh_database(server_url) as url:
        migrate.upgrade(url, "0003")
        writer = Writer(url, flat=True, batch_size=args.batch_size)
        empty = writer.rate(args.measure_rows, args.rounds)
        print(f"flat, empty: {empty:,.0f} rows/s", flush=True)
        filled_in = prefill(url, args.rows, args.days, now)
        full = writer.rate(args.measure_rows, args.rounds)
        rows, size = stored(url)
        print(f"flat, {rows:,} rows: {full:,.0f} rows/s; {size / rows:.0f} bytes/row", flush=True)
        writer.close()
        upgrade_s = timed(lambda: migrate.upgrade(url))
        print(f"db upgrade of the flat table to partitions: {upgrade_s:.1f} s", flush=True)
        return {
            "empty_rows_per_s": empty,
            "full_rows_per_s": full,
            "rows": rows,
            "bytes_per_row": size / rows,
            "prefill_s": filled_in,
            "upgrade_s": upgrade_s,
        }


def bench_partitioned(server_url: str, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with fresh_database(server_url) as url:
        migrate.upgrade(url)
        writer = Writer(url, flat=False, batch_size=args.batch_size)
        results["empty_rows_per_s"] = writer.rate(args.measure_rows, args.rounds)
        print(f"partitioned, empty: {results['empty_rows_per_s']:,.0f} rows/s", flush=True)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            for back in range(args.days + 1):  # the partitions of the days prefilled
                maintain(conn, PartitionPolicy(ahead=1), now=now - timedelta(days=back))
        results["prefill_s"] = prefill(url, args.rows, args.days, now)
        results["full_rows_per_s"] = writer.rate(args.measure_rows, args.rounds)
        writer.close()
        rows, size = stored(url)
        results |= {"rows": rows, "bytes_per_row": size / rows}
        results["ratio"] = results["full_rows_per_s"] / results["empty_rows_per_s"]
        print(
            f"partitioned, {rows:,} rows: {results['full_rows_per_s']:,.0f} rows/s"
            f" ({results['ratio']:.1%} of empty); {size / rows:.0f} bytes/row",
            flush=True,
        )
        results |= retention_cycle(url, args)
    return results


def retention_cycle(url: str, args: argparse.Namespace) -> dict[str, Any]:
    kept = StoragePolicy(PartitionPolicy(retention=timedelta(days=365)))
    short = StoragePolicy(PartitionPolicy(retention=timedelta(days=args.retention_days)))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        steady = maintain_storage(conn, kept)
        print(f"db maintain, nothing to drop: {steady.seconds:.3f} s", flush=True)
        before = database_size(url)
        rows_before, _ = stored(url)
        cycle = maintain_storage(conn, short)
    (table,) = [t for t in cycle.tables if t.table == "scored_posts"]
    after = database_size(url)
    rows_after, _ = stored(url)
    drops = [d.seconds for d in table.dropped]
    print(
        f"retention {args.retention_days} days: db maintain {cycle.seconds:.2f} s, dropped"
        f" {len(drops)} partitions ({sum(d.bytes for d in table.dropped) / 1e9:.2f} GB),"
        f" {statistics.median(drops) * 1000:.0f} ms median per drop (max {max(drops) * 1000:.0f})"
        f"; database {before / 1e9:.2f} GB -> {after / 1e9:.2f} GB;"
        f" rows {rows_before:,} -> {rows_after:,}",
        flush=True,
    )
    return {
        "maintain_steady_s": steady.seconds,
        "maintain_retention_s": cycle.seconds,
        "partitions_dropped": len(drops),
        "bytes_dropped": sum(d.bytes for d in table.dropped),
        "drop_ms_median": statistics.median(drops) * 1000,
        "drop_ms_max": max(drops) * 1000,
        "database_bytes_before": before,
        "database_bytes_after": after,
        "rows_before": rows_before,
        "rows_after": rows_after,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", help="a PostgreSQL server (default: embedded)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows prefilled")
    parser.add_argument("--days", type=int, default=10, help="days the prefill spans")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--measure-rows", type=int, default=25_600, help="rows per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median counts")
    parser.add_argument("--retention-days", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_description()}", flush=True)
    print(
        f"batches of {args.batch_size}, {args.rounds} rounds of {args.measure_rows:,} rows"
        f" (median); {args.rows:,} rows prefilled over {args.days} days",
        flush=True,
    )
    now = datetime.now(UTC)
    with server(args.database_url) as server_url:
        flat = bench_flat(server_url, args, now)
        partitioned = bench_partitioned(server_url, args, now)
    gb_per_day = {
        rate: partitioned["bytes_per_row"] * rate * 86_400 / 1e9
        for rate in (1_000, 10_000, 100_000)
    }
    ratio, rows = partitioned["ratio"], f"{args.rows:,}"
    table = [
        ("figure", "flat (before 0004)", "partitioned"),
        ("---", "---", "---"),
        ("sink, empty table, rows/s", flat["empty_rows_per_s"], partitioned["empty_rows_per_s"]),
        (
            f"sink, {rows} rows stored, rows/s",
            flat["full_rows_per_s"],
            partitioned["full_rows_per_s"],
        ),
        ("bytes per row, indexes included", flat["bytes_per_row"], partitioned["bytes_per_row"]),
        (
            "GB a day at 1k / 10k / 100k posts/s",
            "",
            " / ".join(f"{gb:,.0f}" for gb in gb_per_day.values()),
        ),
    ]
    print(f"\nCPU: {cpu_description()}")
    for line in table:
        print(
            "| "
            + " | ".join(f"{cell:,.0f}" if isinstance(cell, float) else str(cell) for cell in line)
            + " |"
        )
    verdict = "PASS" if ratio >= 0.9 else "FAIL"
    print(f"partitioned at {rows} rows keeps {ratio:.1%} of its empty rate (>= 90%): {verdict}")
    summary = {"cpu": cpu_description(), "flat": flat, "partitioned": partitioned}
    print(json.dumps(summary | {"gb_per_day": gb_per_day}))


if __name__ == "__main__":
    main()
