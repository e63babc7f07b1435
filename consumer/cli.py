"""`sentiment-stream consume`: the long-running consumer process."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import click
import structlog

from consumer.settings import Settings
from stream_core.cli_options import load_settings, settings_options
from stream_core.contract import LABELS
from stream_core.logs import configure_logging
from stream_core.shutdown import stop_on_signals
from stream_core.startup import StoppedWhileWaitingError, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from consumer.routing import Routes, RoutingSource
    from consumer.scoring import BatchScorer
    from model.scorer import Scorer
    from observability.metrics import PipelineMetrics
    from registry.live import LiveScorer
    from storage.coordination import ChangeListener, ElectedJobs
    from stream_core.events import PipelineState

log = structlog.get_logger(__name__)

BROKER_CHECK_TIMEOUT_S = 15.0


@click.command()
@settings_options(Settings)
def consume(**kwargs: Any) -> None:
    """Consume posts from Kafka, score them and write them to PostgreSQL.

    At start-up, waits up to --startup-timeout-s for PostgreSQL and the broker to answer (the
    HTTP API already serves /health, and /ready says what is missing). Runs until SIGTERM or
    Ctrl-C, then finishes the batches in flight, commits and exits 0 (a second signal gives up
    on them: they are replayed on the next start).
    """
    settings = load_settings(Settings, kwargs)
    configure_logging(settings.log_level, settings.log_format)
    from confluent_kafka import KafkaException

    from consumer.build import build_pipeline
    from consumer.pipeline import PipelineFailedError
    from consumer.routing import FollowingRoutes
    from consumer.shadow import ShadowScoring
    from observability import runtime as observability
    from observability.metrics import PipelineMetrics
    from storage.maintenance import maintenance_jobs
    from stream_core.events import PipelineState

    state = PipelineState(model_loaded=True)
    metrics = PipelineMetrics()
    local = _load_scorer(settings)
    routes = _load_routes(settings, local)
    if "batch_size" not in settings.model_fields_set:
        settings.batch_size = _batch_size_for_the_model(local, settings)
    live = _live_scorer(settings, local, metrics) if settings.model_registry else None
    scorer = live or local
    runtime = observability.start(settings, scorer, metrics, state)
    # With the registry, the default route follows its active version, and monitoring with it.
    routing: RoutingSource = (
        routes if live is None else FollowingRoutes(live, routes, runtime.serve_model)
    )
    maintenance = listener = shadow = judge = None
    try:
        try:
            _wait_for_services(settings, state)
        except StoppedWhileWaitingError as stopped:
            log.info("stopped before consuming", reason=str(stopped))
            return
        observers = list(runtime.observers)
        if live is not None:
            listener = _follow_registry(settings, live, local)
            shadow = ShadowScoring(
                live.shadow,
                settings.database_url_value(),
                metrics,
                active=lambda: live.version,
            )
            shadow.start()
            observers.append(shadow)
            if settings.auto_rollback:
                judge = _auto_rollback(settings, live, metrics)
        pipeline = build_pipeline(
            settings,
            scorer=scorer,
            metrics=metrics,
            state=state,
            observers=observers,
            watchlist=runtime.watchlist,
            routing=routing,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: pipeline.stop())
        maintenance = maintenance_jobs(settings)
        maintenance.start()
        pipeline.run()
    except (PipelineFailedError, KafkaException) as error:
        raise click.ClickException(f"the consumer stopped: {error}") from None
    finally:
        if maintenance is not None:
            maintenance.stop()
        if listener is not None:
            listener.stop()
        if shadow is not None:
            shadow.close()
        if judge is not None:
            judge.stop()
        runtime.close()


def _load_scorer(settings: Settings) -> Scorer:
    from model.catalogue import resolve
    from model.scorer import ModelLoadError, Scorer

    try:
        name, folder = resolve(settings.model, settings.models_dir)
        scorer = Scorer.load(
            folder,
            name=name,
            device=settings.model_device,
            parallelism=settings.model_parallelism,
        )
    except ModelLoadError as error:
        raise click.ClickException(f"cannot load the model {settings.model}: {error}") from None
    if sorted(scorer.labels) != sorted(LABELS):
        raise click.ClickException(
            f"the model in {settings.model} predicts {', '.join(scorer.labels)}; "
            f"expected {', '.join(LABELS)}"
        )
    return scorer


def _load_routes(settings: Settings, primary: Scorer) -> Routes:
    """The model of each language (``consumer.routing``): a clear error when one cannot be
    loaded or does not read the language it is configured for."""
    from consumer.routing import RoutingError, load_routes
    from model.catalogue import resolve
    from model.scorer import ModelLoadError, Scorer

    def load(folder: Path) -> Scorer:
        name, resolved = resolve(folder, settings.models_dir)
        return Scorer.load(resolved, name=name, parallelism=settings.model_parallelism)

    try:
        return load_routes(settings, primary, load)
    except (ModelLoadError, RoutingError) as error:
        raise click.ClickException(f"cannot route languages: {error}") from None


def _batch_size_for_the_model(scorer: BatchScorer, settings: Settings) -> int:
    """The default batch size, smaller where the model is too slow to score a full batch in a
    quarter of the shutdown drain (timed on 64 bundled tweets)."""
    import time

    from consumer.batching import batch_size_for
    from model.data import SAMPLE_DIR, read_split

    texts = [tweet.text for tweet in read_split(SAMPLE_DIR, "val")[:64]]
    scorer.score(texts[:8])  # warm-up: ONNX Runtime allocates on its first runs
    started = time.perf_counter()
    scorer.score(texts)
    posts_per_s = len(texts) / (time.perf_counter() - started)
    chosen = batch_size_for(posts_per_s, settings.shutdown_timeout_s, settings.batch_size)
    log.info(
        "batch size chosen for the model",
        batch_size=chosen,
        posts_per_s=round(posts_per_s, 1),
        shutdown_timeout_s=settings.shutdown_timeout_s,
    )
    return chosen


def _live_scorer(settings: Settings, local: Scorer, metrics: PipelineMetrics) -> LiveScorer:
    """The scorer that follows the registry's active version (``local`` until it is read)."""
    from model.scorer import Scorer
    from registry.live import LiveScorer
    from registry.store import ModelRegistry

    def on_swap(role: str, version: str, error: str | None) -> None:
        metrics.model_swaps.labels(role=role, outcome="failed" if error else "loaded").inc()
        if error is None and role == "active":
            metrics.model_info.info({"version": version, "labels": ",".join(local.labels)})

    return LiveScorer(
        ModelRegistry(settings.database_url_value()),
        local,
        cache_dir=settings.model_cache_dir,
        load=lambda folder: Scorer.load(
            folder, device=settings.model_device, parallelism=settings.model_parallelism
        ),
        on_swap=on_swap,
    )


