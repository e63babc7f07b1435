"""Message bytes -> a validated :class:`Post` or :class:`GoldLabel`, or
:class:`InvalidMessageError` with a clear reason.

The schemas (UTF-8 JSON objects). A post, on the posts topic::

    {"id": str, "text": str, "created_at": ISO-8601 str | null, "author": str | null,
     "lang": str | null, ...other fields (kept in ``extra``, or rejected)}

A gold label, on the labels topic (keyed by post id, so that a post's labels keep their order)::

    {"post_id": str, "label": "negative" | "neutral" | "positive",
     "labelled_at": ISO-8601 str | null, ...other fields (ignored, or rejected)}

:class:`MessageReader` routes each record to its schema by topic.

This runs once per message. A strict pydantic model parsing the bytes in Rust (~3.5 us for a
tweet-sized message here) beat ``json.loads`` alone (~5.6 us), let alone with hand-written type
checks (~10 us in all); its errors are mapped to our dead-letter reasons and messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from stream_core.batch import Outcome
from stream_core.contract import LABELS, MAX_TEXT_CHARS, DeadLetterReason
from stream_core.records import DeadLetter, GoldLabel, Post, SourceRecord

_REASON_BY_ERROR_TYPE = {
    "model_type": DeadLetterReason.NOT_AN_OBJECT,
    "model_attributes_type": DeadLetterReason.NOT_AN_OBJECT,
    "missing": DeadLetterReason.MISSING_FIELD,
    "string_type": DeadLetterReason.WRONG_TYPE,
    "datetime_type": DeadLetterReason.WRONG_TYPE,
    "datetime_parsing": DeadLetterReason.INVALID_TIMESTAMP,
    "datetime_object_invalid": DeadLetterReason.INVALID_TIMESTAMP,
}


class InvalidMessageError(ValueError):
    """A message that cannot become a post or a label: it goes to the dead-letter topic."""

    def __init__(self, reason: DeadLetterReason, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


class _Message(BaseModel):
    # strict: no coercion (an id of 123 is a wrong type, not "123"); extra fields kept.
    model_config = ConfigDict(extra="allow", strict=True)

    id: str
    text: str
    created_at: datetime | None = None
    author: str | None = None
    lang: str | None = None


M = TypeVar("M", bound=BaseModel)


class _LabelMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    post_id: str
    label: str
    labelled_at: datetime | None = None


def _invalid_from(error: ErrorDetails, value: bytes) -> InvalidMessageError:
    kind = error["type"]
    if kind == "json_invalid":
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as bad:
            return InvalidMessageError(
                DeadLetterReason.INVALID_UTF8,
                f"the value is not UTF-8: byte 0x{value[bad.start]:02x} at position {bad.start}",
            )
        return InvalidMessageError(
            DeadLetterReason.INVALID_JSON, f"the value is not JSON: {error['msg']}"
        )
    field = ".".join(str(part) for part in error["loc"])
    reason = _REASON_BY_ERROR_TYPE.get(kind, DeadLetterReason.WRONG_TYPE)
    if reason is DeadLetterReason.NOT_AN_OBJECT:
        return InvalidMessageError(reason, "the value must be a JSON object")
    if reason is DeadLetterReason.MISSING_FIELD:
        return InvalidMessageError(reason, f"the '{field}' field is missing")
    return InvalidMessageError(reason, f"'{field}': {error['msg']}")


def _parsed(schema: type[M], value: bytes | None) -> M:
    if value is None:
        raise InvalidMessageError(DeadLetterReason.INVALID_JSON, "the message has no value")
    try:
        return schema.model_validate_json(value)
    except ValidationError as error:
        raise _invalid_from(error.errors(include_url=False)[0], value) from None


def _no_unknown_fields(extra: dict[str, Any] | None) -> None:
    if extra:
        raise InvalidMessageError(
            DeadLetterReason.UNKNOWN_FIELD,
            f"fields outside the contract: {', '.join(sorted(extra))[:200]}",
        )


def _utc(moment: datetime | None) -> datetime | None:
    # A timestamp without an offset is taken as UTC, the only sane guess for a stream.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def parse_post(value: bytes | None, *, max_text_chars: int, reject_unknown: bool = False) -> Post:
    """Validate one message value; raise :class:`InvalidMessageError` saying what is wrong."""
    message = _parsed(_Message, value)
    if not message.id:
        raise InvalidMessageError(DeadLetterReason.MISSING_FIELD, "the 'id' field is empty")
    if not message.text.strip():
        raise InvalidMessageError(DeadLetterReason.EMPTY_TEXT, "'text' is empty or only whitespace")
    if len(message.text) > max_text_chars:
        raise InvalidMessageError(
            DeadLetterReason.TEXT_TOO_LONG,
            f"'text' has {len(message.text)} characters, more than the limit of {max_text_chars}",
        )
    extra: dict[str, Any] | None = message.model_extra or None
    if reject_unknown:
        _no_unknown_fields(extra)
    return Post(
        post_id=message.id,
        text=message.text,
        author=message.author,
        lang=message.lang,
        created_at=_utc(message.created_at),
        extra=extra,
    )


def parse_label(record: SourceRecord, *, reject_unknown: bool = False) -> GoldLabel:
    """Validate one labels-topic record; raise :class:`InvalidMessageError` saying what is wrong."""
    message = _parsed(_LabelMessage, record.value)
    if not message.post_id:
        raise InvalidMessageError(DeadLetterReason.MISSING_FIELD, "the 'post_id' field is empty")
    if "\x00" in message.post_id:
        # PostgreSQL text cannot hold it: refused here rather than failing the transaction.
        raise InvalidMessageError(DeadLetterReason.WRONG_TYPE, "'post_id' holds a NUL character")
    if message.label not in LABELS:
        raise InvalidMessageError(
            DeadLetterReason.UNKNOWN_LABEL,
            f"'label' is {message.label[:50]!r}; expected one of {', '.join(LABELS)}",
        )
    if reject_unknown:
        _no_unknown_fields(message.model_extra)
    return GoldLabel.of(record, message.post_id, message.label, _utc(message.labelled_at))


def validated(
    record: SourceRecord, *, max_text_chars: int, reject_unknown: bool = False
) -> Post | DeadLetter:
    """The record's post, or the dead letter that says why it is none."""
    try:
        return parse_post(
            record.value, max_text_chars=max_text_chars, reject_unknown=reject_unknown
        )
    except InvalidMessageError as invalid:
        return DeadLetter(record, invalid.reason, invalid.error)


@dataclass(frozen=True)
class MessageReader:
    """The consumer's :class:`~stream_core.batch.RecordReader`: posts from ``posts_topic``,
    gold labels from ``labels_topic`` (none when it is empty)."""

    posts_topic: str
    labels_topic: str = ""
    max_text_chars: int = MAX_TEXT_CHARS
    reject_unknown: bool = False

    @property
    def topics(self) -> Sequence[str]:
        return (self.posts_topic, self.labels_topic) if self.labels_topic else (self.posts_topic,)

    def read(self, record: SourceRecord) -> Outcome:
        if not self.labels_topic or record.topic != self.labels_topic:
            return validated(
                record, max_text_chars=self.max_text_chars, reject_unknown=self.reject_unknown
            )
        try:
            return parse_label(record, reject_unknown=self.reject_unknown)
        except InvalidMessageError as invalid:
            return DeadLetter(record, invalid.reason, invalid.error)
