"""``/watch`` and ``/stats?entity=``: the watchlist over HTTP, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from observability.api import create_app
from observability.label_stats import OnlineLabelStats
from observability.metrics import PipelineMetrics
from storage.rollups import PostgresWindowCounts
from stream_core.contract import LABELS
from stream_core.events import PipelineState
from tests.fixtures import pipeline as support
from tests.fixtures.fakes import FakeScorer
from watchlist.matcher import Matcher
from watchlist.store import WatchStore

pytestmark = pytest.mark.integration

TOKEN = "s3cret-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ACME = {"keywords": ["ACME Corp"], "hashtags": ["#acme"], "metrics": True}


def client_for(database_url: str, admin_token: str | None) -> TestClient:
    store = WatchStore(database_url)
    app = create_app(
        FakeScorer(),
        PipelineState(),
        PipelineMetrics(),
        OnlineLabelStats(LABELS),
        PostgresWindowCounts(database_url),
        watch_store=store,
        live_matcher=lambda: Matcher(store.list()),
        admin_token=SecretStr(admin_token) if admin_token else None,
    )
    return TestClient(app)


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    support.migrated(database_url)
    with client_for(database_url, TOKEN) as client:
        yield client


def test_create_read_replace_and_delete_an_entity(api: TestClient) -> None:
    assert api.get("/watch").json() == {"entities": []}
    created = api.put("/watch/acme", json=ACME, headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["hashtags"] == ["acme"]  # stored without the sigil
    assert api.put("/watch/acme", json=ACME, headers=ADMIN).status_code == 200  # unchanged
    replaced = api.put("/watch/acme", json={"mentions": ["@acme_help"]}, headers=ADMIN)
    assert replaced.status_code == 200
    assert api.get("/watch/acme").json() == {
        "name": "acme",
        "description": "",
        "keywords": [],
        "hashtags": [],
        "mentions": ["acme_help"],
        "regexes": [],
        "metrics": False,
    }
    assert [e["name"] for e in api.get("/watch").json()["entities"]] == ["acme"]
    assert api.delete("/watch/acme", headers=ADMIN).status_code == 204
    assert api.get("/watch/acme").status_code == 404
    assert api.delete("/watch/acme", headers=ADMIN).json() == {"detail": "acme is not watched"}


def test_state_changes_need_the_admin_token(api: TestClient, database_url: str) -> None:
    missing = api.put("/watch/acme", json=ACME)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = api.delete("/watch/acme", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "not the admin token"}
    with client_for(database_url, None) as read_only:
        refused = read_only.put("/watch/acme", json=ACME, headers=ADMIN)
        assert refused.status_code == 403
        assert "SENTIMENT_ADMIN_TOKEN" in refused.json()["detail"]
        assert read_only.get("/watch").status_code == 200  # reading stays open
    assert api.get("/watch").json() == {"entities": []}


def test_bad_rules_are_422_with_the_reason(api: TestClient) -> None:
    cases = {
        "needs at least one keyword": {},
        "does not compile": {"regexes": ["(unclosed"]},
        "String should match pattern": {"hashtags": ["two words"]},
        "Input should be a valid boolean": {"keywords": ["x"], "metrics": 1},
        "Extra inputs are not permitted": {"keywords": ["x"], "colour": "red"},
    }
    for reason, body in cases.items():
        answer = api.put("/watch/acme", json=body, headers=ADMIN)
        assert answer.status_code == 422, body
        assert reason in str(answer.json()["detail"]), answer.json()
    assert api.put("/watch/Not_A_Name", json=ACME, headers=ADMIN).status_code == 422


def test_the_openapi_document_states_the_guard(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for method in ("put", "delete"):
        operation = document["paths"]["/watch/{name}"][method]
        assert operation["security"] == [{"HTTPBearer": []}]
        assert {"401", "403"} <= set(operation["responses"])
    assert "security" not in document["paths"]["/watch/{name}"]["get"]
    allow = api.request("PATCH", "/watch/acme").headers["allow"]
    assert allow == "DELETE, GET, PUT"


def test_match_shows_which_rule_matched(api: TestClient) -> None:
    api.put("/watch/acme", json=ACME, headers=ADMIN)
    answer = api.post("/match", json={"text": "Love #ACME, and acme corp!"})
    assert answer.json() == {
        "entities": ["acme"],
        "hits": [
            {"entity": "acme", "kind": "hashtag", "rule": "acme", "start": 5, "end": 10},
            {"entity": "acme", "kind": "keyword", "rule": "ACME Corp", "start": 16, "end": 25},
        ],
    }


def test_stats_for_one_entity(api: TestClient, database_url: str) -> None:
    api.put("/watch/acme", json=ACME, headers=ADMIN)
    support.query(
        database_url,
        "INSERT INTO sentiment_entity_minute_counts VALUES "
        "('acme', date_trunc('minute', now()), 'negative', 4), "
        "('acme', date_trunc('minute', now()), 'positive', 1), "
        "('other', date_trunc('minute', now()), 'negative', 50) RETURNING 1",
    )
    stats = api.get("/stats", params={"entity": "acme", "window": "15m"}).json()
    assert stats["entity"] == "acme"
    assert stats["window"]["counts"] == {"negative": 4, "neutral": 0, "positive": 1}
    assert api.get("/stats").json()["entity"] is None
    unknown = api.get("/stats", params={"entity": "initech"})
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "initech is not watched (see GET /watch)"}
    assert api.get("/stats", params={"entity": "Bad Name"}).status_code == 422
