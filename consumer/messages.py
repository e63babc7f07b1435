"""Message bytes -> a validated :class:`Post`, or :class:`InvalidMessageError` with a clear reason.

The schema (UTF-8 JSON object)::

    {"id": str, "text": str, "created_at": ISO-8601 str | null, "author": str | null,
     "lang": str | null, ...other fields (kept in ``extra``, or rejected)}

This runs once per message. A strict pydantic model parsing the bytes in Rust (~3.5 us for a
tweet-sized message here) beat ``json.loads`` alone (~5.6 us), let alone with hand-written type
checks (~10 us in all); its errors are mapped to our dead-letter reasons and messages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from stream_core.contract import DeadLetterReason
from stream_core.records import DeadLetter, Post, SourceRecord

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
    """A message that cannot become a post: it goes to the dead-letter topic."""

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


def parse_post(value: bytes | None, *, max_text_chars: int, reject_unknown: bool = False) -> Post:
    """Validate one message value; raise :class:`InvalidMessageError` saying what is wrong."""
    if value is None:
        raise InvalidMessageError(DeadLetterReason.INVALID_JSON, "the message has no value")
    try:
        message = _Message.model_validate_json(value)
    except ValidationError as error:
        raise _invalid_from(error.errors(include_url=False)[0], value) from None
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
    if extra and reject_unknown:
        raise InvalidMessageError(
            DeadLetterReason.UNKNOWN_FIELD,
            f"fields outside the contract: {', '.join(sorted(extra))[:200]}",
        )
    created_at = message.created_at
    if created_at is not None and created_at.tzinfo is None:
        # A timestamp without an offset is taken as UTC, the only sane guess for a stream.
        created_at = created_at.replace(tzinfo=UTC)
    return Post(
        post_id=message.id,
        text=message.text,
        author=message.author,
        lang=message.lang,
        created_at=created_at,
        extra=extra,
    )


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
