"""``sentiment-stream demo``: services, consumer and simulator together, then a summary.

Order of events: services up (embedded unless given) and migrated; topic created; consumer
child started and ready; simulator replaying with a negative spike part-way; the consumer
drains what was sent; a last metrics scrape; everything started is stopped, by pid; the chart.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from consumer.settings import Settings
from demo.chart import write_chart
from demo.consumer_process import ConsumerProcess
from demo.database import DemoDatabase
from demo.monitor import Monitor
from demo.promotion import DemoPromotion
from demo.services import Services, running_services
from demo.watchlist import SPIKE_ENTITY, SPIKE_ENTITY_SHARE, load_demo_watchlist, watchlist_figures
from model.data import LabelledTweet
from producer_sim.posts import Spike
from producer_sim.simulator import SimulationSummary, Simulator, SimulatorConfig
from producer_sim.topics import ensure_topic

log = structlog.get_logger(__name__)

POLL_S = 1.0
FINE_BUCKET_S = 10  # the chart's finer panel, so a one-minute demo shows a shape


# Shorter runs often end before an alert fires: the consumer starts late, the detector wants
# a baseline and a full window first, and the spike is short.
SHORTEST_ALERTING_DURATION_S = 45.0
SPIKE_START = 0.4  # of the run


DEMO_FEEDBACK_RATE = 0.2
DEMO_FEEDBACK_DELAY_S = 5.0


def demo_spike(duration_s: float) -> Spike:
    """A spike about the watched entity acme from 40% to 70% of the run: after its detector has
    a baseline (its window plus a few dozen posts), long enough to fill its window, and with
    quiet time after. The posts naming acme turn 80% negative; the rest of the stream stays calm."""
    return Spike(
        at_s=SPIKE_START * duration_s,
        duration_s=0.3 * duration_s,
        negative_share=0.8,
        entity=SPIKE_ENTITY,
        entity_share=SPIKE_ENTITY_SHARE,
    )


def shortest_alerting_duration(rate_per_s: float, baseline_posts: int) -> float:
    """Below this many seconds a run probably ends without a spike alert: too short, or too
    slow for the detector's baseline of ``baseline_posts`` posts to fill before the spike."""
    if rate_per_s <= 0:  # as fast as the broker takes them
        return SHORTEST_ALERTING_DURATION_S
    return max(SHORTEST_ALERTING_DURATION_S, baseline_posts / (SPIKE_START * rate_per_s))


@dataclass(frozen=True)
class DemoOptions:
    tweets: Sequence[LabelledTweet]
    duration_s: float = 120.0
    rate_per_s: float = 25.0
    poison_rate: float = 0.01
    partitions: int = 3
    seed: int | None = None
    chart_path: Path = Path("sentiment-demo.png")
    keep_data: bool = False
    ready_timeout_s: float = 180.0
    drain_timeout_s: float = 60.0
    promote_at_s: float | None = None  # seconds into the stream; None: no promotion


@dataclass
class DemoResult:
    """What the run did, as the headless JSON summary prints it."""

    services: Services
    simulator: SimulationSummary | None = None
    consumer_pid: int | None = None
    consumer_exit_code: int | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    chart: Path | None = None
    kept_data: Path | None = None
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        sim = self.simulator
        return {
            "posts_sent": (sim.posts + sim.duplicates) if sim else 0,
            "messages_sent": sim.sent if sim else 0,
            "poison_sent": sum(sim.poison.values()) if sim else 0,
            "spike": {
                "posts": sim.spike_posts if sim else 0,
                "negative": sim.spike_negative if sim else 0,
            },
            **self.figures,
            "chart": str(self.chart) if self.chart else None,
            "kept_data": str(self.kept_data) if self.kept_data else None,
            "interrupted": self.interrupted,
            "bootstrap_servers": self.services.bootstrap_servers,
            "database_url": self.services.printable_database_url,
            "pids": {**self.services.embedded_pids, "consumer": self.consumer_pid},
            "consumer_exit_code": self.consumer_exit_code,
        }


DashboardFactory = Callable[[Monitor, ConsumerProcess, Services], AbstractContextManager[None]]


@contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sentiment-demo-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


