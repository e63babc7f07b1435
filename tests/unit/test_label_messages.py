"""Gold-label messages: parsed into labels, every malformed kind dead-lettered with its reason,
and routed by topic beside posts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from consumer.messages import MessageReader, parse_label
from stream_core.batch import Batch
from stream_core.contract import DeadLetterReason as R
from stream_core.records import DeadLetter, GoldLabel, Post, SourceRecord

LABELS_TOPIC = "posts.labels"
KAFKA_TIME_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z


def label_record(value: bytes | None, offset: int = 7) -> SourceRecord:
    return SourceRecord(LABELS_TOPIC, 1, offset, b"p1", value, timestamp_ms=KAFKA_TIME_MS)


def test_a_label_is_parsed_with_its_kafka_time_and_position() -> None:
    value = b'{"post_id": "p1", "label": "neutral", "labelled_at": "2024-05-01T11:00:00"}'
    label = parse_label(label_record(value))
    assert label == GoldLabel(
        post_id="p1",
        label="neutral",
        labelled_at=datetime(2024, 5, 1, 11, tzinfo=UTC),  # no offset: taken as UTC
        received_at=datetime(2024, 5, 1, 12, tzinfo=UTC),
        topic=LABELS_TOPIC,
        partition=1,
        offset=7,
    )


def test_unknown_fields_are_ignored_by_default_and_rejected_on_request() -> None:
    value = b'{"post_id": "p1", "label": "positive", "annotator": "ann"}'
    assert parse_label(label_record(value)).label == "positive"
    reader = MessageReader("posts", LABELS_TOPIC, reject_unknown=True)
    letter = reader.read(label_record(value))
    assert isinstance(letter, DeadLetter)
    assert letter.reason == R.UNKNOWN_FIELD
    assert letter.error == "fields outside the contract: annotator"


@pytest.mark.parametrize(
    ("value", "reason", "says"),
    [
        (b'{"post_id": "p1", "label": "happy"}', R.UNKNOWN_LABEL, "'label' is 'happy'; expected"),
        (b'{"post_id": "p1", "label": "Negative"}', R.UNKNOWN_LABEL, "negative, neutral, positive"),
        (b'{"label": "negative"}', R.MISSING_FIELD, "the 'post_id' field is missing"),
        (b'{"post_id": "p1"}', R.MISSING_FIELD, "the 'label' field is missing"),
        (b'{"post_id": "", "label": "negative"}', R.MISSING_FIELD, "'post_id' field is empty"),
        (b'{"post_id": 12, "label": "negative"}', R.WRONG_TYPE, "'post_id': Input should be"),
        (b'{"post_id": "a\\u0000b", "label": "negative"}', R.WRONG_TYPE, "NUL character"),
        (b'{"post_id": "p1", "label": "negative", "labelled_at": "soon"}', R.INVALID_TIMESTAMP, ""),
        (b'{"post_id": "p1", "label": "neg', R.INVALID_JSON, "the value is not JSON"),
        (b"\xff\xfe", R.INVALID_UTF8, "not UTF-8"),
        (b'["p1", "negative"]', R.NOT_AN_OBJECT, "must be a JSON object"),
        (None, R.INVALID_JSON, "the message has no value"),
    ],
)
def test_bad_labels_are_dead_lettered_with_a_reason(
    value: bytes | None, reason: R, says: str
) -> None:
    letter = MessageReader("posts", LABELS_TOPIC).read(label_record(value))
    assert isinstance(letter, DeadLetter)
    assert letter.reason == reason
    assert says in letter.error


def test_the_reader_routes_by_topic_and_a_batch_keeps_labels_beside_posts() -> None:
    reader = MessageReader("posts", LABELS_TOPIC)
    assert list(reader.topics) == ["posts", LABELS_TOPIC]
    assert list(MessageReader("posts", "").topics) == ["posts"]
    post = SourceRecord("posts", 0, 3, None, json.dumps({"id": "p1", "text": "hi"}).encode())
    label = label_record(b'{"post_id": "p1", "label": "negative"}', offset=4)
    # A label-shaped message on the posts topic is a bad post, not a label.
    stray = SourceRecord("posts", 0, 4, None, b'{"post_id": "p1", "label": "negative"}')
    batch = Batch()
    for record in (post, label, stray):
        batch.add(record, reader.read(record))
    assert isinstance(reader.read(post), Post)
    assert [p.post_id for p in batch.posts] == ["p1"]
    assert [(g.post_id, g.label) for g in batch.labels] == [("p1", "negative")]
    assert [d.reason for d in batch.dead_letters] == [R.MISSING_FIELD]
    assert len(batch) == 3
    assert batch.next_offsets == {("posts", 0): 5, (LABELS_TOPIC, 1): 5}
