"""The published OpenAPI document against the real API, with a property-based fuzzer.

Schemathesis reads ``/openapi.json`` from the app the consumer serves (``create_app`` with the
committed default model, a real PostgreSQL behind ``/stats`` and ``/watch``) and sends requests
generated from it, valid and invalid ones. Every check it has must hold: no 5xx, every
schema-valid request accepted, every invalid one rejected with a 4xx, every status code, content
type and body as documented.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from monitoring.reader import MonitoringReader
from monitoring.settings import MonitoringSettings
from observability.api import create_app
from observability.label_stats import OnlineLabelStats
from observability.metrics import PipelineMetrics
from registry.store import ModelRegistry
from storage import migrate
from storage.rollups import PostgresWindowCounts
from stream_core.events import PipelineState
from tests.fixtures.services import fresh_database
from watchlist.matcher import Matcher
from watchlist.rules import PYTHON_REGEX_FORMAT, RULE_PATTERN, compile_regex
from watchlist.store import WatchStore

OPERATIONS = {
    "GET /health", "GET /ready", "GET /model", "GET /metrics", "POST /predict", "GET /stats",
    "GET /watch", "GET /watch/{name}", "PUT /watch/{name}", "DELETE /watch/{name}",
    "POST /match", "GET /quality", "GET /drift",
    "GET /models", "GET /models/history", "POST /models/active/rollback",
    "GET /models/{version}", "POST /models/{version}/promote", "POST /models/{version}/shadow",
    "POST /models/{version}/retire", "GET /models/compare",
}  # fmt: skip
ADMIN_TOKEN = "fuzz-admin-token"


def _compiles(pattern: str) -> bool:
    try:
        compile_regex(pattern)
    except ValueError:
        return False
    return bool(re.search(RULE_PATTERN, pattern))


# What the watchlist's own string format means: any text Python's re compiles.
schemathesis.openapi.format(PYTHON_REGEX_FORMAT, st.text(min_size=1, max_size=40).filter(_compiles))

# schemathesis.toml, as a dict: every check, valid and invalid requests (the default), a fixed
# seed so a failure reproduces, the admin token for the operations that state they need it
# (the fuzzer also checks they refuse a request without it), and the one documented 5xx
# (/ready's 503: not ready yet).
FUZZ_CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "generation": {"max-examples": 150, "deterministic": True},
        "auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN_TOKEN}}},
        "operations": [
            {
                "include-name": "GET /ready",
                "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "4xx", "503"]}},
            }
        ],
    }
)


@pytest.fixture(scope="module")
def default_scorer() -> Scorer:
    return Scorer.load(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def stats_database(postgres_server_url: str) -> Iterator[str]:
    """One migrated database for the module (``/stats`` reads its per-minute counts)."""
    with fresh_database(postgres_server_url) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def real_app(default_scorer: Scorer, stats_database: str) -> FastAPI:
    state = PipelineState(model_loaded=True, database_ok=True)
    store = WatchStore(stats_database)
    return create_app(
        default_scorer,
        state,
        PipelineMetrics(),
        OnlineLabelStats(default_scorer.labels),
        PostgresWindowCounts(stats_database),
        watch_store=store,
        live_matcher=lambda: Matcher(store.list()),
        admin_token=SecretStr(ADMIN_TOKEN),
        monitoring=MonitoringReader(
            stats_database,
            default_scorer.version,
            MonitoringSettings().windows(),
            offline_metrics=default_scorer.metadata.metrics,
        ),
        model_registry=ModelRegistry(stats_database),
    )


@pytest.fixture
def api_schema(real_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", real_app, config=FUZZ_CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's fixture-backed tests read ``node._nodeid``, which pytest 9 no longer
    has (AttributeError); give it the public node id back."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="module")
def requests_sent() -> Iterator[Counter[str]]:
    """Requests per operation; at the end, proof that the fuzzer reached every operation."""
    sent: Counter[str] = Counter()
    yield sent
    print(f"\nfuzzed {sum(sent.values())} requests: {dict(sent)}")
    assert set(sent) == OPERATIONS
    # An operation with an input gets valid and invalid cases; one without gets a few.
    with_input = ("POST /predict", "GET /stats", "PUT /watch/{name}", "POST /match")
    assert all(sent[label] >= 20 for label in with_input), sent


@pytest.mark.integration
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_does_what_its_openapi_document_says(
    case: schemathesis.Case[Any], requests_sent: Counter[str]
) -> None:
    requests_sent[case.operation.label] += 1
    case.call_and_validate()
