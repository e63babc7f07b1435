"""``/models`` over HTTP and the `model` registry commands, on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr

from observability.api import create_app
from observability.label_stats import OnlineLabelStats
from observability.metrics import PipelineMetrics
from registry.store import ModelRegistry
from sentiment_stream.cli import main
from storage.rollups import PostgresWindowCounts
from stream_core.contract import LABELS
from stream_core.events import PipelineState
from tests.fixtures import pipeline as support
from tests.fixtures.fakes import FakeScorer
from tests.fixtures.registry import model_copy

pytestmark = pytest.mark.integration

TOKEN = "s3cret-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def client_for(database_url: str, admin_token: str | None) -> TestClient:
    app = create_app(
        FakeScorer(),
        PipelineState(),
        PipelineMetrics(),
        OnlineLabelStats(LABELS),
        PostgresWindowCounts(database_url),
        admin_token=SecretStr(admin_token) if admin_token else None,
        model_registry=ModelRegistry(database_url),
    )
    return TestClient(app)


def cli(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["model", *args], env={"DATABASE_URL": database_url, "SENTIMENT_LOG_LEVEL": "ERROR"}
    )
    return result.exit_code, result.output


def test_cli_and_http_change_the_registry_with_audit_rows(
    database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    support.migrated(database_url)
    code, out = cli(database_url, "register", str(tiny_model_dir), "--note", "tiny")
    assert code == 0 and out.endswith(": registered\n"), out
    first = out.split(":")[0]
    assert cli(database_url, "register", str(tiny_model_dir))[1] == f"{first}: already registered\n"
    other = model_copy(tiny_model_dir, tmp_path / "b", "tiny-b")
    assert cli(database_url, "register", str(other))[0] == 0
    code, out = cli(database_url, "promote", first, "--reason", "first")
    assert code == 0 and f"{first}  active" in out

    with client_for(database_url, TOKEN) as api:
        listed = api.get("/models").json()["versions"]
        assert {(v["version"], v["status"]) for v in listed} == {
            (first, "active"),
            ("tiny-b", "registered"),
        }
        # No token, a wrong one, an unknown version, an impossible change: nothing changes.
        assert api.post("/models/tiny-b/promote").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert api.post("/models/tiny-b/promote", headers=wrong).status_code == 401
        missing = api.post("/models/nope/promote", headers=ADMIN)
        assert missing.status_code == 404 and "no version nope" in missing.json()["detail"]
        assert api.post(f"/models/{first}/retire", headers=ADMIN).status_code == 409
        assert api.get("/models/tiny-b").json()["status"] == "registered"

        promoted = api.post("/models/tiny-b/promote", json={"reason": "try"}, headers=ADMIN)
        assert promoted.status_code == 200 and promoted.json()["previous_version"] == first
        shadowed = api.post(f"/models/{first}/shadow", json={"sample": 0.5}, headers=ADMIN)
        assert shadowed.json()["status"] == "shadow" and shadowed.json()["shadow_sample"] == 0.5
        back = api.post("/models/active/rollback", json={"reason": "worse"}, headers=ADMIN)
        assert back.status_code == 200 and back.json()["version"] == first
        entries = api.get("/models/history").json()["entries"]
        assert [(e["action"], e["actor"]) for e in entries[:3]] == [
            ("rollback", "http-api"),
            ("rollback", "http-api"),
            ("shadow", "http-api"),
        ]
    with client_for(database_url, None) as read_only:
        assert read_only.post("/models/tiny-b/promote", headers=ADMIN).status_code == 403

    code, out = cli(database_url, "rollback")
    assert code == 1 and "nothing to roll back to" in out
    code, out = cli(database_url, "history", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2
    code, out = cli(database_url, "versions")
    assert code == 0 and "tiny-b  retired" in out


def test_cli_errors_are_one_clear_line(database_url: str) -> None:
    code, out = cli(database_url, "versions")  # not migrated yet
    assert code == 1 and "no model registry in" in out and "db upgrade" in out
    code, out = cli("postgresql+psycopg://u:pw@127.0.0.1:1/x", "history")
    assert code == 1 and out.startswith("Error: cannot reach the database at")
    assert "pw" not in out
