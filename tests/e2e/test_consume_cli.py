"""`sentiment-stream consume` as a process: SIGKILL and restart, SIGTERM drain, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from embedded import EmbeddedPostgres
from embedded.postgres import SUPERUSER
from embedded.process import free_port
from storage.quality import online_quality, quality_by_version
from storage.urls import libpq_url
from stream_core.contract import LABELS
from tests.fixtures.pipeline import (
    FAST_GROUP,
    aggregate_total,
    committed_offsets,
    create_topic,
    migrated,
    post_value,
    produce,
    query,
    row_count,
    wait_until,
)
from tests.fixtures.services import CLI, cli_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def consume_argv(bootstrap: str, database_url: str, topic: str, model: Path) -> list[str]:
    argv = [
        *CLI,
        "consume",
        "--bootstrap-servers",
        bootstrap,
        "--database-url",
        database_url,
        "--topic",
        topic,
        "--group-id",
        f"group-{topic}",
        "--model",
        str(model),
        "--http-port",
        "0",
        "--batch-size",
        "8",
        "--batch-wait-ms",
        "20",
        "--shutdown-timeout-s",
        "20",
    ]
    for key, value in FAST_GROUP.items():
        argv += ["--kafka-option", f"{key}={value}"]
    return argv


@pytest.fixture
def consume_command(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_model_dir: Path
) -> list[str]:
    """`consume` of a new two-partition topic (and its labels topic) into a migrated database."""
    create_topic(kafka_bootstrap, topic, 2)
    create_topic(kafka_bootstrap, f"{topic}.labels", 2)
    migrated(database_url)
    return consume_argv(kafka_bootstrap, database_url, topic, tiny_model_dir)


@contextmanager
def consumer_process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `consume` process that holds its partitions (its log says so).

    Tests produce only after that: the tiny model scores hundreds of posts a second, so a
    consumer that started late would read a whole backlog before a test could stop it.
    """
    with log.open("ab") as sink:
        process = subprocess.Popen(argv, env=cli_env(), stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "partitions assigned" in log.read_text(), 90, f"an assignment ({log})")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def paced_producer(
    bootstrap: str,
    topic: str,
    n: int,
    counts: dict[int, int],
    timestamps_ms: list[int] | None = None,
) -> threading.Thread:
    values = [post_value(i) for i in range(n)]
    thread = threading.Thread(
        target=lambda: counts.update(
            produce(
                bootstrap, topic, values, partitions=2, pace_s=0.01, timestamps_ms=timestamps_ms
            )
        )
    )
    thread.start()
    return thread


