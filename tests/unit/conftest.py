"""The unit lane has no broker and no database: a test that asks for one fails at once, with the
lane it belongs in."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    pytest.fail("a unit test asked for a Kafka broker: it belongs in tests/integration")


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    pytest.fail("a unit test asked for PostgreSQL: it belongs in tests/integration")
