"""Validation of message values: every malformed kind gets its reason and a clear message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from consumer.messages import InvalidMessageError, parse_post
from stream_core.contract import DeadLetterReason as R


def parse(value: bytes | None, **options: object) -> object:
    return parse_post(value, max_text_chars=50, **options)  # type: ignore[arg-type]


def test_a_full_message_is_parsed() -> None:
    value = json.dumps(
        {
            "id": "42",
            "text": "good day",
            "created_at": "2024-05-01T12:00:00+02:00",
            "author": "ann",
            "lang": "en",
        }
    ).encode()
    post = parse_post(value, max_text_chars=50)
    assert post.post_id == "42"
    assert post.text == "good day"
    assert post.author == "ann"
    assert post.lang == "en"
    assert post.created_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert post.created_at.utcoffset() == timedelta(hours=2)
    assert post.extra is None


def test_optional_fields_may_be_missing_or_null() -> None:
    post = parse_post(b'{"id": "1", "text": "hi", "author": null}', max_text_chars=50)
    assert (post.author, post.lang, post.created_at) == (None, None, None)


def test_a_timestamp_without_offset_is_utc() -> None:
    value = b'{"id": "1", "text": "hi", "created_at": "2024-05-01T12:00:00"}'
    assert parse_post(value, max_text_chars=9).created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_unknown_fields_are_kept_by_default_and_rejected_on_request() -> None:
    value = b'{"id": "1", "text": "hi", "likes": 3, "tags": ["a"]}'
    assert parse_post(value, max_text_chars=9).extra == {"likes": 3, "tags": ["a"]}
    with pytest.raises(InvalidMessageError) as caught:
        parse_post(value, max_text_chars=9, reject_unknown=True)
    assert caught.value.reason is R.UNKNOWN_FIELD
    assert "likes, tags" in caught.value.error


@pytest.mark.parametrize(
    ("value", "reason", "says"),
    [
        (None, R.INVALID_JSON, "no value"),
        (b"\xff\xfe{}", R.INVALID_UTF8, "byte 0xff at position 0"),
        (b'{"id": "1", "text": "caf\xe9"}', R.INVALID_UTF8, "not UTF-8"),
        (b"{not json", R.INVALID_JSON, "not JSON"),
        (b"", R.INVALID_JSON, "not JSON"),
        (b'{"id": "1", "text": "a\\ud800b"}', R.INVALID_JSON, "not JSON"),
        (b"[1, 2]", R.NOT_AN_OBJECT, "JSON object"),
        (b'"text"', R.NOT_AN_OBJECT, "JSON object"),
        (b"null", R.NOT_AN_OBJECT, "JSON object"),
        (b'{"text": "hi"}', R.MISSING_FIELD, "'id' field is missing"),
        (b'{"id": "1"}', R.MISSING_FIELD, "'text' field is missing"),
        (b'{"id": "", "text": "hi"}', R.MISSING_FIELD, "'id' field is empty"),
        (b'{"id": 7, "text": "hi"}', R.WRONG_TYPE, "'id'"),
        (b'{"id": "1", "text": ["hi"]}', R.WRONG_TYPE, "'text'"),
        (b'{"id": "1", "text": null}', R.WRONG_TYPE, "'text'"),
        (b'{"id": "1", "text": "hi", "author": 5}', R.WRONG_TYPE, "'author'"),
        (b'{"id": "1", "text": "hi", "lang": true}', R.WRONG_TYPE, "'lang'"),
        (b'{"id": "1", "text": "hi", "created_at": 1714564800}', R.WRONG_TYPE, "'created_at'"),
        (b'{"id": "1", "text": ""}', R.EMPTY_TEXT, "empty"),
        (b'{"id": "1", "text": " \\n\\t "}', R.EMPTY_TEXT, "whitespace"),
        (b'{"id": "1", "text": "' + b"x" * 51 + b'"}', R.TEXT_TOO_LONG, "51 characters"),
        (b'{"id": "1", "text": "hi", "created_at": "yesterday"}', R.INVALID_TIMESTAMP, "datetime"),
        (
            b'{"id": "1", "text": "hi", "created_at": "2024-13-01T00:00:00Z"}',
            R.INVALID_TIMESTAMP,
            "month",
        ),
    ],
)
def test_invalid_messages_get_a_reason(value: bytes | None, reason: R, says: str) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        parse(value)
    assert caught.value.reason is reason
    assert says in caught.value.error


def test_the_length_limit_counts_characters_not_bytes() -> None:
    text = "é" * 50  # 100 bytes in UTF-8
    value = json.dumps({"id": "1", "text": text}).encode()
    assert parse_post(value, max_text_chars=50).text == text
