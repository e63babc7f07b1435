"""Create the topic the simulator writes to, when it does not exist yet."""

from __future__ import annotations

import time
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

log = structlog.get_logger(__name__)

PROBE_S = 0.5  # one metadata attempt; between attempts, the client's errors are read
# Errors after which waiting longer cannot help: no broker listens, or the cluster refuses us.
_HOPELESS = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION})


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
    ``replication_factor`` -1 takes the broker's default.
    """
    errors: list[KafkaError] = []
    # Its failures come back as one KafkaException, so librdkafka's own log lines (a "Connect
    # failed" every 50 ms while nothing listens) stay off unless a log_level option asks.
    admin = AdminClient({"log_level": 0, **kafka_config}, error_cb=errors.append)
    existing = _topics(admin, errors, timeout_s)
    if topic in existing:
        count = len(existing[topic].partitions)
        if count != partitions:
            log.warning("topic_exists", topic=topic, partitions=count, requested=partitions)
        return count
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)],
        request_timeout=timeout_s,
    )
    try:
        futures[topic].result(timeout_s)
        log.info("topic_created", topic=topic, partitions=partitions)
    except KafkaException as error:
        if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    created = admin.list_topics(timeout=timeout_s).topics.get(topic)
    return len(created.partitions) if created else partitions


def _topics(admin: AdminClient, errors: list[KafkaError], timeout_s: float) -> dict[str, Any]:
    """The cluster's topics, by name; KafkaException as soon as the broker is clearly unreachable.

    Lists all topics, not the one topic: a metadata request naming a missing topic makes
    brokers with auto-creation on (tansu, many dev setups) create it with default settings.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            wait_s = min(PROBE_S, max(0.0, deadline - time.monotonic()))
            return admin.list_topics(timeout=wait_s).topics
        except KafkaException as error:
            admin.poll(0)  # runs error_cb for what happened meanwhile
            if time.monotonic() < deadline and not any(e.code() in _HOPELESS for e in errors):
                continue
            # The first specific error says why ("Connection refused"), not "all brokers down".
            cause = next((e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN), None)
            raise KafkaException(cause or error.args[0]) from None
