"""Everything the consumer process runs beside the pipeline: the HTTP API and batch observers.

The `consume` command calls :func:`start` once the scorer is loaded and before the pipeline
runs, hands ``runtime.observers`` to the pipeline, and calls ``runtime.close()`` on exit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import click
import structlog
from confluent_kafka import Producer

from observability.alert_sink import AlertSink
from observability.api import Scorer, create_app
from observability.http_server import HttpServer
from observability.label_stats import OnlineLabelStats
from observability.metrics import PipelineMetrics
from observability.settings import ObservabilitySettings
from observability.spike import SpikeDetector
from observability.spike_observer import SpikeObserver
from storage.rollups import PostgresWindowCounts
from stream_core.events import BatchObserver, PipelineState
from stream_core.kafka import RELIABLE_PRODUCER

log = structlog.get_logger(__name__)

TICK_S = 1.0  # how often the detector re-judges its window when no batch arrives


@dataclass
class ObservabilityRuntime:
    """The running HTTP server and observers; ``close`` stops them."""

    observers: Sequence[BatchObserver] = field(default_factory=tuple)
    label_stats: OnlineLabelStats | None = None
    spike_observer: SpikeObserver | None = None
    http: HttpServer | None = None
    alert_sink: AlertSink | None = None
    _stop_ticks: threading.Event = field(default_factory=threading.Event, init=False)
    _ticker: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.spike_observer is not None:
            self._ticker = threading.Thread(
                target=self._tick_forever, name="spike-tick", daemon=True
            )
            self._ticker.start()

    @property
    def http_port(self) -> int | None:
        """The port the API listens on (None when ``http_port`` is 0)."""
        return self.http.port if self.http is not None else None

    def close(self) -> None:
        """Stop the HTTP server and flush the observers."""
        self._stop_ticks.set()
        if self._ticker is not None:
            self._ticker.join(TICK_S * 2)
        if self.http is not None:
            self.http.stop()
        if self.alert_sink is not None:
            self.alert_sink.close()

    def _tick_forever(self) -> None:
        assert self.spike_observer is not None
        while not self._stop_ticks.wait(TICK_S):
            try:
                self.spike_observer.tick()
            except Exception:
                # Logged, and the next tick comes: a dead ticker would leave an alert firing
                # forever once the stream stops.
                log.exception("spike detector tick failed")


def start(
    settings: ObservabilitySettings,
    scorer: Scorer,  # model.scorer.Scorer
    metrics: PipelineMetrics,
    state: PipelineState,
    *,
    alert_producer: Producer | None = None,
) -> ObservabilityRuntime:
    """Start the HTTP API on ``settings.http_port`` and build the batch observers.

    Alerts go to the alerts topic through ``alert_producer``, or a producer made from the
    settings when ``settings.alerts_topic`` is set.
    """
    metrics.model_info.info({"version": scorer.version, "labels": ",".join(scorer.labels)})
    if settings.alerts_topic and alert_producer is None:
        alert_producer = Producer(
            settings.producer_kafka_config(**RELIABLE_PRODUCER, **{"linger.ms": 0})
        )
    sink = AlertSink(
        settings.database_url_value(),
        scorer.version,
        topic=settings.alerts_topic,
        producer=alert_producer,
    )
    spike_observer = SpikeObserver(SpikeDetector(settings.detector_config()), metrics, sink.submit)
    label_stats = OnlineLabelStats(scorer.labels)
    runtime = ObservabilityRuntime(
        observers=(label_stats, spike_observer),
        label_stats=label_stats,
        spike_observer=spike_observer,
        alert_sink=sink,
    )
    if settings.http_port:
        app = create_app(
            scorer,
            state,
            metrics,
            label_stats,
            PostgresWindowCounts(settings.database_url_value()),
            max_text_chars=settings.max_text_chars,
        )
        try:
            runtime.http = HttpServer(app, settings.http_host, settings.http_port)
        except RuntimeError as error:
            runtime.close()
            raise click.ClickException(f"{error} (is the port in use? see --http-port)") from None
        log.info("HTTP API listening", url=runtime.http.url, docs=f"{runtime.http.url}/docs")
    return runtime
