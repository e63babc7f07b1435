"""`sentiment-stream simulate` as users run it: a process, its output, its exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from embedded.process import free_port
from model.data import SAMPLE_DIR, read_splits
from producer_sim.simulator import KIND_HEADER
from tests.fixtures.services import CLI, ROOT, cli_env
from tests.fixtures.simulator import consume_all
from watchlist.matcher import Matcher
from watchlist.rules import WatchEntity

ACME = WatchEntity(name="acme", keywords=["acme"])


def simulate(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "simulate", "--quiet", "--log-level", "WARNING", *args],
        cwd=ROOT,
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def on_the_broker(kafka_bootstrap: str, topic: str) -> list[str]:
    """The flags that point `simulate` at the test's broker and topic."""
    return ["--bootstrap-servers", kafka_bootstrap, "--topic", topic]


@pytest.mark.integration
def test_cli_with_no_data_flag_replays_the_bundled_sample_and_prints_a_json_summary(
    kafka_bootstrap: str, topic: str, on_the_broker: list[str], tmp_path: Path
) -> None:
    process = simulate(
        *on_the_broker,
        "--rate", "0", "--limit", "300", "--poison-rate", "0.2", "--json",
        XDG_CACHE_HOME=str(tmp_path),  # no earlier --download to fall back on
    )  # fmt: skip
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    summary = json.loads(out)
    assert summary["sent"] == summary["acknowledged"] == 300
    assert sum(summary["poison"].values()) + summary["posts"] == 300
    received = consume_all(kafka_bootstrap, topic, 300)
    assert len(received) == 300
    bundled = {t.text for t in read_splits(SAMPLE_DIR, ["val"])}
    posts = [json.loads(m.value) for m in received if m.headers[KIND_HEADER] == "post"]
    assert len(posts) == summary["posts"]
    assert all(post["text"] in bundled for post in posts)


@pytest.mark.integration
def test_cli_spike_entity_rewrites_posts_to_name_it(
    kafka_bootstrap: str, topic: str, on_the_broker: list[str]
) -> None:
    process = simulate(
        *on_the_broker,
        "--rate", "200", "--limit", "400", "--seed", "3", "--json",
        "--spike-at", "0", "--spike-duration", "60", "--spike-entity", "acme",
        "--spike-entity-share", "0.5",
    )  # fmt: skip
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    summary = json.loads(out)
    received = consume_all(kafka_bootstrap, topic, 400)
    texts = [json.loads(m.value)["text"] for m in received]
    naming = [text for text in texts if Matcher([ACME]).entities_in(text)]
    assert len(naming) == summary["entity_posts"] == summary["spike_posts"]
    assert 150 < len(naming) < 250  # half the posts
    assert summary["spike_negative"] > 0.6 * len(naming)  # --spike-share: 0.8 by default


@pytest.mark.integration
def test_cli_sigterm_flushes_and_exits_cleanly(
    kafka_bootstrap: str, topic: str, on_the_broker: list[str], sample_dir: Path
) -> None:
    process = simulate(
        *on_the_broker,
        "--data", str(sample_dir), "--split", "val",
        "--rate", "200", "--loop", "--json",
    )  # fmt: skip
    assert process.stderr is not None
    try:
        process.communicate(timeout=6)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    summary = json.loads(out)
    assert summary["stop_reason"] == "stopped"
    assert summary["sent"] == summary["acknowledged"] > 100
    assert len(consume_all(kafka_bootstrap, topic, summary["sent"])) == summary["sent"]


def test_cli_unreachable_broker_is_one_clear_line() -> None:
    port = free_port()  # nothing listens there
    process = simulate("--bootstrap-servers", f"127.0.0.1:{port}")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    (line,) = err.strip().splitlines()  # no librdkafka log lines, no traceback
    assert line.startswith(f"Error: cannot reach Kafka at 127.0.0.1:{port}: ")
    assert "Connection refused" in line


def test_cli_download_offline_names_data(tmp_path: Path) -> None:
    process = simulate(
        "--download", "--cache-dir", str(tmp_path), "--download-url", "http://127.0.0.1:9"
    )
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "could not download" in err
    assert "--data" in err
    assert "Traceback" not in err


def test_cli_explains_a_folder_that_is_not_tweeteval(tmp_path: Path) -> None:
    process = simulate("--data", str(tmp_path))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "does not exist" in err
    assert "TweetEval-format folder" in err


def test_cli_asking_the_bundled_sample_for_a_split_it_lacks_says_so(tmp_path: Path) -> None:
    process = simulate("--split", "test", XDG_CACHE_HOME=str(tmp_path))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "test_text.txt does not exist" in err
    assert "the bundled data holds only val: give --data DIR or --download" in err
    assert "Traceback" not in err
