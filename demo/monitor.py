"""The demo's view of the running system: metrics scrapes, alerts and the simulator's counters.

Polled about once a second by the demo's main loop; the dashboard and the headless summary
both read from it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import psycopg
import structlog

from demo.database import Alert, DemoDatabase
from demo.scrape import MetricsSnapshot, bucket_delta, quantile, scrape
from producer_sim.simulator import ProgressSnapshot, Simulator

log = structlog.get_logger(__name__)

MIX_WINDOW_S = 5.0  # one bar of the moving label mix
RECENT_S = 10.0  # posts/s and latency percentiles are over this much recent time


@dataclass(frozen=True)
class LabelMix:
    """Posts scored per label during one ``MIX_WINDOW_S`` window, ending ``at_s`` into the run."""

    at_s: float
    counts: dict[str, float]


class Monitor:
    def __init__(self, metrics_url: str, database: DemoDatabase, simulator: Simulator) -> None:
        self.metrics_url = metrics_url
        self.database = database
        self.simulator = simulator
        self.history: deque[MetricsSnapshot] = deque(maxlen=120)
        self.mix: deque[LabelMix] = deque(maxlen=24)
        self.alerts: list[Alert] = []
        self.entity_counts: dict[str, dict[str, int]] = {}  # watched entity -> label -> posts
        self._mix_start: MetricsSnapshot | None = None

    @property
    def latest(self) -> MetricsSnapshot | None:
        return self.history[-1] if self.history else None

    @property
    def sim(self) -> ProgressSnapshot:
        return self.simulator.snapshot()

    def poll(self) -> None:
        """Scrape /metrics and read the alerts; a failed read keeps the last known values."""
        try:
            snapshot = scrape(self.metrics_url)
        except OSError as error:
            log.debug("metrics scrape failed", error=str(error))
        else:
            self.history.append(snapshot)
            self._roll_mix(snapshot)
        try:
            self.alerts = self.database.alerts()
            self.entity_counts = self.database.entity_counts()
        except psycopg.Error as error:  # the dashboard outlives a database hiccup
            log.debug("alerts query failed", error=str(error))

    def _roll_mix(self, snapshot: MetricsSnapshot) -> None:
        start = self._mix_start
        if start is None:
            self._mix_start = snapshot
            return
        if snapshot.taken_at - start.taken_at >= MIX_WINDOW_S:
            counts = {k: v - start.predictions.get(k, 0.0) for k, v in snapshot.predictions.items()}
            self.mix.append(LabelMix(self.sim.elapsed_s, counts))
            self._mix_start = snapshot

    def _recent_pair(self) -> tuple[MetricsSnapshot, MetricsSnapshot] | None:
        if len(self.history) < 2:
            return None
        newest = self.history[-1]
        older = [s for s in self.history if newest.taken_at - s.taken_at >= RECENT_S]
        return (older[-1] if older else self.history[0]), newest

    def posts_per_s(self) -> float:
        pair = self._recent_pair()
        if pair is None:
            return 0.0
        old, new = pair
        return (new.scored - old.scored) / max(new.taken_at - old.taken_at, 1e-9)

    def recent_latency(self, q: float) -> float | None:
        pair = self._recent_pair()
        return quantile(q, bucket_delta(pair[1], pair[0])) if pair else None

    def total_latency(self, q: float) -> float | None:
        return quantile(q, self.latest.latency_buckets) if self.latest else None

    def processed(self) -> float:
        """Messages the consumer has finished with: stored, or dead-lettered."""
        latest = self.latest
        return latest.rows_written + latest.dead_letters if latest else 0.0