def across_midnight(n: int) -> tuple[list[int], datetime]:
    """Kafka timestamps alternating between the last second of yesterday and the first of today
    (UTC): every batch straddles a partition boundary. Also returns that midnight."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at = int(midnight.timestamp() * 1000)
    return [at - 1000 + i if i % 2 else at + i for i in range(n)], midnight


def gold(i: int) -> str:
    return LABELS[i % 3]


def label_producer(bootstrap: str, topic: str, n: int) -> threading.Thread:
    """Gold labels of posts n-1 down to 0 on ``<topic>.labels``, beside the paced posts: the
    first ones come before their posts, the middle ones with them, the last ones after."""
    values = [
        json.dumps({"post_id": f"post-{i}", "label": gold(i)}).encode() for i in reversed(range(n))
    ]
    thread = threading.Thread(
        target=lambda: produce(bootstrap, f"{topic}.labels", values, partitions=2, pace_s=0.01)
    )
    thread.start()
    return thread


def labelled_rows(database_url: str) -> int:
    return int(query(database_url, "SELECT count(gold_label) FROM scored_posts")[0][0])


def stored_offsets(database_url: str) -> dict[int, int]:
    rows = query(
        database_url,
        "SELECT kafka_partition, max(kafka_offset) + 1 FROM scored_posts GROUP BY 1",
    )
    return {int(p): int(o) for p, o in rows}


# Small batches cut by size; large ones (up to 512 posts) cut by time while they fill.
@pytest.mark.parametrize(("batch_size", "batch_wait_ms"), [(8, 20), (512, 1500)])
def test_sigkill_mid_stream_then_restart_gives_exactly_n_rows(
    kafka_bootstrap: str,
    database_url: str,
    topic: str,
    consume_command: list[str],
    tmp_path: Path,
    batch_size: int,
    batch_wait_ms: int,
) -> None:
    n = 400
    counts: dict[int, int] = {}
    timestamps_ms, midnight = across_midnight(n)
    # The last value of an option wins.
    consume_command = [
        *consume_command,
        *("--batch-size", str(batch_size), "--batch-wait-ms", str(batch_wait_ms)),
    ]
    with consumer_process(consume_command, tmp_path / "first.log") as first:
        producer = paced_producer(kafka_bootstrap, topic, n, counts, timestamps_ms)
        labeller = label_producer(kafka_bootstrap, topic, n)
        wait_until(lambda: row_count(database_url) >= n // 4, 90, "a quarter of the rows")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert row_count(database_url) < n, "killed too late to test anything"
    producer.join(60)
    labeller.join(60)
    with consumer_process(consume_command, tmp_path / "second.log") as second:
        wait_until(lambda: row_count(database_url) >= n, 120, f"{n} rows after the restart")
        wait_until(lambda: labelled_rows(database_url) >= n, 60, f"{n} labelled rows")
        wait_until(
            lambda: committed_offsets(kafka_bootstrap, f"group-{topic}", topic, 2) == counts,
            30,
            f"every offset committed ({counts})",
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    assert row_count(database_url) == n
    assert aggregate_total(database_url) == n
    assert query(database_url, "SELECT count(DISTINCT post_id) FROM scored_posts") == [(n,)]
    # Half on each side of midnight, each half in its own day's partition.
    by_partition = query(
        database_url, "SELECT tableoid::regclass::text, count(*) FROM scored_posts GROUP BY 1"
    )
    yesterday = midnight - timedelta(days=1)
    assert dict(by_partition) == {
        f"scored_posts_p{yesterday:%Y%m%d}": n // 2,
        f"scored_posts_p{midnight:%Y%m%d}": n // 2,
    }
    # Every label stored once and applied to its post, whatever the kill interrupted.
    labels = query(database_url, "SELECT post_id, gold_label FROM scored_posts")
    assert sorted(labels) == sorted((f"post-{i}", gold(i)) for i in range(n))
    assert query(database_url, "SELECT count(*), count(applied_at) FROM gold_labels") == [(n, n)]
    with psycopg.connect(libpq_url(database_url)) as conn:
        since = datetime.now(UTC) - timedelta(hours=1)
        assert online_quality(conn, "", since=since).total == 0
        (version,) = quality_by_version(conn, since=since)
        assert online_quality(conn, version, since=since).total == n
    # The first start adopted its --model folder as the registry's active version; the restart
    # served it from there and registered nothing more.
    assert query(database_url, "SELECT version, status FROM model_versions") == [
        (version, "active")
    ]
    actions = query(database_url, "SELECT action FROM model_audit ORDER BY id")
    assert actions == [("register",), ("promote",)]


def test_sigterm_drains_commits_and_exits_0(
    kafka_bootstrap: str, database_url: str, topic: str, consume_command: list[str], tmp_path: Path
) -> None:
    counts: dict[int, int] = {}
    log = tmp_path / "consumer.log"
    with consumer_process(consume_command, log) as process:
        producer = paced_producer(kafka_bootstrap, topic, 300, counts)
        # Rows in both partitions: the drain then has a commit to make in each.
        wait_until(
            lambda: row_count(database_url) >= 50 and len(stored_offsets(database_url)) == 2,
            90,
            "some rows in each partition",
        )
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-3000:]
        assert time.monotonic() - started < 20
    producer.join(60)
    # Every row written before the exit has its offset committed, and nothing beyond.
    assert committed_offsets(kafka_bootstrap, f"group-{topic}", topic, 2) == stored_offsets(
        database_url
    )
    assert '"drained": true' in log.read_text()
    assert aggregate_total(database_url) == row_count(database_url)


def run_consume(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=cli_env(), capture_output=True, text=True, timeout=120, check=False
    )


def test_clear_errors_for_what_a_user_gets_wrong(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    argv = consume_argv(kafka_bootstrap, database_url, topic, tiny_model_dir)

    def with_option(flag: str, value: str) -> list[str]:
        changed = list(argv)
        changed[changed.index(flag) + 1] = value
        return changed

    cases = [
        (with_option("--model", str(tmp_path / "nowhere")), "cannot load the model"),
        (argv, "db upgrade"),  # the schema is not there yet: not worth waiting for
        (
            with_option("--database-url", "postgresql+psycopg://me:pw@127.0.0.1:1/x"),
            "cannot connect to postgresql+psycopg://me:***@127.0.0.1:1/x",
        ),
    ]
    for case_argv, says in cases:
        result = run_consume([*case_argv, "--startup-timeout-s", "1"])
        assert result.returncode == 1, result.stderr
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert says in error
        assert "Traceback" not in result.stderr
    migrated(database_url)
    broker_down = run_consume(
        [*with_option("--bootstrap-servers", "127.0.0.1:1"), "--startup-timeout-s", "1"]
    )
    assert broker_down.returncode == 1
    (error,) = [line for line in broker_down.stderr.splitlines() if line.startswith("Error: ")]
    assert error.startswith("Error: cannot reach Kafka at 127.0.0.1:1: ")
    assert "Connection refused" in error
    assert error.endswith("(gave up after 1 s; see --startup-timeout-s)")
    assert "waiting for a service" in broker_down.stderr
    assert "|FAIL|" not in broker_down.stderr  # no raw librdkafka log lines


# --- start-up that waits for PostgreSQL ---


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of the test's own, which it may stop and start again."""
    with EmbeddedPostgres() as server:
        yield server


