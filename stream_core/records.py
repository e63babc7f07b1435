"""What the pipeline carries: a consumed Kafka record, a validated post, a dead letter, and the
row each post becomes (:class:`ScoredPost`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream_core.contract import GOLD_LABEL_HEADER, DeadLetterReason

TopicPartition = tuple[str, int]
# ScoredPost.status, and the reason a post is unscored.
SCORED = "scored"
UNSCORED = "unscored"
UNSUPPORTED_LANGUAGE = "unsupported_language"  # no model reads the post's language


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A Kafka message as consumed: its coordinates and original key, value and headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None  # the Kafka timestamp (create or log-append time)

    @classmethod
    def from_message(cls, message: Any) -> SourceRecord:
        """From a confluent_kafka.Message (not typed by the library)."""
        kind, timestamp_ms = message.timestamp()
        return cls(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
            value=message.value(),
            headers=tuple((k, v if v is not None else b"") for k, v in message.headers() or ()),
            timestamp_ms=timestamp_ms if kind != 0 and timestamp_ms >= 0 else None,
        )

    @property
    def topic_partition(self) -> TopicPartition:
        return (self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name`` (Kafka allows repeats), or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found


@dataclass(frozen=True, slots=True)
class Post:
    """A message value that passed validation (``consumer.messages.parse_post``)."""

    post_id: str
    text: str
    author: str | None = None
    lang: str | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] | None = None  # fields outside the contract, kept


@dataclass(frozen=True, slots=True, kw_only=True)
class GoldLabel:
    """A late gold label from the labels topic: what a person says post ``post_id`` is.

    ``received_at`` is the label message's Kafka timestamp: when the label reached the stream,
    a pure function of the message, so a replay stores the very same row.
    """

    post_id: str
    label: str
    labelled_at: datetime | None = None  # when it was labelled, if the message says
    received_at: datetime
    topic: str
    partition: int
    offset: int

    @classmethod
    def of(
        cls, record: SourceRecord, post_id: str, label: str, labelled_at: datetime | None
    ) -> GoldLabel:
        return cls(
            post_id=post_id,
            label=label,
            labelled_at=labelled_at,
            received_at=_from_epoch_ms(record.timestamp_ms) or datetime.now(UTC),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that goes to the dead-letter topic, and why."""

    record: SourceRecord
    reason: DeadLetterReason
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredPost:
    """One post on its way to ``scored_posts``: the message, its Kafka coordinates, and what the
    per-batch steps add (``stream_core.batch``).

    Built when its batch is cut, unscored (``label`` None); the score step fills ``label``,
    ``probabilities`` and ``model_version``. A step that adds something per post gets a field
    here, with a default (ARCHITECTURE.md, "Adding a per-batch step"); a field that is stored
    also gets a column in ``storage.posts`` and a migration.
    """

    post_id: str
    text: str
    author: str | None = None
    lang: str | None = None
    created_at: datetime | None = None
    topic: str
    partition: int
    offset: int
    kafka_timestamp: datetime | None = None
    gold_label: str | None = None  # from the simulator's header, or from the labels topic
    gold_label_at: datetime | None = None  # when the gold label reached the stream
    extra: dict[str, Any] | None = None  # message fields outside the contract, kept
    # Filled by the score step.
    label: str | None = None
    probabilities: tuple[float, ...] = ()  # in the model's label order
    model_version: str | None = None  # the model that scored this very post
    # Filled by the watchlist's match step: names of the watched entities the post names.
    entities: tuple[str, ...] = ()
    # Filled by the language step (``language.step``): where ``lang`` came from (message or
    # detected) and how sure the identification was.
    lang_source: str | None = None
    lang_confidence: float | None = None
    # Filled by the score step: scored, or unscored with the reason (no model reads its
    # language: ``unsupported_language``), then ``label`` stays None.
    status: str | None = None
    unscored_reason: str | None = None

    @classmethod
    def unscored(cls, record: SourceRecord, post: Post) -> ScoredPost:
        """The row of a validated post, before any step ran."""
        gold = record.header(GOLD_LABEL_HEADER)
        kafka_timestamp = _from_epoch_ms(record.timestamp_ms)
        return cls(
            post_id=post.post_id,
            text=post.text,
            author=post.author,
            lang=post.lang,
            created_at=post.created_at,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            kafka_timestamp=kafka_timestamp,
            gold_label=gold.decode("utf-8", "replace") if gold is not None else None,
            # A label in the header arrives with its post.
            gold_label_at=(kafka_timestamp or datetime.now(UTC)) if gold is not None else None,
            extra=post.extra,
        )


def _from_epoch_ms(timestamp_ms: int | None) -> datetime | None:
    return None if timestamp_ms is None else datetime.fromtimestamp(timestamp_ms / 1000, UTC)
