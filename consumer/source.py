"""The Kafka consumer the poller drives: the few methods it uses, and the real one (configured
by ``stream_core.kafka``: defaults, the user's options, what never changes).

The pipeline takes any object with those methods (:class:`KafkaConsumer`), so the poller's
decisions (pause, resume, hand-over, commit order) are unit-tested with a fake consumer;
:func:`kafka_consumer` makes the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from confluent_kafka import Consumer, TopicPartition

from consumer.settings import PipelineSettings

# on_assign / on_revoke / on_lost: called with the consumer and the partitions concerned.
RebalanceCallback = Callable[[Any, list[TopicPartition]], None]


class KafkaConsumer(Protocol):
    """What the pipeline uses of ``confluent_kafka.Consumer`` (messages are its ``Message``)."""

    def subscribe(
        self,
        topics: list[str],
        *,
        on_assign: RebalanceCallback,
        on_revoke: RebalanceCallback,
        on_lost: RebalanceCallback,
    ) -> None: ...

    def consume(self, num_messages: int, timeout: float) -> list[Any]: ...

    def assignment(self) -> list[TopicPartition]: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]: ...

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = ..., cached: bool = ...
    ) -> tuple[int, int]: ...

    def close(self) -> None: ...


def kafka_consumer(settings: PipelineSettings) -> KafkaConsumer:
    """The real consumer of ``settings``' group (it joins when the pipeline subscribes)."""
    consumer: KafkaConsumer = Consumer(settings.consumer_kafka_config())
    return consumer