def get(url: str) -> tuple[int, dict[str, object]]:
    response = httpx.get(url, timeout=5)
    return response.status_code, response.json()


def test_a_consumer_started_while_postgres_is_down_comes_up_with_it_and_stores_each_post_once(
    kafka_bootstrap: str,
    topic: str,
    tiny_model_dir: Path,
    own_postgres: EmbeddedPostgres,
    tmp_path: Path,
) -> None:
    database_url = migrated(own_postgres.create_database("sentiment"))
    create_topic(kafka_bootstrap, topic, 2)
    n = 300
    counts = produce(kafka_bootstrap, topic, [post_value(i) for i in range(n)], partitions=2)
    own_postgres.stop()

    port = free_port()
    argv = consume_argv(kafka_bootstrap, database_url, topic, tiny_model_dir)
    argv[argv.index("--http-port") + 1] = str(port)
    log = tmp_path / "consumer.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*argv, "--startup-timeout-s", "120"],
            env=cli_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        outage_started = time.monotonic()
        wait_until(
            lambda: log.read_text().count('"service": "PostgreSQL"') >= 3,
            90,
            f"the consumer waiting for PostgreSQL ({log})",
        )
        # Meanwhile the process is alive and says why it is not ready.
        assert process.poll() is None, log.read_text()[-3000:]
        assert get(f"http://127.0.0.1:{port}/health") == (200, {"status": "ok"})
        status, ready = get(f"http://127.0.0.1:{port}/ready")
        assert status == 503
        assert ready["missing"] == ["database", "partitions_assigned"]
        assert row_count_or_none(database_url) is None  # the server really is down

        own_postgres.start()
        outage_s = time.monotonic() - outage_started
        wait_until(lambda: row_count(database_url) >= n, 120, f"{n} rows after the outage")
        up_s = time.monotonic() - outage_started - outage_s
        wait_until(
            lambda: committed_offsets(kafka_bootstrap, f"group-{topic}", topic, 2) == counts,
            30,
            f"every offset committed ({counts})",
        )
        assert get(f"http://127.0.0.1:{port}/ready")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    print(f"\nPostgreSQL back {outage_s:.1f} s after the consumer started; rows {up_s:.1f} s later")
    assert '"event": "service is up"' in log.read_text()
    assert row_count(database_url) == n
    assert aggregate_total(database_url) == n
    assert query(database_url, "SELECT count(DISTINCT post_id) FROM scored_posts") == [(n,)]


def row_count_or_none(database_url: str) -> int | None:
    try:
        return row_count(database_url)
    except psycopg.OperationalError:
        return None


def with_passwords(server: EmbeddedPostgres) -> str:
    """Make ``server`` ask TCP clients other than the superuser for a password; the URL of a
    migrated database that role ``app`` (password ``right``) owns."""
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE ROLE app LOGIN PASSWORD 'right'")
        conn.execute("CREATE DATABASE appdb OWNER app")
        (server.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n",
            encoding="utf-8",
        )
        conn.execute("SELECT pg_reload_conf()")
    return f"postgresql+psycopg://app:right@{server.host}:{server.port}/appdb"


def test_a_wrong_password_fails_at_once_without_waiting(
    kafka_bootstrap: str, topic: str, tiny_model_dir: Path, own_postgres: EmbeddedPostgres
) -> None:
    right = with_passwords(own_postgres)
    wrong = right.replace("app:right@", "app:wrong@")
    upgrade = subprocess.run(
        [*CLI, "db", "upgrade", "--database-url", wrong, "--startup-timeout-s", "120"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    consume = run_consume(
        [*consume_argv(kafka_bootstrap, wrong, topic, tiny_model_dir), "--startup-timeout-s", "120"]
    )
    for result in (upgrade, consume):
        assert result.returncode == 1, result.stderr
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert 'password authentication failed for user "app"' in error
        assert "app:***@" in error and "wrong" not in error
        assert "gave up" not in error
        assert "waiting for a service" not in result.stderr  # at once, not at the deadline
