"""`sentiment-stream db upgrade|downgrade|current` against a real PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from storage.migrate import alembic_config
from tests.fixtures.pipeline import query
from tests.fixtures.services import CLI, cli_env

pytestmark = pytest.mark.integration


MONITORING_TABLES = {
    "scored_posts",
    "sentiment_minute_counts",
    "gold_labels",
    "drift_reports",
    "monitoring_runs",
}
REGISTRY_TABLES = {
    "model_versions",
    "model_files",
    "model_blobs",
    "model_blob_chunks",
    "model_audit",
    "shadow_scores",
}


def db(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # From another folder: the migrations must be found in the package, not via alembic.ini.
    return subprocess.run(
        [*CLI, "db", *args, "--log-format", "console"],
        env=cli_env(DATABASE_URL=url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tables(url: str) -> set[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {name for (name,) in rows} - {"alembic_version"}


def test_upgrade_downgrade_and_upgrade_again(database_url: str, tmp_path: Path) -> None:
    assert db("current", url=database_url, cwd=tmp_path).stdout.strip() == "none"

    up = db("upgrade", url=database_url, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert db("current", url=database_url, cwd=tmp_path).stdout.strip() == head
    assert tables(database_url) >= MONITORING_TABLES | REGISTRY_TABLES
    indexes = {name for (name,) in query(database_url, "SELECT indexname FROM pg_indexes")}
    assert {"ix_scored_posts_created_at", "uq_scored_posts_kafka_position"} <= indexes
    assert {"ix_scored_posts_gold_label_at", "ix_gold_labels_pending"} <= indexes
    assert "ix_drift_reports_window_feature_computed_at" in indexes

    down = db("downgrade", "base", url=database_url, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert tables(database_url) == set()
    assert db("current", url=database_url, cwd=tmp_path).stdout.strip() == "none"

    again = db("upgrade", url=database_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert tables(database_url) >= MONITORING_TABLES | REGISTRY_TABLES


def test_errors_are_clear(database_url: str, tmp_path: Path) -> None:
    unreachable = db(
        "upgrade",
        "--startup-timeout-s",
        "1",
        url="postgresql+psycopg://u:pw@127.0.0.1:1/x",
        cwd=tmp_path,
    )
    assert unreachable.returncode == 1
    (error,) = [line for line in unreachable.stderr.splitlines() if line.startswith("Error: ")]
    assert error.startswith(
        "Error: cannot reach the database at postgresql+psycopg://u:***@127.0.0.1:1/x: "
    )
    assert error.endswith("(gave up after 1 s; see --startup-timeout-s)")
    assert "waiting for a service" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    unknown = db("downgrade", "0999", url=database_url, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "0999" in unknown.stderr and "Traceback" not in unknown.stderr
