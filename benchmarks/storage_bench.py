"""Storage benchmark: the sink on the partitioned layout against the flat table it replaced, at
tens of millions of rows, and what retention costs.

In one run, on one PostgreSQL (the embedded one unless ``--database-url``), it prints:

1. sink rows/s of **flat** (the layout before revision 0004, its sink statement, the minute
   counts) and **partitioned** (today's layout, sink and write parts, rollup trigger included),
   each into an empty table and with ``--rows`` (10 million) already stored (over ``--days``
   days; partitioned: daily partitions, the last one today, the one written to). The four are
   measured round by round, interleaved, so that a shared machine loads them alike; the
   partitioned layout's full/empty ratio has a target of >= 90%. Bytes per stored row;
2. how long `db upgrade` takes to turn the flat 10 million rows into the partitioned layout;
3. one `db maintain` with nothing to drop (the hourly run), then a **retention cycle**: retention
   set to ``--retention-days``, `db maintain` drops the older partitions; the time per drop, and
   the database's size before and after (back to the retained days' worth);
4. GB a day at 1k, 10k and 100k posts/s from the bytes per row.

Rows are prefilled with SQL (generate_series), not through Kafka. The CPU and its flags are
printed first; the last line is JSON. Run it niced (it keeps 2 CPUs busy for a while) and with
~12 GB free for 10 million rows (both layouts; the databases are dropped at the end)::

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
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
       CASE WHEN i %% 10 = 0 THEN 'neutral' END,
       CASE WHEN i %% 10 = 0 THEN ts + interval '1 hour' END, NULL, ts + interval '1 second'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
     LATERAL (SELECT %(start)s::timestamptz + (i - %(first)s) * %(step)s::interval) AS t(ts)
"""


def text(pick: random.Random) -> str:
    """60 to 140 characters of words, like a tweet."""
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < pick.randint(60, 140):
        words.append(pick.choice(WORDS))
    return " ".join(words)


@dataclass(frozen=True)
class Round:
    rows: int
    wall_s: float
    client_cpu_s: float
    backend_cpu_s: float | None  # None: the server is on another machine

    @property
    def rate(self) -> float:
        return self.rows / self.wall_s

    @property
    def cpu_rate(self) -> float | None:
        """Rows per CPU-second of the whole write path (backend + client): about what the
        sink does when nothing else wants the CPU."""
        if self.backend_cpu_s is None:
            return None
        return self.rows / (self.backend_cpu_s + self.client_cpu_s)


