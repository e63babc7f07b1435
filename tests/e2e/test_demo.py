"""The one-command demo and `stack up`, run as users run them: as processes, end to end."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import cast

import psutil
import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from consumer.settings import Settings
from demo.consumer_process import ConsumerProcess
from demo.run import DemoOptions, DemoResult, DemoRun
from demo.services import Services
from model.data import read_splits
from model.settings import DEFAULT_MODEL_DIR
from storage.urls import libpq_url
from tests.fixtures.services import CLI, ROOT, cli_env

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROMOTE_AT_S = 15  # into the stream: the demo promotes a second model version
DEMO_SECONDS = 75.0


class ChildWatcher:
    """Remembers every descendant of a process while it runs (psutil), to check none survive."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: dict[int, float] = {}  # pid -> create time (pids get reused)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            try:
                for child in psutil.Process(self.pid).children(recursive=True):
                    self.seen.setdefault(child.pid, child.create_time())
            except psutil.Error:
                return

    def survivors(self) -> list[str]:
        self._stop.set()
        self._thread.join(5)
        alive = []
        for pid, created in self.seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {process.cmdline()}")
            except psutil.NoSuchProcess:
                continue
        return alive


def postgres_data_dirs(pids: dict[int, float]) -> list[Path]:
    """The -D folders of the postgres servers among ``pids`` (only while they still run)."""
    dirs = []
    for pid in pids:
        try:
            argv = psutil.Process(pid).cmdline()
        except psutil.Error:
            continue
        if "-D" in argv:
            dirs.append(Path(argv[argv.index("-D") + 1]))
    return dirs


