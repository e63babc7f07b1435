"""Reading back what the simulator sent, for the simulator's and the demo's tests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Message


@dataclass(frozen=True)
class Received:
    key: str
    value: bytes
    headers: dict[str, str]
    partition: int
    timestamp_ms: int

    @property
    def seq(self) -> int:
        from producer_sim.simulator import SEQ_HEADER

        return int(self.headers[SEQ_HEADER])


def headers_of(message: Message) -> dict[str, str]:
    """A message's headers as text (librdkafka hands them back as a list of byte pairs)."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {k: v.decode() if isinstance(v, bytes) else v or "" for k, v in pairs}


def consume_all(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0
) -> list[Received]:
    """Every message of ``topic`` from the start, until ``expected`` arrived or the timeout."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"readback-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 3000,
        }
    )
    consumer.subscribe([topic])
    received: list[Received] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error():
                    continue
                received.append(
                    Received(
                        (message.key() or b"").decode(),
                        message.value() or b"",
                        headers_of(message),
                        message.partition() or 0,
                        message.timestamp()[1],
                    )
                )
    finally:
        consumer.close()
    return received
