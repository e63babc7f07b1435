"""The simulator against the real broker: what it sends, its pacing, its scenarios."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from model.data import read_splits
from producer_sim.poison import PoisonKind
from producer_sim.posts import Spike
from producer_sim.simulator import KIND_HEADER, POISON_HEADER, Simulator, SimulatorConfig
from stream_core.contract import GOLD_LABEL_HEADER
from tests.fixtures.simulator import Received, consume_all
from watchlist.matcher import Matcher
from watchlist.rules import WatchEntity


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


SPIKE_RATE = 200.0  # posts/s, for 5 s, with a spike from 1 s to 4 s


def spiked_run(
    kafka_bootstrap: str, topic: str, data: Path, spike: Spike
) -> tuple[Simulator, list[Received], range]:
    """A 5 s run with ``spike``: the simulator, what it sent, and the spike's sequence numbers
    (message n is scheduled at n / rate, so the spike is a range of them)."""
    simulator = run(
        kafka_bootstrap,
        data=data,
        topic=topic,
        rate_per_s=SPIKE_RATE,
        duration_s=5.0,
        seed=5,
        spike=spike,
    )
    received = consume_all(kafka_bootstrap, topic, simulator.summary.sent)
    assert len(received) == simulator.summary.sent == 1000
    window = range(int(spike.at_s * SPIKE_RATE), int((spike.at_s + spike.duration_s) * SPIKE_RATE))
    return simulator, received, window


@pytest.mark.integration
def test_spike_window_has_the_asked_share(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    simulator, received, window = spiked_run(
        kafka_bootstrap, topic, sample_dir, Spike(1.0, 3.0, 0.75)
    )
    inside = [m.headers[GOLD_LABEL_HEADER] for m in received if m.seq in window]
    outside = [m.headers[GOLD_LABEL_HEADER] for m in received if m.seq not in window]
    assert len(inside) == 600
    assert inside.count("negative") / len(inside) == pytest.approx(0.75, abs=0.05)
    assert outside.count("negative") / len(outside) < 0.3  # the data's own share (15% in val)
    assert simulator.summary.spike_posts == 600


@pytest.mark.integration
def test_an_entity_spike_moves_the_entitys_negative_share_not_the_streams(
    kafka_bootstrap: str, topic: str, sample_dir: Path
) -> None:
    spike = Spike(1.0, 3.0, 0.8, entity="acme", entity_share=0.2)
    simulator, received, window = spiked_run(kafka_bootstrap, topic, sample_dir, spike)
    summary = simulator.summary
    matcher = Matcher([WatchEntity(name="acme", keywords=["acme"])])

    def negative_share(inside: bool, naming: bool) -> float:
        labels = [
            m.headers[GOLD_LABEL_HEADER]
            for m in received
            if (m.seq in window) == inside
            and bool(matcher.entities_in(json.loads(m.value)["text"])) == naming
        ]
        return labels.count("negative") / len(labels)

    named = [m for m in received if matcher.entities_in(json.loads(m.value)["text"])]
    assert len(named) == summary.entity_posts
    assert len(named) / len(received) == pytest.approx(0.2, abs=0.05)
    assert summary.spike_posts == len([m for m in named if m.seq in window])
    assert negative_share(inside=True, naming=True) == pytest.approx(0.8, abs=0.08)
    assert negative_share(inside=False, naming=True) < 0.3  # the entity's baseline: the data's
    assert negative_share(inside=True, naming=False) < 0.3  # the rest of the stream is calm
    stream_in_window = [m.headers[GOLD_LABEL_HEADER] for m in received if m.seq in window]
    # The stream's share moves by about entity_share * (0.8 - 0.16): under the detector's 0.2.
    assert stream_in_window.count("negative") / len(stream_in_window) < 0.16 + 0.2


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
