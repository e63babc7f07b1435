"""Names every part of the system agrees on: labels, message headers and dead-letter reasons.

The JSON message schema itself lives in ``consumer.messages``; this module holds only the
constants that the producer, the consumer, the API and the dashboards share.
"""

from enum import StrEnum
from typing import Final

# Output order of every model this project exports or trains (metadata.json repeats it).
LABELS: Final = ("negative", "neutral", "positive")

# The longest text we accept, in characters, on the stream and on POST /predict.
MAX_TEXT_CHARS: Final = 10_000

# Whitespace spelled out as exactly what ``str.strip`` and ``str.split`` treat as such, for
# patterns the OpenAPI document publishes: ``\s`` would not do, since JSON Schema validators and
# clients read it the ECMAScript way, where U+001C-U+001F are not whitespace.
WHITESPACE: Final = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
# At least one character that is not whitespace (in Python and in JSON Schema alike).
NOT_BLANK_PATTERN: Final = f"[^{WHITESPACE}]"

# Header the simulator puts the TweetEval gold label in, so online accuracy can be measured.
GOLD_LABEL_HEADER: Final = "x-gold-label"


class DlqHeader(StrEnum):
    """Headers on every dead-lettered message: why it failed and where it came from."""

    REASON = "x-dlq-reason"
    ERROR = "x-dlq-error"
    SOURCE_TOPIC = "x-dlq-source-topic"
    SOURCE_PARTITION = "x-dlq-source-partition"
    SOURCE_OFFSET = "x-dlq-source-offset"
    SOURCE_TIMESTAMP_MS = "x-dlq-source-timestamp-ms"
    CONSUMER_GROUP = "x-dlq-consumer-group"
    # Only on a dead letter whose original value was too large for the dead-letter topic: the
    # value is cut to its first bytes and this header holds the original length.
    VALUE_TRUNCATED_FROM = "x-dlq-value-truncated-from"


class DeadLetterReason(StrEnum):
    """Why a message was dead-lettered; also the ``reason`` label of the dead-letter counter."""

    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    INVALID_TIMESTAMP = "invalid_timestamp"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_LABEL = "unknown_label"  # a gold label that is none of LABELS
    STORAGE_REJECTED = "storage_rejected"
