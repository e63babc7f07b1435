"""Malformed messages, one kind at a time, for robustness scenarios (``--poison-rate``).

Each kind maps to the dead-letter reason the consumer should give it, so tests can check
that every poison message the simulator sent was dead-lettered for the right reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Final

from stream_core.contract import MAX_TEXT_CHARS, DeadLetterReason


class PoisonKind(StrEnum):
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_TEXT = "missing_text"
    WRONG_TYPE = "wrong_type"
    EMPTY_TEXT = "empty_text"
    OVERSIZED_TEXT = "oversized_text"
    BAD_UTF8 = "bad_utf8"
    BAD_TIMESTAMP = "bad_timestamp"


EXPECTED_REASON: Final[dict[PoisonKind, DeadLetterReason]] = {
    PoisonKind.BAD_JSON: DeadLetterReason.INVALID_JSON,
    PoisonKind.NOT_AN_OBJECT: DeadLetterReason.NOT_AN_OBJECT,
    PoisonKind.MISSING_TEXT: DeadLetterReason.MISSING_FIELD,
    PoisonKind.WRONG_TYPE: DeadLetterReason.WRONG_TYPE,
    PoisonKind.EMPTY_TEXT: DeadLetterReason.EMPTY_TEXT,
    PoisonKind.OVERSIZED_TEXT: DeadLetterReason.TEXT_TOO_LONG,
    PoisonKind.BAD_UTF8: DeadLetterReason.INVALID_UTF8,
    PoisonKind.BAD_TIMESTAMP: DeadLetterReason.INVALID_TIMESTAMP,
}


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _oversized(post: dict[str, str]) -> bytes:
    filler = (post["text"] + " ") * (MAX_TEXT_CHARS // max(len(post["text"]), 1) + 2)
    return _json({**post, "text": filler[: MAX_TEXT_CHARS + 500]})


def _bad_utf8(post: dict[str, str]) -> bytes:
    # Valid JSON around bytes that are not UTF-8 (Latin-1 e-acute, a lone continuation byte, 0xff).
    return _json({**post, "text": "@@"}).replace(b"@@", b"caf\xe9 \x80\xff")


_BUILDERS: Final[dict[PoisonKind, Callable[[dict[str, str]], bytes]]] = {
    PoisonKind.BAD_JSON: lambda post: _json(post)[:-1] + b',"text":',  # a truncated object
    PoisonKind.NOT_AN_OBJECT: lambda post: _json([post["id"], post["text"]]),
    PoisonKind.MISSING_TEXT: lambda post: _json({k: v for k, v in post.items() if k != "text"}),
    PoisonKind.WRONG_TYPE: lambda post: _json({**post, "text": 42}),
    PoisonKind.EMPTY_TEXT: lambda post: _json({**post, "text": "   "}),
    PoisonKind.OVERSIZED_TEXT: _oversized,
    PoisonKind.BAD_UTF8: _bad_utf8,
    PoisonKind.BAD_TIMESTAMP: lambda post: _json({**post, "created_at": "yesterday at noon"}),
}


def poison_value(kind: PoisonKind, post: dict[str, str]) -> bytes:
    """A malformed message value of ``kind``, built from a valid ``post`` so it looks real."""
    return _BUILDERS[kind](post)
