"""Negative-sentiment spike detection: a pure state machine fed with label counts and times.

How it decides (all times are the caller's, so tests inject them):

* Posts are counted in 1-second buckets. The *window* is the last ``window_s`` seconds of
  buckets; its negative share and volume are what we judge.
* Buckets that slide out of the window feed the *baseline*: a count-weighted exponentially
  weighted mean of the negative share (half-life ``baseline_half_life_s``), plus an exponentially
  weighted Pearson dispersion ``phi`` (1 for pure binomial noise, more when the stream is bursty).
  The baseline never overlaps the window, so a spike cannot hide in its own reference.
* The window's z-score is ``(share - baseline) / sqrt(phi * baseline * (1 - baseline) / volume)``.
  An alert fires when the window has at least ``min_volume`` posts, the baseline has at least
  ``baseline_min_volume`` (decayed) posts behind it, the z-score reaches ``z_threshold`` and the
  share is at least ``min_increase`` above the baseline, by a margin of one standard error. The
  last condition keeps large streams, where tiny shifts are statistically significant, from
  alerting on a few points of drift, and small windows from alerting on a shift plus noise.
* Hysteresis: an active alert clears only when the excess falls below ``clear_increase`` or the
  window gets too quiet to judge. After it clears, ``cooldown_s`` must pass before the next one,
  so one spike gives one alert. The baseline keeps learning during an alert: a short spike moves
  it little (a 30 s spike moves a 300 s half-life baseline by under 7% of the jump), while a
  lasting change of level becomes the new normal and clears the alert instead of pinning it on.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

BUCKET_S = 1  # resolution of the window; one-second buckets keep detection delay low.
SHARE_FLOOR = 0.01  # keeps sigma positive when the baseline share is 0 or 1.


class AlertKind(StrEnum):
    """The ``kind`` label of ``sentiment_alerts_total`` and the ``kind`` column of alerts."""

    NEGATIVE_SPIKE = "negative_spike"


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """The thresholds; see the module docstring for how they interact. These defaults are the
    ``SENTIMENT_ALERT_*`` settings' (``observability.settings.DetectorSettings``)."""

    window_s: float = 20.0
    min_volume: int = 50
    baseline_half_life_s: float = 300.0
    baseline_min_volume: int = 200
    z_threshold: float = 4.0
    min_increase: float = 0.2
    clear_increase: float = 0.1
    cooldown_s: float = 60.0


@dataclass(frozen=True, slots=True)
class WindowReading:
    """The window as last judged: its volume, share and how it compares with the baseline."""

    at: datetime
    volume: int
    negative: int
    baseline_share: float | None  # None until the baseline has enough posts behind it
    sigma: float | None  # standard error of the share under the baseline (None: no baseline)

    @property
    def share(self) -> float | None:
        return self.negative / self.volume if self.volume else None

    @property
    def zscore(self) -> float | None:
        if self.sigma is None or self.baseline_share is None or not self.volume:
            return None
        return (self.negative / self.volume - self.baseline_share) / self.sigma


@dataclass(frozen=True, slots=True)
class SpikeAlert:
    """One alert; the same ``alert_id`` is reported when it fires and when it resolves."""

    alert_id: uuid.UUID
    kind: AlertKind
    detected_at: datetime
    window_start: datetime
    window_end: datetime
    negative_share: float
    baseline_share: float
    volume: int
    zscore: float
    dispersion: float
    peak_share: float
    resolved_at: datetime | None = None
    entity: str | None = None  # the watched entity it is about; None: the whole stream

    @property
    def firing(self) -> bool:
        return self.resolved_at is None


@dataclass(slots=True)
class _Bucket:
    start: int  # epoch seconds
    negative: int = 0
    total: int = 0


@dataclass(slots=True)
class _Baseline:
    """Exponentially weighted negative share and dispersion of the buckets behind the window."""

    half_life_s: float
    weight: float = 0.0  # decayed post count
    negative: float = 0.0  # decayed negative count
    dispersion_weight: float = 0.0  # decayed bucket count
    dispersion_sum: float = 0.0  # decayed sum of squared Pearson residuals
    updated_at: float | None = None

    @property
    def share(self) -> float | None:
        return self.negative / self.weight if self.weight > 0 else None

    @property
    def dispersion(self) -> float:
        if self.dispersion_weight <= 0:
            return 1.0
        return max(1.0, self.dispersion_sum / self.dispersion_weight)

    def decay_to(self, at: float) -> None:
        if self.updated_at is not None and at > self.updated_at:
            factor = 0.5 ** ((at - self.updated_at) / self.half_life_s)
            self.weight *= factor
            self.negative *= factor
            self.dispersion_weight *= factor
            self.dispersion_sum *= factor
        self.updated_at = at if self.updated_at is None else max(self.updated_at, at)

    def add(self, at: float, negative: int, total: int) -> None:
        self.decay_to(at)
        prior = self.share
        if prior is not None and 0 < prior < 1:
            expected = total * prior
            residual = (negative - expected) ** 2 / (expected * (1 - prior))
            self.dispersion_sum += residual
            self.dispersion_weight += 1
        self.weight += total
        self.negative += negative


