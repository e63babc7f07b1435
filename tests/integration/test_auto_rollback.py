"""Automated rollback on a stream with gold labels (real broker and PostgreSQL, the tiny
model): a good candidate stays, a deliberately bad one (its labels rotated) is rolled back with
an audit row, an alert row and the callback the metric hangs on."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from model.scorer import Scorer
from registry.auto_rollback import ACTOR, ALERT_KIND, AutoRollback, RollbackPolicy, Verdict
from registry.live import LiveScorer
from registry.store import ModelRegistry
from storage.coordination import ChangeListener
from storage.model_registry import CHANNEL
from storage.urls import libpq_url
from stream_core.contract import GOLD_LABEL_HEADER
from tests.fixtures import pipeline as support
from tests.fixtures.registry import model_copy

pytestmark = pytest.mark.integration

BATCH = 150
POLICY = RollbackPolicy(margin=0.05, min_labelled=100)


def test_rolls_back_a_bad_candidate_and_keeps_a_good_one(
    kafka_bootstrap: str, database_url: str, topic: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    support.migrated(database_url)
    registry = ModelRegistry(database_url)
    original = registry.register(tiny_model_dir, actor="test").version.version
    registry.promote(original, actor="test")
    for name, rotate in (("tiny-good", False), ("tiny-rotated", True)):
        folder = model_copy(tiny_model_dir, tmp_path / name, name, rotate_labels=rotate)
        registry.register(folder, actor="test")
    reference = Scorer.load(tiny_model_dir)
    live = LiveScorer(registry, reference, cache_dir=tmp_path / "cache", load=Scorer.load)
    live.refresh()
    listener = ChangeListener(database_url, poll_s=1.0)
    listener.subscribe(CHANNEL, live.refresh_quietly)
    listener.start()
    rollbacks: list[Verdict] = []
    job = AutoRollback(registry, POLICY, on_rollback=rollbacks.append)
    support.create_topic(kafka_bootstrap, topic, 1)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    sent = 0

    def stream_labelled(version: str) -> None:
        """Once ``version`` serves: posts whose gold label is what the original model says."""
        nonlocal sent
        support.wait_until(lambda: live.version == version, 10, f"{version} to serve")
        values = [support.post_value(i) for i in range(sent, sent + BATCH)]
        texts = [json.loads(value)["text"] for value in values]
        gold = reference.score(texts).labels(reference.labels)
        headers = [[(GOLD_LABEL_HEADER, label.encode())] for label in gold]
        support.produce(kafka_bootstrap, topic, values, partitions=1, headers=headers)
        sent += BATCH
        support.wait_until(lambda: support.row_count(database_url) == sent, 60, "the rows")

    def judge() -> None:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            job.run(conn)

    try:
        with support.running_pipeline(settings, live):
            stream_labelled(original)
            registry.promote("tiny-good", actor="test")
            stream_labelled("tiny-good")
            judge()
            assert rollbacks == [] and registry.get("tiny-good").status == "active"

            registry.promote("tiny-rotated", actor="test")
            stream_labelled("tiny-rotated")
            judge()
            support.wait_until(lambda: live.version == "tiny-good", 10, "the rollback to serve")
    finally:
        listener.stop()

    (verdict,) = rollbacks
    assert (verdict.active, verdict.previous) == ("tiny-rotated", "tiny-good")
    assert verdict.active_recall == 0.0 and verdict.previous_recall == 1.0
    assert registry.get("tiny-rotated").status == "retired"
    last = registry.history(2)
    assert [(row["action"], row["actor"]) for row in last] == [("rollback", ACTOR)] * 2
    alerts = support.query(
        database_url, "SELECT kind, model_version, resolved_at IS NOT NULL FROM sentiment_alerts"
    )
    assert alerts == [(ALERT_KIND, "tiny-rotated", True)]
    judge()  # judged again: the restored version is as good as the one it replaced
    assert len(rollbacks) == 1
