"""The dead-letter topic: original key, bytes and headers, plus why and where from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer

from observability.metrics import PipelineMetrics
from stream_core.contract import DlqHeader
from stream_core.kafka import RELIABLE_PRODUCER
from stream_core.records import DeadLetter

log = structlog.get_logger(__name__)

# Idempotent and acks=all: a dead letter is confirmed only once every in-sync replica has it.
PRODUCER_SETTINGS = {**RELIABLE_PRODUCER, "linger.ms": 5}
# A message near the size limit no longer fits once the DLQ headers are added. Rather than
# fail on it forever (the batch would be replayed and fail again), its value is cut to this
# many bytes and DlqHeader.VALUE_TRUNCATED_FROM says how long it was.
TRUNCATED_VALUE_BYTES = 16 * 1024


class DeadLetterDeliveryError(Exception):
    """Some dead letters were not confirmed by the broker; their offsets must not be committed."""


def dlq_headers(letter: DeadLetter, group_id: str) -> list[tuple[str, str | bytes | None]]:
    """The original headers followed by the DlqHeader ones."""
    record = letter.record
    headers: list[tuple[str, str | bytes | None]] = list(record.headers)
    headers += [
        (DlqHeader.REASON, letter.reason.value),
        (DlqHeader.ERROR, letter.error),
        (DlqHeader.SOURCE_TOPIC, record.topic),
        (DlqHeader.SOURCE_PARTITION, str(record.partition)),
        (DlqHeader.SOURCE_OFFSET, str(record.offset)),
        (DlqHeader.CONSUMER_GROUP, group_id),
    ]
    if record.timestamp_ms is not None:
        headers.append((DlqHeader.SOURCE_TIMESTAMP_MS, str(record.timestamp_ms)))
    return headers


class DeadLetterPublisher:
    """Sends dead letters and waits until the broker confirms every one."""

    def __init__(
        self,
        producer_config: dict[str, Any],
        topic: str,
        group_id: str,
        metrics: PipelineMetrics,
    ) -> None:
        self.topic = topic
        self._group_id = group_id
        self._metrics = metrics
        self._producer = Producer({**producer_config, **PRODUCER_SETTINGS})

    def publish(self, letters: Sequence[DeadLetter], timeout_s: float = 30.0) -> None:
        """Produce and flush; DeadLetterDeliveryError unless all are acknowledged."""
        failures: list[str] = []
        too_large: list[DeadLetter] = []
        for letter in letters:
            self._produce(letter, failures, too_large)
        undelivered = self._producer.flush(timeout_s)
        if too_large and not failures and not undelivered:
            for letter in too_large:
                self._produce(letter, failures, None)
            undelivered = self._producer.flush(timeout_s)
        if failures or undelivered:
            raise DeadLetterDeliveryError(
                f"{len(failures) + undelivered} of {len(letters)} dead letters not confirmed "
                f"by the broker: {'; '.join(failures[:3]) or 'timed out'}"
            )
        for letter in letters:
            self._metrics.dead_letters.labels(reason=letter.reason.value).inc()
            log.info(
                "dead-lettered",
                reason=letter.reason.value,
                error=letter.error,
                topic=letter.record.topic,
                partition=letter.record.partition,
                offset=letter.record.offset,
            )

    def _produce(
        self, letter: DeadLetter, failures: list[str], too_large: list[DeadLetter] | None
    ) -> None:
        """Send one dead letter whole, or truncated when ``too_large`` is None.

        A letter the client or the broker finds too large goes to ``too_large`` (to be sent
        again truncated); any other failure goes to ``failures``.
        """
        value = letter.record.value
        headers = dlq_headers(letter, self._group_id)
        if too_large is None and value is not None:
            headers.append((DlqHeader.VALUE_TRUNCATED_FROM, str(len(value))))
            value = value[:TRUNCATED_VALUE_BYTES]

        def delivered(error: KafkaError | None, _message: Any) -> None:
            if error is None:
                return
            if too_large is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                too_large.append(letter)
            else:
                failures.append(str(error))

        try:
            self._producer.produce(
                self.topic,
                value=value,
                key=letter.record.key,
                headers=headers,
                on_delivery=delivered,
            )
        except KafkaException as error:
            delivered(error.args[0], None)

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._producer.close()
