"""The Kafka consumer the poller drives: how it is configured, and the few methods it uses.

The pipeline takes any object with those methods (:class:`KafkaConsumer`), so the poller's
decisions (pause, resume, hand-over, commit order) are unit-tested with a fake consumer;
:func:`kafka_consumer` makes the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from confluent_kafka import Consumer, TopicPartition

from stream_core.settings import Settings

# Defaults a user may override with KAFKA_* / --kafka-option. A new group starts at the
# beginning of the topic, so no post published before the first start is skipped. Cooperative
# rebalancing moves only the partitions that change owner; the others keep flowing. Kafka
# answers a fetch as soon as data arrives, but some Kafka-compatible brokers (tansu, the
# embedded one) hold it for part of fetch.wait.max.ms even then: 100 ms instead of
# librdkafka's 500 keeps end-to-end latency low there, for a few more idle fetches a second.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "fetch.wait.max.ms": 100,
}
# Never overridable: offsets are ours to commit, after the database commit.
CONSUMER_FORCED: dict[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}

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


def consumer_config(settings: Settings) -> dict[str, Any]:
    return {
        **CONSUMER_DEFAULTS,
        **settings.kafka_config(**{"group.id": settings.group_id}),
        **CONSUMER_FORCED,
    }


def kafka_consumer(settings: Settings) -> KafkaConsumer:
    """The real consumer of ``settings``' group (it joins when the pipeline subscribes)."""
    consumer: KafkaConsumer = Consumer(consumer_config(settings))
    return consumer
