"""The spike detector on synthetic streams and on simulator-like TweetEval streams."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from observability.spike import DetectorConfig, SpikeAlert, SpikeDetector

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NEGATIVE = 0  # TweetEval's label id for negative


@dataclass
class Run:
    alerts: list[tuple[float, SpikeAlert]]  # (seconds since start, alert)

    @property
    def fired(self) -> list[tuple[float, SpikeAlert]]:
        return [(t, a) for t, a in self.alerts if a.firing]

    @property
    def resolved(self) -> list[tuple[float, SpikeAlert]]:
        return [(t, a) for t, a in self.alerts if not a.firing]


def feed(
    detector: SpikeDetector,
    seconds: float,
    rate: float,
    share_at: Callable[[float], float],
    *,
    batch: int = 16,
    seed: int = 0,
) -> Run:
    """Posts at ``rate`` per second, in batches, each negative with probability share_at(t)."""
    rng = random.Random(seed)
    alerts: list[tuple[float, SpikeAlert]] = []
    t = 0.0
    while t < seconds:
        t += batch / rate
        negative = sum(rng.random() < share_at(t) for _ in range(batch))
        for alert in detector.observe(T0 + timedelta(seconds=t), negative, batch):
            alerts.append((t, alert))
    return Run(alerts)


def spike(base: float, start: float, duration: float, share: float) -> Callable[[float], float]:
    return lambda t: share if start <= t < start + duration else base


@pytest.mark.parametrize("rate", [20, 50, 150, 1000])
def test_quiet_on_a_steady_stream(rate: float) -> None:
    run = feed(SpikeDetector(), 600, rate, lambda t: 0.25)
    assert run.alerts == []


@pytest.mark.parametrize("rate", [20, 50, 150])
def test_one_alert_for_one_spike_and_it_resolves(rate: float) -> None:
    run = feed(SpikeDetector(), 200, rate, spike(0.25, 60, 40, 0.7))
    assert len(run.fired) == 1
    fired_at, alert = run.fired[0]
    assert 60 < fired_at < 75  # within 15 s of the spike's start
    assert alert.baseline_share == pytest.approx(0.25, abs=0.05)
    assert alert.negative_share - alert.baseline_share >= 0.2
    assert alert.zscore >= 4
    assert len(run.resolved) == 1
    resolved_at, resolved = run.resolved[0]
    assert resolved.alert_id == alert.alert_id
    assert 100 < resolved_at < 125  # the window empties of the spike
    assert resolved.peak_share > 0.6


def test_min_volume_keeps_quiet_streams_from_alerting() -> None:
    # 2 posts/s gives 40 posts per 20 s window, under the 50 needed: even 100% negative is ignored.
    run = feed(SpikeDetector(), 600, 2, spike(0.2, 300, 120, 1.0), batch=1)
    assert run.alerts == []
    # The same stream alerts once the minimum volume allows it.
    config = DetectorConfig(min_volume=20, baseline_min_volume=300)
    assert len(feed(SpikeDetector(config), 600, 2, spike(0.2, 300, 120, 1.0), batch=1).fired) == 1


def test_no_alert_before_the_baseline_has_enough_posts() -> None:
    # Negative from the very first post: no baseline yet, so nothing to compare with.
    assert feed(SpikeDetector(), 15, 50, lambda t: 0.9).alerts == []


def test_small_shift_is_not_a_spike_even_when_significant() -> None:
    # At 1,000 posts/s a 10-point rise is many sigmas, but below min_increase.
    run = feed(SpikeDetector(), 300, 1000, spike(0.2, 120, 60, 0.3))
    assert run.alerts == []


def test_hysteresis_flapping_spike_gives_one_alert() -> None:
    # Share hovering around the threshold for 60 s: fires once, never re-fires while it flaps.
    def flapping(t: float) -> float:
        if 60 <= t < 120:
            return 0.55 if int(t) % 4 < 2 else 0.4
        return 0.2

    run = feed(SpikeDetector(), 240, 100, flapping)
    assert len(run.fired) == 1


def test_cooldown_merges_back_to_back_spikes() -> None:
    two_spikes = lambda t: 0.75 if 60 <= t < 80 or 95 <= t < 115 else 0.2  # noqa: E731
    assert len(feed(SpikeDetector(), 200, 100, two_spikes).fired) == 1
    no_cooldown = DetectorConfig(cooldown_s=0)
    assert len(feed(SpikeDetector(no_cooldown), 200, 100, two_spikes).fired) == 2


def test_lasting_level_change_clears_instead_of_pinning_the_alert() -> None:
    run = feed(SpikeDetector(), 1200, 100, lambda t: 0.7 if t >= 120 else 0.2)
    assert len(run.fired) == 1
    assert len(run.resolved) == 1  # the baseline learned the new level
    assert feed(SpikeDetector(), 100, 100, lambda t: 0.7).alerts == []


def test_tick_resolves_when_the_stream_stops() -> None:
    detector = SpikeDetector()
    run = feed(detector, 80, 100, spike(0.2, 60, 100, 0.8))
    assert len(run.fired) == 1
    assert detector.active is not None
    assert detector.tick(T0 + timedelta(seconds=90)) == []  # still 10 s of spike in the window
    resolved = detector.tick(T0 + timedelta(seconds=110))
    assert len(resolved) == 1
    assert resolved[0].resolved_at is not None
    assert detector.active is None


def test_time_never_goes_back_and_bad_counts_are_refused() -> None:
    detector = SpikeDetector()
    detector.observe(T0 + timedelta(seconds=10), 1, 4)
    detector.observe(T0, 1, 4)  # late batch: counted in the newest bucket
    assert detector.reading is not None
    assert detector.reading.volume == 8
    assert detector.reading.at == T0 + timedelta(seconds=10)
    with pytest.raises(ValueError, match="negative <= total"):
        detector.observe(T0, 5, 4)


# --- simulator-like streams: TweetEval gold labels replayed, with the simulator's spike ---


def tweeteval_labels(tweeteval_dir: Path) -> list[int]:
    folder = tweeteval_dir / "sentiment"
    return [
        int(line)
        for split in ("val", "test")
        for line in (folder / f"{split}_labels.txt").read_text().split()
    ]


def replay(
    labels: list[int],
    rate: float,
    seconds: float,
    spike_window: tuple[float, float, float] | None = None,
    seed: int = 0,
) -> Iterator[tuple[float, list[int]]]:
    """Like ``simulate --rate R [--spike-at T --spike-duration D --spike-share P]``: during
    the spike each post is drawn negative with probability P, else from the other labels."""
    rng = random.Random(seed)
    others = [label for label in labels if label != NEGATIVE]
    t, i, batch = 0.0, 0, 16
    while t < seconds:
        t += batch / rate
        posts = [labels[(i + k) % len(labels)] for k in range(batch)]
        i += batch
        if spike_window and spike_window[0] <= t < spike_window[0] + spike_window[1]:
            posts = [
                NEGATIVE if rng.random() < spike_window[2] else rng.choice(others) for _ in posts
            ]
        yield t, posts


def run_replay(stream: Iterator[tuple[float, list[int]]]) -> Run:
    detector = SpikeDetector()
    alerts: list[tuple[float, SpikeAlert]] = []
    for t, posts in stream:
        negative = sum(label == NEGATIVE for label in posts)
        for alert in detector.observe(T0 + timedelta(seconds=t), negative, len(posts)):
            alerts.append((t, alert))
    return Run(alerts)


@pytest.mark.parametrize("rate", [50, 150])
@pytest.mark.parametrize("shuffled", [False, True])
def test_plain_replay_stays_quiet(tweeteval_dir: Path, rate: float, shuffled: bool) -> None:
    labels = tweeteval_labels(tweeteval_dir)  # val (16% negative) then test (32%)
    if shuffled:
        random.Random(7).shuffle(labels)
    assert run_replay(replay(labels, rate, 600)).alerts == []


@pytest.mark.parametrize("rate", [50, 150])
@pytest.mark.parametrize("share", [0.6, 0.8])
def test_simulator_spike_fires_once_within_a_short_demo(
    tweeteval_dir: Path, rate: float, share: float
) -> None:
    labels = tweeteval_labels(tweeteval_dir)
    random.Random(7).shuffle(labels)
    run = run_replay(replay(labels, rate, 120, spike_window=(40, 30, share)))
    assert len(run.fired) == 1
    fired_at, alert = run.fired[0]
    assert 40 < fired_at <= 55
    assert alert.negative_share > 0.45