def test_demo_warns_of_a_short_run_and_explains_an_unreachable_database() -> None:
    given = [
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--database-url",
        "postgresql://u:pw@127.0.0.1:1/x",
    ]
    result = subprocess.run(
        [*CLI, "demo", "--headless", "--duration", "20", *given],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "--duration 20 at 25 posts/s probably ends before a spike alert" in result.stderr
    assert "try --duration 45 or more" in result.stderr
    assert "Error: cannot reach the database at postgresql://u:***@127.0.0.1:1/x" in result.stderr
    assert "Traceback" not in result.stderr
    assert ":pw@" not in result.stderr


class DeadConsumer:
    """A consumer child that has already exited."""

    metrics_url = "http://127.0.0.1:1/metrics"

    def alive(self) -> bool:
        return False

    def log_tail(self) -> str:
        return "(killed)"


@pytest.mark.integration
def test_a_consumer_that_dies_stops_the_simulator_too(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    tweets = read_splits(sample_dir, ["val"])[:100]
    options = DemoOptions(tweets=tweets, duration_s=600.0, rate_per_s=5.0, partitions=1)
    services = Services(kafka_bootstrap, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    run = DemoRun(Settings(topic=topic, _env_file=None), options, threading.Event())  # type: ignore[call-arg]
    try:
        with pytest.raises(RuntimeError, match="the consumer stopped unexpectedly"):
            run._stream(
                services, cast(ConsumerProcess, DeadConsumer()), DemoResult(services), Path(".")
            )
        # Not sending on for the remaining ten minutes, and keeping the process alive.
        assert not any(thread.name == "simulator" for thread in threading.enumerate())
    finally:
        run.stop.set()


@pytest.mark.integration
def test_stack_up_prints_addresses_and_stops_everything(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*CLI, "stack", "up"],
        cwd=ROOT,
        env=cli_env(SENTIMENT_LOG_LEVEL="WARNING"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = ChildWatcher(process.pid)
    exports: dict[str, str] = {}
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.strip().startswith("export "):
            name, _, value = line.strip().removeprefix("export ").partition("=")
            exports[name] = value
        if "Ctrl-C stops" in line:
            break
    try:
        assert set(exports) == {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}, process.stderr
        url = exports["DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        with psycopg.connect(libpq_url(url)) as conn:  # migrated, no password needed
            tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables")}
        assert {"scored_posts", "sentiment_minute_counts", "sentiment_alerts"} <= tables
        brokers = AdminClient({"bootstrap.servers": exports["KAFKA_BOOTSTRAP_SERVERS"]})
        assert brokers.list_topics(timeout=10).brokers
        time.sleep(1)  # let the watcher see the children
        data_dirs = postgres_data_dirs(watcher.seen)
        assert data_dirs
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped." in out
    assert watcher.survivors() == []
    assert not any(d.exists() for d in data_dirs)


@pytest.mark.integration
@pytest.mark.slow
def test_headless_demo_end_to_end(tmp_path: Path, database_url: str) -> None:
    if not (DEFAULT_MODEL_DIR / "metadata.json").exists():
        pytest.fail(f"the demo scores with the committed default model: {DEFAULT_MODEL_DIR}")
    chart = tmp_path / "chart.png"
    # The database is the test's own (so we can check the rows after the run); the broker is
    # the demo's embedded one, so the run also proves it stops what it starts. No --data: the
    # demo replays the TweetEval sample bundled with the package, as on a user's fresh machine.
    process = subprocess.Popen(
        [
            *CLI, "demo", "--headless", "--duration", str(DEMO_SECONDS), "--rate", "20",
            "--seed", "7", "--promote-at", str(PROMOTE_AT_S),
            "--chart", str(chart), "--log-level", "WARNING",
        ],
        cwd=ROOT,
        env=cli_env(DATABASE_URL=database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    watcher = ChildWatcher(process.pid)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-5000:]
    summary = json.loads(out.strip().splitlines()[-1])

    assert watcher.survivors() == []
    assert set(summary["pids"]) == {"broker", "consumer"}  # no embedded Postgres: we gave one
    assert summary["consumer_exit_code"] == 0
    assert not summary["interrupted"]

    # The summary against PostgreSQL...
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute("SELECT count(*) FROM scored_posts").fetchone()
        by_label: dict[str, int] = {
            label: count
            for label, count in conn.execute("SELECT label, count(*) FROM scored_posts GROUP BY 1")
        }
        minute_total = conn.execute("SELECT sum(count) FROM sentiment_minute_counts").fetchone()
        first_post = conn.execute("SELECT min(created_at) FROM scored_posts").fetchone()
        alerts = conn.execute(
            "SELECT detected_at, negative_share, baseline_share, peak_share"
            " FROM sentiment_alerts ORDER BY detected_at"
        ).fetchall()
        named: dict[str, int] = dict(
            conn.execute("SELECT entity, count(*) FROM post_entities GROUP BY 1").fetchall()
        )
    assert rows is not None and minute_total is not None and first_post is not None
    assert summary["posts_sent"] > 0.9 * 20 * DEMO_SECONDS
    assert summary["rows_in_postgres"] == rows[0] == summary["posts_sent"]
    assert minute_total[0] == rows[0]
    # ...and against the consumer's metrics, as scraped at the end.
    assert summary["scored"] == summary["posts_sent"]
    assert {k: v for k, v in summary["labels_scored"].items() if v} == by_label
    assert summary["dead_letters"] == summary["poison_sent"]
    assert summary["latency_seconds"]["p50"] is not None
    assert 0 < summary["latency_seconds"]["p50"] <= summary["latency_seconds"]["p99"] < 30
    assert summary["throughput_posts_per_s"] > 10
    # A fifth of the posts got a late gold label: the dashboard's online quality measured them.
    assert summary["feedback_labels_sent"] > 0.1 * summary["posts_sent"]
    assert summary["online_quality"]["15m"]["labelled"] > 0

    # An alert fired during the spike (40% to 70% of the run), and not before it.
    assert alerts, "no alert fired"
    assert len(summary["alerts"]) == len(alerts)
    spike_start = first_post[0] + timedelta(seconds=0.4 * DEMO_SECONDS)
    spike_end = first_post[0] + timedelta(seconds=0.7 * DEMO_SECONDS)
    detected, share, baseline, peak = alerts[0]
    assert spike_start <= detected <= spike_end + timedelta(seconds=10)
    assert share - baseline >= 0.2  # the detector's default minimum increase
    assert peak > 0.5  # the spike is 80% negative; the model finds most of it

    # The spike is about the watched entity acme: its alert, timed in the summary.
    watched = summary["watchlist"]
    assert [alert["entity"] for alert in summary["alerts"]].count(watched["spike_entity"]) == 1
    assert 0 < watched["entity_alert_delay_s"] < 0.3 * DEMO_SECONDS + 10
    counted = {name: sum(labels.values()) for name, labels in watched["entities"].items()}
    assert {name: n for name, n in counted.items() if n} == named
    assert counted["acme"] > 0.15 * summary["posts_sent"]

    # The promotion part-way through: both versions scored rows, the new one soon after.
    promotion = summary["promotion"]
    by_version = promotion["rows_by_version"]
    assert len(by_version) == 2 and sum(by_version.values()) == rows[0]
    assert by_version[promotion["version"]] > 0
    assert 0 < promotion["first_row_after_s"] < 10

    assert summary["chart"] == str(chart)
    data = chart.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000
