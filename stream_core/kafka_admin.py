"""A Kafka admin client that tells at once, in one exception, that no broker answers."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

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