@dataclass
class SpikeDetector:
    """Feed it with :meth:`observe` (and :meth:`tick` when idle); it returns alert transitions."""

    config: DetectorConfig = field(default_factory=DetectorConfig)
    _buckets: deque[_Bucket] = field(default_factory=deque, init=False)
    _baseline: _Baseline = field(init=False)
    _active: SpikeAlert | None = field(default=None, init=False)
    _quiet_until: float = field(default=float("-inf"), init=False)
    _now: float = field(default=float("-inf"), init=False)
    reading: WindowReading | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._baseline = _Baseline(self.config.baseline_half_life_s)

    @property
    def active(self) -> SpikeAlert | None:
        """The alert that is firing now, if any."""
        return self._active

    def adopt(self, alert_id: uuid.UUID) -> None:
        """Carry on the active alert under ``alert_id``: the one an earlier detector opened
        for the same spike (a new elected detector takes over an open alert)."""
        if self._active is not None:
            self._active = replace(self._active, alert_id=alert_id)

    def observe(self, at: datetime, negative: int, total: int) -> list[SpikeAlert]:
        """Count ``total`` posts (``negative`` of them negative) at ``at``; judge the window."""
        if not 0 <= negative <= total:
            raise ValueError(f"need 0 <= negative <= total, got {negative}/{total}")
        now = self._advance(at)
        start = int(now // BUCKET_S) * BUCKET_S
        if not self._buckets or self._buckets[-1].start < start:
            self._buckets.append(_Bucket(start))
        bucket = self._buckets[-1]  # a late timestamp lands in the newest bucket
        bucket.negative += negative
        bucket.total += total
        return self._judge(now)

    def tick(self, at: datetime) -> list[SpikeAlert]:
        """Let time pass with no posts (so an alert can clear when the stream goes quiet)."""
        return self._judge(self._advance(at))

    def _advance(self, at: datetime) -> float:
        # Never let the clock go back: batches may carry slightly out-of-order times.
        self._now = max(self._now, at.timestamp())
        return self._now

    def _slide(self, now: float) -> None:
        """Move buckets that left the window into the baseline."""
        oldest_kept = now - self.config.window_s
        while self._buckets and self._buckets[0].start + BUCKET_S <= oldest_kept:
            bucket = self._buckets.popleft()
            if bucket.total:
                self._baseline.add(bucket.start + BUCKET_S, bucket.negative, bucket.total)
        self._baseline.decay_to(now)

    def _read(self, now: float) -> WindowReading:
        volume = sum(b.total for b in self._buckets)
        negative = sum(b.negative for b in self._buckets)
        baseline = self._baseline.share
        if self._baseline.weight < self.config.baseline_min_volume:
            baseline = None
        sigma = None
        if baseline is not None and volume:
            p = min(max(baseline, SHARE_FLOOR), 1 - SHARE_FLOOR)
            sigma = math.sqrt(self._baseline.dispersion * p * (1 - p) / volume)
        return WindowReading(_datetime(now), volume, negative, baseline, sigma)

    def _judge(self, now: float) -> list[SpikeAlert]:
        self._slide(now)
        reading = self._read(now)
        self.reading = reading
        share = reading.share
        if self._active is None:
            return self._maybe_fire(now, reading)
        baseline = reading.baseline_share
        if (
            share is not None
            and baseline is not None
            and reading.volume >= self.config.min_volume
            and share - baseline >= self.config.clear_increase
        ):
            self._active = replace(self._active, peak_share=max(self._active.peak_share, share))
            return []
        resolved = replace(self._active, resolved_at=_datetime(now))
        self._active = None
        self._quiet_until = now + self.config.cooldown_s
        return [resolved]

    def _maybe_fire(self, now: float, reading: WindowReading) -> list[SpikeAlert]:
        cfg = self.config
        share, baseline, sigma, zscore = (
            reading.share,
            reading.baseline_share,
            reading.sigma,
            reading.zscore,
        )
        if (
            now < self._quiet_until
            or reading.volume < cfg.min_volume
            or share is None
            or baseline is None
            or sigma is None
            or zscore is None
            or zscore < cfg.z_threshold
            # The rise must clear min_increase by one standard error: a level shift just under
            # it, plus noise in a small window, must not pass for a spike.
            or share - baseline - sigma < cfg.min_increase
        ):
            return []
        self._active = SpikeAlert(
            alert_id=uuid.uuid4(),
            kind=AlertKind.NEGATIVE_SPIKE,
            detected_at=reading.at,
            window_start=_datetime(self._buckets[0].start),
            window_end=reading.at,
            negative_share=share,
            baseline_share=baseline,
            volume=reading.volume,
            zscore=zscore,
            dispersion=self._baseline.dispersion,
            peak_share=share,
        )
        return [self._active]


def _datetime(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
