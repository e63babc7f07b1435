"""The model registry on a real PostgreSQL: registering, changes of status with their audit
rows, and refusing corrupt or unknown versions."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from model.scorer import Scorer
from registry.store import ModelRegistry, RegistryError, UnknownVersionError
from storage.urls import libpq_url
from tests.fixtures.pipeline import migrated, query
from tests.fixtures.registry import model_copy

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(database_url: str) -> ModelRegistry:
    return ModelRegistry(migrated(database_url))


def test_register_twice_is_a_no_op_and_files_are_stored_once(
    registry: ModelRegistry, database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    first = registry.register(tiny_model_dir, note="first", actor="tester")
    assert first.created and first.version.status == "registered"
    again = registry.register(tiny_model_dir, actor="tester")
    assert not again.created and again.version.version == first.version.version

    other = model_copy(tiny_model_dir, tmp_path / "b", "tiny-b")
    assert registry.register(other, actor="tester").created
    # Only metadata.json differs: the other files' blobs are shared.
    files = query(database_url, "SELECT count(*), count(DISTINCT blob_sha256) FROM model_files")
    blobs = query(database_url, "SELECT count(*) FROM model_blobs")[0][0]
    per_version = files[0][0] // 2
    assert blobs == per_version + 1
    assert [row[0] for row in query(database_url, "SELECT action FROM model_audit")] == [
        "register",
        "register",
    ]

    fetched = registry.fetch("tiny-b", tmp_path / "cache")
    assert Scorer.load(fetched).version == "tiny-b"
    assert registry.fetch("tiny-b", tmp_path / "cache") == fetched  # cached


def test_promote_rollback_shadow_retire_with_audit(
    registry: ModelRegistry, database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    a = registry.register(tiny_model_dir, actor="t").version.version
    registry.register(model_copy(tiny_model_dir, tmp_path / "b", "tiny-b"), actor="t")
    registry.promote(a, reason="first", actor="t")
    promoted = registry.promote("tiny-b", reason="better", actor="t")
    assert promoted.status == "active" and promoted.previous_version == a
    assert registry.get(a).status == "registered"

    with pytest.raises(RegistryError, match="active version already"):
        registry.promote("tiny-b", actor="t")
    with pytest.raises(RegistryError, match="is active"):
        registry.retire("tiny-b", actor="t")

    back = registry.rollback(reason="worse", actor="t")
    assert back.version == a and back.status == "active"
    assert registry.get("tiny-b").status == "retired"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(actor="t")

    shadow = registry.shadow("tiny-b", sample=0.25, actor="t")
    assert (shadow.status, shadow.shadow_sample) == ("shadow", 0.25)
    assert registry.serving_state() == {"active": (a, 1.0), "shadow": ("tiny-b", 0.25)}
    assert registry.retire("tiny-b", actor="t").status == "retired"

    audit = [(r["action"], r["version"], r["to_status"]) for r in registry.history()][::-1]
    assert audit[2:] == [
        ("promote", a, "active"),
        ("demote", a, "registered"),
        ("promote", "tiny-b", "active"),
        ("rollback", "tiny-b", "retired"),
        ("rollback", a, "active"),
        ("shadow", "tiny-b", "shadow"),
        ("retire", "tiny-b", "retired"),
    ]


def test_unknown_versions_and_bad_folders_change_nothing(
    registry: ModelRegistry, database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(UnknownVersionError, match="no version nope"):
        registry.promote("nope", actor="t")
    broken = model_copy(tiny_model_dir, tmp_path / "broken", "tiny-broken")
    (broken / "model.onnx").write_bytes(b"not the exported file")
    with pytest.raises(RegistryError, match="does not match the sha256"):
        registry.register(broken, actor="t")
    with pytest.raises(RegistryError, match="is not a folder"):
        registry.register(tmp_path / "missing", actor="t")
    assert query(database_url, "SELECT count(*) FROM model_versions")[0][0] == 0
    assert query(database_url, "SELECT count(*) FROM model_audit")[0][0] == 0


def test_a_corrupt_chunk_never_loads(
    registry: ModelRegistry, database_url: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    version = registry.register(tiny_model_dir, actor="t").version.version
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "UPDATE model_blob_chunks SET data = overlay(data PLACING '\\x00'::bytea FROM 10)"
            " WHERE seq = 0 AND blob_sha256 = (SELECT blob_sha256 FROM model_files"
            " WHERE path = 'model.onnx' AND version = %s)",
            (version,),
        )
    with pytest.raises(RegistryError, match="fails its sha256"):
        registry.fetch(version, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # nothing half-written
