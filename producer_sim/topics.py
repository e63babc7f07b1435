"""Create the topic the simulator writes to, when it does not exist yet."""

from __future__ import annotations

from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.cimpl import NewTopic

from stream_core.kafka import Admin

log = structlog.get_logger(__name__)


def ensure_topic(
    kafka_config: dict[str, Any],
    topic: str,
    partitions: int,
    replication_factor: int = -1,
    timeout_s: float = 15.0,
) -> int:
    """Create ``topic`` with ``partitions`` unless it exists; returns its partition count.

    Only creates: some brokers (tansu) cannot add partitions later, and changing the partition
    count of a live topic reshuffles keys, so an existing topic is left as it is.
    ``replication_factor`` -1 takes the broker's default. KafkaException at once when no
    broker answers.
    """
    admin = Admin(kafka_config)
    existing = admin.topics(timeout_s)
    if topic in existing:
        count = len(existing[topic].partitions)
        if count != partitions:
            log.warning("topic_exists", topic=topic, partitions=count, requested=partitions)
        return count
    futures = admin.client.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)],
        request_timeout=timeout_s,
    )
    try:
        futures[topic].result(timeout_s)
        log.info("topic_created", topic=topic, partitions=partitions)
    except KafkaException as error:
        if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    created = admin.topics(timeout_s).get(topic)
    return len(created.partitions) if created else partitions