def _auto_rollback(settings: Settings, live: LiveScorer, metrics: PipelineMetrics) -> ElectedJobs:
    """Stand for the fleet's automated-rollback judge (registry/auto_rollback.py)."""
    from registry.auto_rollback import ROLE, AutoRollback, RollbackPolicy
    from storage.coordination import ElectedJobs

    policy = RollbackPolicy(settings.auto_rollback_margin, settings.auto_rollback_min_labelled)
    job = AutoRollback(
        live.registry,
        policy,
        on_rollback=lambda verdict: metrics.model_rollbacks.labels(
            model_version=verdict.active
        ).inc(),
    )
    elected = ElectedJobs(settings.database_url_value(), ROLE)
    elected.add("auto-rollback", settings.auto_rollback_check_s, job.run)
    elected.start()
    return elected


def _follow_registry(settings: Settings, live: LiveScorer, local: Scorer) -> ChangeListener:
    """Serve the registry's active version from the first batch (the --model folder becomes
    it on an empty registry), and follow its changes from now on."""
    import psycopg

    from registry.store import RegistryError
    from storage.coordination import ChangeListener
    from storage.model_registry import CHANNEL
    from storage.urls import redacted

    url = settings.database_url_value()
    try:
        if local.folder is not None and live.registry.adopt(local.folder):
            log.info("registry was empty: the --model folder is its active version")
        live.refresh()
    except psycopg.errors.UndefinedTable:
        raise click.ClickException(
            f"no model registry in {redacted(url)}: run `sentiment-stream db upgrade` first"
            " (or --model-registry false)"
        ) from None
    except RegistryError as error:
        raise click.ClickException(f"cannot register the --model folder: {error}") from None
    live.wait_loaded(settings.startup_timeout_s or None)
    log.info("serving the registry's active version", version=live.version)
    listener = ChangeListener(url, poll_s=settings.model_poll_s)
    listener.subscribe(CHANNEL, live.refresh_quietly)
    listener.start()
    return listener


def _wait_for_services(settings: Settings, state: PipelineState) -> None:
    """PostgreSQL (with the schema), then the broker, each waited for up to the start-up
    timeout; a clear one-line error when one stays away or refuses us for good."""
    from confluent_kafka import KafkaException

    from storage.refusals import refused_for_good
    from storage.sink import PostgresSink, SchemaMissingError, StorageUnavailableError
    from stream_core.kafka import Admin, worth_waiting_for

    timeout_s = settings.startup_timeout_s
    gave_up = f"(gave up after {timeout_s:g} s; see --startup-timeout-s)"
    probe = PostgresSink(settings.database_url_value(), labels=LABELS)
    with stop_on_signals(threading.Event()) as stop:
        try:
            wait_for(
                "PostgreSQL",
                probe.connection,
                timeout_s=timeout_s,
                worth_waiting=lambda e: (
                    isinstance(e, StorageUnavailableError) and not refused_for_good(e)
                ),
                stop=stop,
            )
        except StorageUnavailableError as error:
            suffix = f" {gave_up}" if timeout_s and not refused_for_good(error) else ""
            raise click.ClickException(f"{error}{suffix}") from None
        except SchemaMissingError as error:
            raise click.ClickException(str(error)) from None
        finally:
            probe.close()
        state.database_ok = True
        try:
            topics = wait_for(
                "the Kafka broker",
                # A fresh client each time: its error list must be this attempt's own.
                lambda: Admin(settings.producer_kafka_config()).topics(BROKER_CHECK_TIMEOUT_S),
                timeout_s=timeout_s,
                worth_waiting=worth_waiting_for,
                stop=stop,
            )
        except KafkaException as error:
            suffix = f" {gave_up}" if timeout_s and worth_waiting_for(error) else ""
            raise click.ClickException(
                f"cannot reach Kafka at {settings.bootstrap_servers}: {error.args[0].str()}{suffix}"
            ) from None
    if settings.labels_topic and settings.labels_topic not in topics:
        log.warning(
            "the labels topic does not exist yet: gold labels are read once it is created "
            "(SENTIMENT_LABELS_TOPIC=none turns them off)",
            labels_topic=settings.labels_topic,
        )
