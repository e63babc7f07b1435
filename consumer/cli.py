"""`sentiment-stream consume`: the long-running consumer process."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

import click
import structlog

from stream_core.contract import LABELS
from stream_core.logs import configure_logging
from stream_core.settings import Settings, load_settings, settings_options

if TYPE_CHECKING:
    from model.scorer import Scorer

log = structlog.get_logger(__name__)

BROKER_CHECK_TIMEOUT_S = 15.0


@click.command()
@settings_options()
def consume(**kwargs: Any) -> None:
    """Consume posts from Kafka, score them and write them to PostgreSQL.

    Runs until SIGTERM or Ctrl-C, then finishes the batches in flight, commits and exits 0
    (a second signal gives up on them: they are replayed on the next start).
    """
    settings = load_settings(kwargs)
    configure_logging(settings.log_level, settings.log_format)
    from confluent_kafka import KafkaException

    from consumer.build import build_pipeline
    from consumer.pipeline import PipelineFailedError
    from observability import runtime as observability
    from observability.metrics import PipelineMetrics
    from stream_core.events import PipelineState
    from stream_core.kafka_admin import Admin

    scorer = _load_scorer(settings)
    _check_database(settings)
    try:
        Admin(settings.producer_kafka_config()).topics(BROKER_CHECK_TIMEOUT_S)
    except KafkaException as error:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {error.args[0].str()}"
        ) from None
    state = PipelineState(model_loaded=True)
    metrics = PipelineMetrics()
    runtime = observability.start(settings, scorer, metrics, state)
    try:
        pipeline = build_pipeline(
            settings,
            scorer=scorer,
            metrics=metrics,
            state=state,
            observers=runtime.observers,
            watchlist=runtime.watchlist,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: pipeline.stop())
        pipeline.run()
    except (PipelineFailedError, KafkaException) as error:
        raise click.ClickException(f"the consumer stopped: {error}") from None
    finally:
        runtime.close()


def _load_scorer(settings: Settings) -> Scorer:
    from model.scorer import ModelLoadError, Scorer

    try:
        scorer = Scorer.load(settings.model)
    except ModelLoadError as error:
        raise click.ClickException(f"cannot load the model in {settings.model}: {error}") from None
    if sorted(scorer.labels) != sorted(LABELS):
        raise click.ClickException(
            f"the model in {settings.model} predicts {', '.join(scorer.labels)}; "
            f"expected {', '.join(LABELS)}"
        )
    return scorer


def _check_database(settings: Settings) -> None:
    from storage.sink import PostgresSink, SchemaMissingError, StorageUnavailableError

    probe = PostgresSink(settings.database_url_value(), labels=LABELS)
    try:
        probe.connection()
    except (StorageUnavailableError, SchemaMissingError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        probe.close()
