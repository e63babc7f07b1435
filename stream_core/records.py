"""What the pipeline carries: a consumed Kafka record, a validated post, a dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stream_core.contract import DeadLetterReason

TopicPartition = tuple[str, int]


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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that goes to the dead-letter topic, and why."""

    record: SourceRecord
    reason: DeadLetterReason
    error: str
