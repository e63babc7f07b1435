"""Where the pipeline is put together: the one place a feature plugs into the stream.

The poller reads the topics of :func:`record_reader`, which also says what each record becomes
(a post, a gold label or a dead letter). A batch passes through the steps of
:func:`batch_steps`, in order, then the writer stores its rows and runs the write parts of
:func:`write_parts` in the same transaction. A new per-batch feature adds its step or its part
to these lists and touches nothing else of the pipeline (ARCHITECTURE.md, "Adding a per-batch
step" and "Adding a write part").
"""

from __future__ import annotations

from collections.abc import Sequence

from consumer.dlq import DeadLetterPublisher
from consumer.messages import MessageReader
from consumer.pipeline import Pipeline
from consumer.routing import RoutingSource
from consumer.scoring import BatchScorer, ScoreStep
from consumer.settings import Settings
from consumer.source import kafka_consumer
from language.identify import Identifier
from language.step import IdentifyStep
from observability.metrics import PipelineMetrics
from storage.gold_labels import GoldLabels
from storage.language_counts import LanguageMinuteCounts
from storage.minute_counts import EntityMinuteCounts, MinuteCounts
from storage.post_entities import PostEntities
from storage.second_counts import SecondCounts
from storage.sink import PostgresSink, WritePart
from stream_core.batch import BatchStep
from stream_core.events import BatchObserver, PipelineState
from watchlist.step import MatcherSource, MatchStep


def record_reader(settings: Settings) -> MessageReader:
    """The topics the pipeline reads, and what each record becomes: posts from the posts topic,
    gold labels from the labels topic."""
    return MessageReader(
        posts_topic=settings.topic,
        labels_topic=settings.labels_topic,
        max_text_chars=settings.max_text_chars,
        reject_unknown=settings.unknown_fields == "reject",
    )


def batch_steps(
    scorer: BatchScorer,
    metrics: PipelineMetrics,
    watchlist: MatcherSource | None = None,
    *,
    identify: IdentifyStep | None = None,
    routing: RoutingSource | None = None,
) -> list[BatchStep]:
    """What every batch goes through between the poller and the writer, in order: the
    watchlist's match, the language identification, the scoring (by ``routing``: the model
    of each post's language; else ``scorer`` for every post)."""
    matching: list[BatchStep] = [] if watchlist is None else [MatchStep(watchlist)]
    identifying: list[BatchStep] = [] if identify is None else [identify]
    return [*matching, *identifying, ScoreStep(scorer, metrics, routing)]


def identify_step(settings: Settings) -> IdentifyStep:
    """Language identification as ``settings`` say (``language.settings``)."""
    return IdentifyStep(Identifier(), settings.language_detection, settings.language_min_confidence)


def write_parts() -> list[WritePart]:
    """What every batch writes beside its rows, in its transaction, in order."""
    return [
        MinuteCounts(),
        GoldLabels(),
        PostEntities(),
        EntityMinuteCounts(),
        SecondCounts(),
        LanguageMinuteCounts(),
    ]


def build_pipeline(
    settings: Settings,
    *,
    scorer: BatchScorer,
    metrics: PipelineMetrics,
    state: PipelineState,
    observers: Sequence[BatchObserver] = (),
    steps: Sequence[BatchStep] | None = None,
    parts: Sequence[WritePart] | None = None,
    watchlist: MatcherSource | None = None,
    routing: RoutingSource | None = None,
) -> Pipeline:
    """A pipeline on the broker, PostgreSQL and dead-letter topic that ``settings`` name,
    matching posts against ``watchlist`` (the process's live one) when given, identifying
    each post's language and scoring it with the model ``routing`` gives for it (without
    ``routing``, ``scorer`` scores every post).

    ``steps`` and ``parts`` replace :func:`batch_steps` and :func:`write_parts` (benchmarks
    and tests measure or try a step this way).
    """
    return Pipeline(
        settings,
        consumer=kafka_consumer(settings),
        reader=record_reader(settings),
        steps=(
            batch_steps(
                scorer, metrics, watchlist, identify=identify_step(settings), routing=routing
            )
            if steps is None
            else steps
        ),
        sink=PostgresSink(
            settings.database_url_value(),
            labels=scorer.labels,
            parts=write_parts() if parts is None else parts,
        ),
        dead_letters=DeadLetterPublisher(
            settings.producer_kafka_config(), settings.dlq_topic, settings.group_id, metrics
        ),
        metrics=metrics,
        state=state,
        model_version=scorer.version,
        observers=observers,
    )
