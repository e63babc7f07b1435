"""The dead-letter publisher against a real broker: what it sends, and values too large to send."""

from __future__ import annotations

import pytest

from consumer.dlq import TRUNCATED_VALUE_BYTES, DeadLetterPublisher
from observability.metrics import PipelineMetrics
from stream_core.contract import DeadLetterReason, DlqHeader
from stream_core.records import DeadLetter, SourceRecord
from tests.fixtures.pipeline import read_all

pytestmark = pytest.mark.integration


def letter(value: bytes, offset: int) -> DeadLetter:
    record = SourceRecord("posts", 0, offset, b"author-1", value, (("trace", b"t-1"),), 1_700_000)
    return DeadLetter(record, DeadLetterReason.TEXT_TOO_LONG, "'text' is too long")


def test_a_value_too_large_for_the_dlq_goes_truncated_and_its_neighbour_whole(
    kafka_bootstrap: str, topic: str
) -> None:
    metrics = PipelineMetrics()
    # A client limit well below the value stands in for a topic whose max.message.bytes the
    # original message only just fitted before the dead-letter headers were added.
    publisher = DeadLetterPublisher(
        {"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 60_000},
        topic,
        "group-1",
        metrics,
    )
    huge, small = b"x" * 100_000, b'{"id": 1}'
    try:
        publisher.publish([letter(huge, 7), letter(small, 8)])
    finally:
        publisher.close()

    received = {m.value(): m for m in read_all(kafka_bootstrap, topic, 2)}
    assert set(received) == {huge[:TRUNCATED_VALUE_BYTES], small}
    truncated_headers = dict(received[huge[:TRUNCATED_VALUE_BYTES]].headers())
    assert truncated_headers[DlqHeader.VALUE_TRUNCATED_FROM] == b"100000"
    assert truncated_headers[DlqHeader.SOURCE_OFFSET] == b"7"
    assert truncated_headers["trace"] == b"t-1"
    assert DlqHeader.VALUE_TRUNCATED_FROM not in dict(received[small].headers())
    reason = DeadLetterReason.TEXT_TOO_LONG.value
    assert metrics.dead_letters.labels(reason=reason)._value.get() == 2
