"""What this project knows about librdkafka, in one place: how ``KAFKA_*`` variables become
client properties, which properties only a consumer reads, the consumer's defaults and what
it never lets a user change, the reliable producer, and an admin probe that tells at once, in
one exception, that no broker answers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

# librdkafka settings come from KAFKA_* variables: KAFKA_SASL_PASSWORD -> sasl.password.
ENV_PREFIX = "KAFKA_"
_NOT_LIBRDKAFKA = {"KAFKA_BOOTSTRAP_SERVERS"}
# librdkafka properties that only a consumer reads. KAFKA_* variables serve every client, so a
# producer or admin client would get them too, and log "... is a consumer property and will be
# ignored" for each: :func:`without_consumer_options` leaves them out.
CONSUMER_ONLY_OPTIONS = frozenset(
    {
        "auto.commit.enable",
        "auto.commit.interval.ms",
        "auto.offset.reset",
        "check.crcs",
        "consume.callback.max.messages",
        "coordinator.query.interval.ms",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "enable.partition.eof",
        "fetch.error.backoff.ms",
        "fetch.max.bytes",
        "fetch.message.max.bytes",
        "fetch.min.bytes",
        "fetch.queue.backoff.ms",
        "fetch.wait.max.ms",
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "heartbeat.interval.ms",
        "isolation.level",
        "max.partition.fetch.bytes",
        "max.poll.interval.ms",
        "offset.store.method",
        "offset.store.path",
        "offset.store.sync.interval.ms",
        "partition.assignment.strategy",
        "queued.max.messages.kbytes",
        "queued.min.messages",
        "session.timeout.ms",
    }
)
# The consumer's defaults, which a user may override with KAFKA_* / --kafka-option. A new group
# starts at the beginning of the topic, so no post published before the first start is skipped.
# Cooperative rebalancing moves only the partitions that change owner; the others keep flowing.
# Kafka answers a fetch as soon as data arrives, but some Kafka-compatible brokers (tansu, the
# embedded one) hold it for part of fetch.wait.max.ms even then: 100 ms instead of librdkafka's
# 500 keeps end-to-end latency low there, for a few more idle fetches a second.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "fetch.wait.max.ms": 100,
}
# Never overridable: offsets are ours to commit, after the database commit.
CONSUMER_FORCED: dict[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}
# Producers whose messages must not be lost or doubled by a retry (dead letters, alerts, the
# simulator): a message is confirmed only once every in-sync replica has it, once.
RELIABLE_PRODUCER: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}


def options_from_env(environ: Mapping[str, str]) -> dict[str, SecretStr]:
    """Map ``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` style variables to librdkafka property names."""
    return {
        name[len(ENV_PREFIX) :].lower().replace("_", "."): SecretStr(value)
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name not in _NOT_LIBRDKAFKA
    }


def without_consumer_options(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` for a producer or admin client: no consumer-only properties."""
    return {name: value for name, value in config.items() if name not in CONSUMER_ONLY_OPTIONS}


def consumer_config(config: dict[str, Any]) -> dict[str, Any]:
    """A consumer's configuration: our defaults, then ``config``, then what is never changed."""
    return {**CONSUMER_DEFAULTS, **config, **CONSUMER_FORCED}


PROBE_S = 0.5  # one metadata attempt; between attempts, the client's errors are read
# Errors after which waiting longer cannot help: no broker listens, or the cluster refuses us.
_HOPELESS = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION})


class Admin:
    """``client`` is the AdminClient; :meth:`topics` is its metadata, or a quick clear failure.

    Its failures come back as exceptions, so librdkafka's own log lines (a "Connect failed"
    every 50 ms while nothing listens) stay off unless a ``log_level`` option asks for them.
    """

    def __init__(self, kafka_config: dict[str, Any]) -> None:
        self._errors: list[KafkaError] = []
        self.client = AdminClient({"log_level": 0, **kafka_config}, error_cb=self._errors.append)

    def topics(self, timeout_s: float) -> dict[str, Any]:
        """The cluster's topics by name; KafkaException once the broker is clearly unreachable.

        Lists all topics, not one: a metadata request naming a missing topic makes brokers
        with auto-creation on (tansu, many dev setups) create it with default settings.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                wait_s = min(PROBE_S, max(0.0, deadline - time.monotonic()))
                return self.client.list_topics(timeout=wait_s).topics
            except KafkaException as error:
                self.client.poll(0)  # runs error_cb for what happened meanwhile
                hopeless = any(e.code() in _HOPELESS for e in self._errors)
                if time.monotonic() < deadline and not hopeless:
                    continue
                # The first specific error says why ("Connection refused"), not "brokers down".
                cause = next(
                    (e for e in self._errors if e.code() != KafkaError._ALL_BROKERS_DOWN), None
                )
                raise KafkaException(cause or error.args[0]) from None


def worth_waiting_for(error: Exception) -> bool:
    """A broker failure that may pass (down, restarting, unreachable), as opposed to one that
    will not: the cluster refusing our credentials."""
    if not isinstance(error, KafkaException):
        return False
    cause = error.args[0] if error.args else None
    return not (isinstance(cause, KafkaError) and cause.code() == KafkaError._AUTHENTICATION)
