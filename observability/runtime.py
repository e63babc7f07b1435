"""Everything the consumer process runs beside the pipeline: the HTTP API, the batch observers,
the live watchlist, the fleet-wide spike detector and the model monitoring jobs (each role
runs on one elected replica).

The `consume` command calls :func:`start` once the scorer is loaded and before the pipeline
runs, hands ``runtime.observers`` and ``runtime.watchlist`` to the pipeline, and calls
``runtime.close()`` on exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import click
import psycopg
import structlog
from confluent_kafka import Producer

from monitoring.jobs import MonitoringJobs, monitoring_jobs, served_model
from monitoring.reader import MonitoringReader
from observability.alert_sink import AlertSink
from observability.api import Scorer, create_app
from observability.entity_metrics import EntityPostCounts, MetricEntities
from observability.fleet_spikes import PRUNE_EVERY_S, ROLE, FleetSpikes
from observability.http_server import HttpServer
from observability.label_stats import OnlineLabelStats
from observability.language_stats import OnlineLanguageStats
from observability.metrics import PipelineMetrics
from observability.settings import ObservabilitySettings
from registry.store import ModelRegistry
from storage import watch_entities
from storage.coordination import ChangeListener, ElectedJobs
from storage.rollups import PostgresWindowCounts
from stream_core.events import BatchObserver, PipelineState
from stream_core.kafka import RELIABLE_PRODUCER
from watchlist.live import LiveWatchlist
from watchlist.store import WatchStore

log = structlog.get_logger(__name__)


@dataclass
class ObservabilityRuntime:
    """The running HTTP server, observers and background roles; ``close`` stops them."""

    observers: Sequence[BatchObserver] = field(default_factory=tuple)
    label_stats: OnlineLabelStats | None = None
    watchlist: LiveWatchlist | None = None
    fleet_spikes: FleetSpikes | None = None
    elected: ElectedJobs | None = None
    monitoring: ElectedJobs | None = None
    listener: ChangeListener | None = None
    http: HttpServer | None = None
    alert_sink: AlertSink | None = None
    monitoring_jobs: MonitoringJobs | None = None
    monitoring_reader: MonitoringReader | None = None

    @property
    def http_port(self) -> int | None:
        """The port the API listens on (None when ``http_port`` is 0)."""
        return self.http.port if self.http is not None else None

    def serve_model(self, scorer: Scorer) -> None:
        """The model registry swapped the served version: online quality, drift and
        ``/quality``, ``/drift`` measure ``scorer`` from now on."""
        offline = scorer.metadata.metrics
        if self.monitoring_jobs is not None:
            self.monitoring_jobs.serve(
                served_model(scorer.version, tuple(scorer.labels), scorer.folder, offline)
            )
        if self.monitoring_reader is not None:
            self.monitoring_reader.serve(scorer.version, offline)
        log.info("monitoring follows the served version", version=scorer.version)

    def close(self) -> None:
        """Stop the HTTP server and the background roles, and flush the alerts."""
        if self.http is not None:
            self.http.stop()
        if self.elected is not None:
            self.elected.stop()  # hands the detector role to another replica at once
        if self.monitoring is not None:
            self.monitoring.stop()
        if self.listener is not None:
            self.listener.stop()
        if self.watchlist is not None:
            self.watchlist.close()
        if self.alert_sink is not None:
            self.alert_sink.close()


def start(
    settings: ObservabilitySettings,
    scorer: Scorer,  # model.scorer.Scorer
    metrics: PipelineMetrics,
    state: PipelineState,
    *,
    alert_producer: Producer | None = None,
) -> ObservabilityRuntime:
    """Start the HTTP API on ``settings.http_port``, the watchlist listener and the candidacy
    for the detector role, and build the batch observers.

    Alerts go to the alerts topic through ``alert_producer``, or a producer made from the
    settings when ``settings.alerts_topic`` is set.
    """
    database_url = settings.database_url_value()
    metrics.model_info.info({"version": scorer.version, "labels": ",".join(scorer.labels)})
    if settings.alerts_topic and alert_producer is None:
        alert_producer = Producer(
            settings.producer_kafka_config(**RELIABLE_PRODUCER, **{"linger.ms": 0})
        )
    sink = AlertSink(
        database_url, scorer.version, topic=settings.alerts_topic, producer=alert_producer
    )
    watchlist = LiveWatchlist(database_url)
    metric_entities = MetricEntities(metrics, settings.watch_metrics_max)
    watchlist.on_change(metric_entities.update)
    fleet_spikes = FleetSpikes(
        settings.detector_config(),
        settings.entity_detector_config(),
        metrics,
        sink.submit,
        watched=lambda: watchlist.matcher.names,
        metric_entities=metric_entities,
        history_s=settings.alert_history_s,
    )
    elected = ElectedJobs(
        database_url, ROLE, on_elected=fleet_spikes.elected, on_deposed=fleet_spikes.deposed
    )
    elected.add("spike-detection", settings.alert_tick_s, fleet_spikes.run)
    elected.add("prune-second-counts", PRUNE_EVERY_S, fleet_spikes.prune)
    offline = scorer.metadata.metrics
    served = served_model(scorer.version, tuple(scorer.labels), scorer.folder, offline)
    jobs = MonitoringJobs(settings, served, metrics.monitoring)
    monitoring = monitoring_jobs(database_url, jobs)
    listener = ChangeListener(database_url, poll_s=settings.watch_poll_s)
    listener.subscribe(watch_entities.CHANNEL, watchlist.refresh)
    label_stats = OnlineLabelStats(scorer.labels)
    language_stats = OnlineLanguageStats(metrics)
    runtime = ObservabilityRuntime(
        observers=(label_stats, EntityPostCounts(metrics, metric_entities), language_stats),
        label_stats=label_stats,
        watchlist=watchlist,
        fleet_spikes=fleet_spikes,
        elected=elected,
        monitoring=monitoring,
        listener=listener,
        alert_sink=sink,
        monitoring_jobs=jobs,
    )
    try:
        watchlist.refresh()  # the first batches are matched against the list as it is
    except psycopg.Error as error:
        log.warning("watchlist not loaded yet; retrying in the background", error=str(error))
    listener.start()
    elected.start()
    monitoring.start()
    if settings.http_port:
        runtime.monitoring_reader = MonitoringReader(
            database_url,
            scorer.version,
            settings.windows(),
            offline_metrics=offline,
            psi_threshold=settings.drift_psi_threshold,
        )
        app = create_app(
            scorer,
            state,
            metrics,
            label_stats,
            PostgresWindowCounts(database_url),
            max_text_chars=settings.max_text_chars,
            watch_store=WatchStore(database_url),
            live_matcher=lambda: watchlist.matcher,
            admin_token=settings.admin_token,
            language_stats=language_stats,
            monitoring=runtime.monitoring_reader,
            model_registry=ModelRegistry(database_url),
        )
        try:
            runtime.http = HttpServer(app, settings.http_host, settings.http_port)
        except RuntimeError as error:
            runtime.close()
            raise click.ClickException(f"{error} (is the port in use? see --http-port)") from None
        log.info("HTTP API listening", url=runtime.http.url, docs=f"{runtime.http.url}/docs")
    return runtime