def _cpu_s(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    times = process.cpu_times()
    return float(times.user + times.system)


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

    def backend(self) -> psutil.Process | None:
        """The PostgreSQL process serving this writer, when it runs on this machine."""
        conn = self.flat_connection() if self.flat else self.sink.connection()
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if "postgres" in process.name():
                return process
        return None

    def round(self, rows: int) -> Round:
        """Write ``rows`` (batches made before the clock starts): wall time, and the CPU time
        of the PostgreSQL backend and of this client."""
        self.write(self.batch())  # warm-up: the connection, its staging table, plans
        backend = self.backend()
        batches = [self.batch() for _ in range(max(1, rows // self.batch_size))]
        cpu_before = _cpu_s(backend)
        client_before, started = time.process_time(), time.perf_counter()
        for posts in batches:
            self.write(posts)
        wall_s = time.perf_counter() - started
        client_s = time.process_time() - client_before
        cpu_after = _cpu_s(backend)
        backend_s = None if cpu_after is None or cpu_before is None else cpu_after - cpu_before
        return Round(len(batches) * self.batch_size, wall_s, client_s, backend_s)

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


LAYOUTS = ("flat", "partitioned")


def prepare(url: str, layout: str, rows: int, days: int, now: datetime) -> float:
    """Migrate ``url`` for ``layout`` and prefill ``rows`` rows (none: an empty table); seconds
    the prefill took."""
    if layout == "flat":
        migrate.upgrade(url, "0003")
    else:
        migrate.upgrade(url)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            for back in range(days + 1):  # the partitions of the days prefilled
                maintain(conn, PartitionPolicy(ahead=1), now=now - timedelta(days=back))
    return prefill(url, rows, days, now) if rows else 0.0


def bench_rates(urls: dict[tuple[str, bool], str], args: argparse.Namespace) -> dict[str, float]:
    """Rows/s of each layout, empty and full: the four interleaved round by round, so that a
    machine shared with others loads them alike; the median round of each counts. Also rows per
    CPU-second of the write path, which another process's load hardly moves."""
    writers = {
        key: Writer(url, flat=key[0] == "flat", batch_size=args.batch_size)
        for key, url in urls.items()
    }
    rounds: dict[tuple[str, bool], list[Round]] = {key: [] for key in urls}
    for number in range(args.rounds):
        for key, writer in writers.items():
            rounds[key].append(writer.round(args.measure_rows))
        print(
            f"  round {number + 1}: "
            + ", ".join(
                f"{k[0]} {'full' if k[1] else 'empty'} {r[-1].rate:,.0f}/s"
                + (f" ({r[-1].cpu_rate:,.0f}/CPU-s)" if r[-1].cpu_rate else "")
                for k, r in rounds.items()
            ),
            flush=True,
        )
    for writer in writers.values():
        writer.close()
    results = {}
    for (layout, full), found in rounds.items():
        name = f"{layout}_{'full' if full else 'empty'}"
        results[f"{name}_rows_per_s"] = statistics.median(r.rate for r in found)
        cpu_rates = [r.cpu_rate for r in found if r.cpu_rate is not None]
        if cpu_rates:
            results[f"{name}_rows_per_cpu_s"] = statistics.median(cpu_rates)
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
    parser.add_argument("--measure-rows", type=int, default=12_800, help="rows per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds; the median counts")
    parser.add_argument("--retention-days", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_description()}", flush=True)
    print(
        f"batches of {args.batch_size}, {args.rounds} rounds of {args.measure_rows:,} rows"
        f" (median); {args.rows:,} rows prefilled over {args.days} days",
        flush=True,
    )
    now = datetime.now(UTC)
    results: dict[str, Any] = {"cpu": cpu_description()}
    with server(args.database_url) as server_url, contextlib.ExitStack() as databases:
        urls = {}
        for layout in LAYOUTS:
            for full in (False, True):
                url = databases.enter_context(fresh_database(server_url))
                print(f"{layout}, {'full' if full else 'empty'}: preparing", flush=True)
                seconds = prepare(url, layout, args.rows if full else 0, args.days, now)
                if full:
                    rows, size = stored(url)
                    results[f"{layout}_prefill_s"] = seconds
                    results[f"{layout}_bytes_per_row"] = size / rows
                    print(f"  {rows:,} rows, {size / rows:.0f} bytes/row", flush=True)
                urls[(layout, full)] = url
        results |= bench_rates(urls, args)
        ratio = results["partitioned_full_rows_per_s"] / results["partitioned_empty_rows_per_s"]
        results["partitioned_ratio"] = ratio
        upgrade_s = timed(lambda: migrate.upgrade(urls[("flat", True)]))
        results["upgrade_s"] = upgrade_s
        print(f"db upgrade of {args.rows:,} flat rows to the partitioned layout: {upgrade_s:.1f} s")
        results |= retention_cycle(urls[("partitioned", True)], args)
    bytes_per_row = results["partitioned_bytes_per_row"]
    gb_per_day = {rate: bytes_per_row * rate * 86_400 / 1e9 for rate in (1_000, 10_000, 100_000)}
    prefilled = f"{args.rows:,}"

    def pair(name: str) -> tuple[float, float]:
        return results[f"flat_{name}"], results[f"partitioned_{name}"]

    table = [
        ("figure", "flat (before 0004)", "partitioned"),
        ("---", "---", "---"),
        ("sink, empty table, rows/s", *pair("empty_rows_per_s")),
        (f"sink, {prefilled} rows stored, rows/s", *pair("full_rows_per_s")),
    ]
    if "partitioned_full_rows_per_cpu_s" in results:
        cpu_ratio = (
            results["partitioned_full_rows_per_cpu_s"] / results["partitioned_empty_rows_per_cpu_s"]
        )
        results["partitioned_cpu_ratio"] = cpu_ratio
        table += [
            ("sink, empty table, rows per CPU-second", *pair("empty_rows_per_cpu_s")),
            (f"sink, {prefilled} rows stored, rows per CPU-second", *pair("full_rows_per_cpu_s")),
        ]
    table += [
        ("bytes per row, indexes included", *pair("bytes_per_row")),
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
    for what, found in (
        ("rows/s", ratio),
        ("rows per CPU-s", results.get("partitioned_cpu_ratio")),
    ):
        if found is not None:
            verdict = "PASS" if found >= 0.9 else "FAIL"
            print(
                f"partitioned at {prefilled} rows keeps {found:.1%} of its empty {what}: {verdict}"
            )
    print(json.dumps(results | {"gb_per_day": gb_per_day}))


if __name__ == "__main__":
    main()
