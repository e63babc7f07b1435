"""The simulator producer: unit tests of its parts, then runs against the real broker."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException

from embedded.process import free_port
from model.data import SAMPLE_DIR, LabelledTweet, read_splits
from producer_sim.download import DownloadError, download_tweeteval
from producer_sim.pacing import Pacer
from producer_sim.poison import PoisonKind, poison_value
from producer_sim.posts import AuthorPool, Spike, TweetPicker, post_fields
from producer_sim.simulator import KIND_HEADER, POISON_HEADER, Simulator, SimulatorConfig
from producer_sim.topics import ensure_topic
from stream_core.contract import GOLD_LABEL_HEADER, MAX_TEXT_CHARS
from tests.conftest import CLI, ROOT, cli_env
from tests.simulator_helpers import consume_all

# --- the parts, without a broker ---


def test_download_offline_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:9/sentiment"):
        download_tweeteval(["val"], tmp_path, base_url="http://127.0.0.1:9", timeout_s=2)
    assert not list((tmp_path / "sentiment").iterdir())  # no half-written file left


def test_pacer_deadlines_are_absolute() -> None:
    now = [100.0]
    pacer = Pacer(50.0, clock=lambda: now[0])
    now[0] = 100.5  # a slow send does not push later deadlines back
    assert pacer.wait_s(25) == 0.0
    assert pacer.wait_s(30) == pytest.approx(0.1)
    assert pacer.offset(30) == pytest.approx(0.6)
    assert Pacer(0, clock=lambda: now[0]).wait_s(10**6) == 0.0


def test_spike_draws_the_asked_negative_share() -> None:
    tweets = [LabelledTweet(f"t{i}", i % 3, i) for i in range(300)]
    picker = TweetPicker(tweets, random.Random(1), spike=Spike(10, 5, 0.9))
    inside = [picker.next(12.0) for _ in range(2000)]
    share = sum(t is not None and t.label_id == 0 for t in inside) / len(inside)
    assert share == pytest.approx(0.9, abs=0.03)
    outside = [picker.next(1.0) for _ in range(300)]
    assert outside == tweets  # the replay is untouched by the spike
    assert picker.next(1.0) is None


def test_authors_are_stable_with_a_seed() -> None:
    first = [AuthorPool(50, random.Random(7)).next() for _ in range(3)]
    again = [AuthorPool(50, random.Random(7)).next() for _ in range(3)]
    assert first == again
    assert all(name.startswith("user-00") for name in first)


@pytest.mark.parametrize("kind", list(PoisonKind))
def test_each_poison_kind_is_malformed_its_own_way(kind: PoisonKind) -> None:
    value = poison_value(kind, post_fields("id-1", "hello there", "user-0001", "en"))
    if kind is PoisonKind.BAD_UTF8:
        with pytest.raises(UnicodeDecodeError):
            value.decode("utf-8")
        return
    if kind is PoisonKind.BAD_JSON:
        with pytest.raises(json.JSONDecodeError):
            json.loads(value)
        return
    decoded = json.loads(value)
    checks: dict[PoisonKind, Callable[[Any], bool]] = {
        PoisonKind.NOT_AN_OBJECT: lambda d: isinstance(d, list),
        PoisonKind.MISSING_TEXT: lambda d: "text" not in d and d["id"] == "id-1",
        PoisonKind.WRONG_TYPE: lambda d: d["text"] == 42,
        PoisonKind.EMPTY_TEXT: lambda d: d["text"].strip() == "",
        PoisonKind.OVERSIZED_TEXT: lambda d: len(d["text"]) > MAX_TEXT_CHARS,
        PoisonKind.BAD_TIMESTAMP: lambda d: d["created_at"] == "yesterday at noon",
    }
    assert checks[kind](decoded)


# --- against the real broker ---


def run(kafka_bootstrap: str, data: Path, **options: Any) -> Simulator:
    config = SimulatorConfig(tweets=read_splits(data, ["val"]), **options)
    simulator = Simulator(config, {"bootstrap.servers": kafka_bootstrap})
    simulator.run()
    return simulator


@pytest.mark.integration
def test_counts_poison_and_per_author_order(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    simulator = run(
        kafka_bootstrap,
        data=sample_dir,
        topic=topic,
        rate_per_s=0,
        limit=1500,
        seed=11,
        authors=40,
        partitions=4,
        poison_rate=0.1,
        duplicate_rate=0.05,
    )
    summary = simulator.summary
    assert summary.stop_reason == "limit"
    assert (summary.sent, summary.acknowledged, summary.failed) == (1500, 1500, 0)
    assert summary.posts + summary.duplicates + sum(summary.poison.values()) == 1500

    received = consume_all(kafka_bootstrap, topic, 1500)
    assert len(received) == 1500
    kinds = Counter(m.headers[KIND_HEADER] for m in received)
    assert kinds == {
        "post": summary.posts,
        "duplicate": summary.duplicates,
        "poison": sum(summary.poison.values()),
    }
    poison = Counter(
        m.headers[POISON_HEADER] for m in received if m.headers[KIND_HEADER] == "poison"
    )
    assert poison == summary.poison
    assert set(poison) == {kind.value for kind in PoisonKind}
    gold = Counter(
        m.headers[GOLD_LABEL_HEADER] for m in received if m.headers[KIND_HEADER] == "post"
    )
    assert gold == summary.gold_labels

    posts = [json.loads(m.value) for m in received if m.headers[KIND_HEADER] == "post"]
    assert all(set(p) == {"id", "text", "created_at", "author", "lang"} for p in posts)
    assert len({p["id"] for p in posts}) == len(posts)
    originals = {m.value for m in received if m.headers[KIND_HEADER] == "post"}
    assert all(m.value in originals for m in received if m.headers[KIND_HEADER] == "duplicate")

    by_author: dict[str, list[int]] = defaultdict(list)
    partitions_of: dict[str, set[int]] = defaultdict(set)
    for message in received:  # consume order within a partition is produce order
        by_author[message.key].append(message.seq)
        partitions_of[message.key].add(message.partition)
    assert len(by_author) == 40
    assert all(len(parts) == 1 for parts in partitions_of.values())
    assert all(seqs == sorted(seqs) for seqs in by_author.values())
    assert sorted(m.seq for m in received) == list(range(1500))


@pytest.mark.integration
def test_spike_window_has_the_asked_share(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    rate, at_s, duration_s = 200.0, 1.0, 3.0
    simulator = run(
        kafka_bootstrap,
        data=sample_dir,
        topic=topic,
        rate_per_s=rate,
        duration_s=5.0,
        seed=5,
        spike=Spike(at_s, duration_s, 0.75),
    )
    received = consume_all(kafka_bootstrap, topic, simulator.summary.sent)
    assert len(received) == simulator.summary.sent == 1000
    # Message n is scheduled at n / rate, so the window is a range of sequence numbers.
    window = range(int(at_s * rate), int((at_s + duration_s) * rate))
    inside = [m.headers[GOLD_LABEL_HEADER] for m in received if m.seq in window]
    outside = [m.headers[GOLD_LABEL_HEADER] for m in received if m.seq not in window]
    assert len(inside) == 600
    assert inside.count("negative") / len(inside) == pytest.approx(0.75, abs=0.05)
    assert outside.count("negative") / len(outside) < 0.3  # the data's own share (15% in val)
    assert simulator.summary.spike_posts == 600


@pytest.mark.integration
@pytest.mark.slow
def test_pacing_holds_the_rate_over_20_seconds(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    simulator = run(
        kafka_bootstrap, data=sample_dir, topic=topic, rate_per_s=100.0, duration_s=20.0
    )
    summary = simulator.summary
    assert summary.sent == summary.acknowledged == 2000
    assert summary.achieved_rate_per_s == pytest.approx(100.0, rel=0.05)
    # Independently of the simulator's own clock: the broker's message timestamps.
    stamps = sorted(m.timestamp_ms for m in consume_all(kafka_bootstrap, topic, 2000))
    achieved = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000)
    assert achieved == pytest.approx(100.0, rel=0.05)
    per_second = Counter((s - stamps[0]) // 1000 for s in stamps)
    # No bursts or gaps (loose: the machine is shared, a stall moves a few posts a bucket on).
    assert all(50 <= per_second[second] <= 150 for second in range(19))


@pytest.mark.integration
def test_stop_event_flushes_everything_sent(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    tweets = read_splits(sample_dir, ["val"])
    simulator = Simulator(
        SimulatorConfig(topic=topic, tweets=tweets, rate_per_s=500, loop=True),
        {"bootstrap.servers": kafka_bootstrap},
    )
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    summary = simulator.run(stop)
    assert summary.stop_reason == "stopped"
    assert 300 < summary.sent == summary.acknowledged
    assert len(consume_all(kafka_bootstrap, topic, summary.sent)) == summary.sent


# --- the command line ---


def simulate(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "simulate", "--quiet", "--log-level", "WARNING", *args],
        cwd=ROOT,
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.integration
def test_cli_with_no_data_flag_replays_the_bundled_sample_and_prints_a_json_summary(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    process = simulate(
        "--bootstrap-servers", kafka_bootstrap, "--topic", topic,
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
def test_cli_sigterm_flushes_and_exits_cleanly(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    process = simulate(
        "--bootstrap-servers", kafka_bootstrap, "--topic", topic,
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


def test_an_unreachable_broker_fails_at_once_not_at_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaException, match="Connection refused"):
        ensure_topic({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, "posts", 1, timeout_s=60)
    assert time.monotonic() - started < 30


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
