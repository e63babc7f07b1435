"""Embedded Kafka-compatible broker (tansu) and PostgreSQL, for the demo, `stack up` and tests.

Both run as child processes on free loopback ports and are stopped by process id.
"""

from embedded.broker import EmbeddedBroker
from embedded.postgres import EmbeddedPostgres

__all__ = ["EmbeddedBroker", "EmbeddedPostgres"]