class DemoRun:
    """One demo run; ``dashboard`` (optional) wraps the live part with a display."""

    def __init__(
        self,
        settings: Settings,
        options: DemoOptions,
        stop: threading.Event,
        dashboard: DashboardFactory | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.stop = stop
        self.dashboard = dashboard

    def run(self) -> DemoResult:
        options = self.options
        with _workdir(options.keep_data) as workdir:
            pg_dir = workdir / "postgres" if options.keep_data else None
            with running_services(self.settings, pg_dir) as services:
                result = DemoResult(services, kept_data=workdir if options.keep_data else None)
                load_demo_watchlist(services.database_url)
                self._run_consumer(services, workdir, result)
                database = DemoDatabase(services.database_url)
                result.figures.update(_database_figures(database))
                result.figures["watchlist"] = watchlist_figures(
                    database.entity_counts(),
                    database.alerts(),
                    _spike_start(result.simulator, options.duration_s),
                )
                result.chart = write_chart(
                    options.chart_path,
                    database.counts_every(FINE_BUCKET_S),
                    FINE_BUCKET_S,
                    database.minute_counts(),
                    database.alerts(),
                )
        result.interrupted = self.stop.is_set()
        return result

    def _producer_config(self, services: Services) -> dict[str, Any]:
        return self.settings.producer_kafka_config(
            **{"bootstrap.servers": services.bootstrap_servers}
        )

    def _run_consumer(self, services: Services, workdir: Path, result: DemoResult) -> None:
        """Start the consumer, drive the stream through it, and stop it whatever happens."""
        ensure_topic(self._producer_config(services), self.settings.topic, self.options.partitions)
        # The labels topic too: a consumer sees a topic created after it subscribed only at its
        # next metadata refresh (minutes), and the late labels would wait until then.
        if self.settings.labels_topic:  # SENTIMENT_LABELS_TOPIC=none: no late labels
            ensure_topic(
                self._producer_config(services), self.settings.labels_topic, self.options.partitions
            )
        consumer = ConsumerProcess(self.settings, services, workdir / "consumer.log")
        result.consumer_pid = consumer.pid
        try:
            consumer.wait_ready(self.options.ready_timeout_s, self.stop)
            if not self.stop.is_set():
                self._stream(services, consumer, result, workdir)
        finally:
            result.consumer_exit_code = consumer.stop(self.settings.shutdown_timeout_s + 5)
            if result.consumer_exit_code != 0:
                log.warning(
                    "consumer exited badly",
                    code=result.consumer_exit_code,
                    log_tail=consumer.log_tail(),
                )

    def _stream(
        self, services: Services, consumer: ConsumerProcess, result: DemoResult, workdir: Path
    ) -> None:
        options, stop = self.options, self.stop
        promotion = (
            DemoPromotion(
                self.settings.model, self.settings.models_dir, services.database_url, workdir
            )
            if options.promote_at_s is not None
            else None
        )
        simulator = Simulator(
            SimulatorConfig(
                topic=self.settings.topic,
                tweets=options.tweets,
                rate_per_s=options.rate_per_s,
                duration_s=options.duration_s,
                loop=True,
                seed=options.seed,
                spike=demo_spike(options.duration_s),
                poison_rate=options.poison_rate,
                partitions=options.partitions,
                # A fifth of the posts get their gold label 5 s later on the labels topic: the
                # dashboard's online quality (docs/monitoring.md).
                labels_topic=self.settings.labels_topic,
                feedback_rate=DEMO_FEEDBACK_RATE if self.settings.labels_topic else 0.0,
                feedback_delay_s=DEMO_FEEDBACK_DELAY_S,
            ),
            self._producer_config(services),
        )
        monitor = Monitor(consumer.metrics_url, DemoDatabase(services.database_url), simulator)
        failures: list[Exception] = []

        def send() -> None:
            try:
                simulator.run(stop)
            except Exception as error:  # handed to the main thread, which reports it
                failures.append(error)

        sender = threading.Thread(target=send, name="simulator")
        view = self.dashboard(monitor, consumer, services) if self.dashboard else nullcontext()
        with view:
            sender.start()
            started = time.monotonic()
            try:
                while sender.is_alive():
                    if (
                        promotion is not None
                        and promotion.version is None
                        and time.monotonic() - started >= (options.promote_at_s or 0)
                    ):
                        promotion.promote()
                    monitor.poll()
                    _check_alive(consumer)
                    sender.join(POLL_S)
            finally:
                if sender.is_alive():  # the consumer died: stop sending, as on Ctrl-C
                    stop.set()
                    sender.join()
            if failures:
                raise failures[0]
            # Let the consumer finish what was sent: stored or dead-lettered.
            deadline = time.monotonic() + options.drain_timeout_s
            while not stop.is_set() and time.monotonic() < deadline:
                monitor.poll()
                if monitor.processed() >= simulator.summary.acknowledged:
                    break
                _check_alive(consumer)
                time.sleep(POLL_S)
            monitor.poll()  # the last scrape, before the consumer stops
        result.simulator = simulator.summary
        result.figures.update(_metric_figures(monitor, simulator.summary))
        if promotion is not None:
            result.figures.update(promotion.figures())


def _spike_start(sent: SimulationSummary | None, duration_s: float) -> datetime | None:
    """When the simulator's spike began (its offsets count from the run's start), if it did."""
    if sent is None or sent.started_at is None:
        return None
    at_s = demo_spike(duration_s).at_s
    return (
        datetime.fromisoformat(sent.started_at) + timedelta(seconds=at_s)
        if sent.elapsed_s >= at_s
        else None
    )


def _check_alive(consumer: ConsumerProcess) -> None:
    if not consumer.alive():
        raise RuntimeError(f"the consumer stopped unexpectedly:\n{consumer.log_tail()}")


def _metric_figures(monitor: Monitor, sent: SimulationSummary) -> dict[str, Any]:
    latest = monitor.latest
    if latest is None:
        return {}
    p50, p99 = monitor.total_latency(0.5), monitor.total_latency(0.99)
    return {
        "scored": int(latest.scored),
        "dead_letters": int(latest.dead_letters),
        "labels_scored": {k: int(v) for k, v in latest.predictions.items()},
        "alerts_fired_metric": int(latest.alerts),
        "latency_seconds": {
            "p50": None if p50 is None else round(p50, 4),
            "p99": None if p99 is None else round(p99, 4),
        },
        "sent_rate_per_s": sent.achieved_rate_per_s,
        "feedback_labels_sent": sent.feedback_labels,
        # Model monitoring, per window (docs/monitoring.md).
        "online_quality": {
            window: {"macro_recall": round(recall, 4), "labelled": int(labelled)}
            for window, (recall, labelled) in latest.quality.items()
        },
        "drift_max_psi": {
            window: {"psi": round(psi, 4), "feature": feature}
            for window, (psi, feature) in latest.drift.items()
        },
    }


def _database_figures(database: DemoDatabase) -> dict[str, Any]:
    rows = database.scored_rows()
    span = database.scoring_span_s()
    alerts = database.alerts()
    return {
        "rows_in_postgres": rows,
        "throughput_posts_per_s": round(rows / span, 2) if span > 0 else None,
        "alerts": [alert.to_dict() for alert in alerts],
    }
