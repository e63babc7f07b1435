"""`model retrain` on a real PostgreSQL with the tiny model: posts and late labels stored by the
real sink; a first retrain beats the random active model and is promoted with its checkpoint
and drift profile; a second one, trained on shuffled labels, starts from that checkpoint, is
refused by the gate and stays in shadow; no evaluation post is ever trained on.

The posts say what they feel in one word of three small vocabularies, a task the tiny model
learns in a few epochs (TweetEval is beyond it), so the gate's two verdicts are clear-cut.
"""

from __future__ import annotations

import importlib.util
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model.data import read_split
from model.profile import PROFILE_FILE
from model.scorer import Scorer
from model.tiny import trainable_checkpoint
from registry.store import CHECKPOINT_KEY, ModelRegistry
from retrain.dataset import Holdout, text_key
from retrain.loop import HELD_OUT_SPLIT, TRAIN_SPLIT, RetrainError, RetrainOptions, retrain
from storage.gold_labels import GoldLabels
from storage.sink import PostgresSink
from stream_core.records import GoldLabel, ScoredPost
from tests.fixtures.pipeline import migrated

pytestmark = pytest.mark.integration

POSTS = 900
OTHER_LANGUAGE = 40  # Spanish posts: the tiny model reads English only
WORDS = {
    "negative": ("hate", "awful", "terrible", "worst"),
    "neutral": ("meeting", "tuesday", "report", "schedule"),
    "positive": ("love", "great", "awesome", "best"),
}
THINGS = ("phone", "coffee", "game", "train", "update", "show")


def feeling_posts(n: int, seed: int = 1) -> tuple[list[str], list[str]]:
    """``n`` distinct texts and their labels: the label is the vocabulary of its one word."""
    rng = random.Random(seed)
    labels = [rng.choice(sorted(WORDS)) for _ in range(n)]
    texts = [
        f"{rng.choice(WORDS[label])} {rng.choice(THINGS)} {i}" for i, label in enumerate(labels)
    ]
    return texts, labels


def store_stream(
    database_url: str, scorer: Scorer, texts: list[str], langs: list[str], start: datetime
) -> list[str]:
    """Score and store one post per text (two seconds apart) through the real sink; their ids."""
    sink = PostgresSink(database_url, labels=scorer.labels, parts=[GoldLabels()])
    ids = [f"post-{i}" for i in range(len(texts))]
    try:
        for first in range(0, len(texts), 128):
            chunk = range(first, min(first + 128, len(texts)))
            scores = scorer.score([texts[i] for i in chunk])
            posts = [
                ScoredPost(
                    post_id=ids[i],
                    text=texts[i],
                    lang=langs[i],
                    topic="posts",
                    partition=0,
                    offset=i,
                    kafka_timestamp=start + timedelta(seconds=2 * i),
                    label=scorer.labels[int(scores.label_ids[j])],
                    probabilities=tuple(float(p) for p in scores.probabilities[j]),
                    model_version=scorer.version,
                )
                for j, i in enumerate(chunk)
            ]
            sink.write_batch(posts)
    finally:
        sink.close()
    return ids


def store_labels(database_url: str, labels: dict[str, str], offset: int) -> None:
    """Late gold labels through the real sink (a later message replaces a post's label)."""
    sink = PostgresSink(
        database_url, labels=("negative", "neutral", "positive"), parts=[GoldLabels()]
    )
    now = datetime.now(UTC)
    try:
        rows = [
            GoldLabel(
                post_id=post_id,
                label=label,
                received_at=now,
                topic="posts.labels",
                partition=0,
                offset=offset + n,
            )
            for n, (post_id, label) in enumerate(sorted(labels.items()))
        ]
        sink.write_batch((), rows)
    finally:
        sink.close()


def data_texts(folder: Path, split: str) -> set[str]:
    return {text_key(t.text) for t in read_split(folder / "data", split)}


def test_retrain_promotes_a_better_candidate_refuses_a_worse_one_and_never_leaks(
    database_url: str,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = migrated(database_url)
    registry = ModelRegistry(url)
    tiny = registry.register(tiny_model_dir, actor="test").version.version
    registry.promote(tiny, reason="the random tiny model", actor="test")
    scorer = Scorer.load(tiny_model_dir)

    texts, gold = feeling_posts(POSTS)
    # The same text early and late (a retweet): it must end up on one side only.
    texts[POSTS - 1] = texts[3]
    gold[POSTS - 1] = gold[3]
    langs = ["en"] * POSTS
    for i in range(0, OTHER_LANGUAGE * 20, 20):
        langs[i] = "es"
    start = datetime.now(UTC) - timedelta(hours=1)
    ids = store_stream(url, scorer, texts, langs, start)
    store_labels(url, dict(zip(ids, gold, strict=True)), offset=0)
    options = RetrainOptions(
        since=timedelta(days=1),
        holdout=Holdout.parse("20%"),
        base=str(trainable_checkpoint(tiny_model_dir.parent / "checkpoint", tmp_path / "base")),
        epochs=3,
        learning_rate=3e-3,
        promote_margin=0.05,
        shadow=True,
        min_train=200,
        min_held_out=100,
    )
    cache = tmp_path / "cache"

    with pytest.raises(RetrainError, match=r"needs at least 5000 examples and has \d+"):
        retrain(url, options.__class__(**{**vars(options), "min_train": 5000}), cache_dir=cache)

    first = retrain(
        url, RetrainOptions(**{**vars(options), "out": tmp_path / "one"}), cache_dir=cache
    )
    assert first.started_from == f"the base {options.base}"
    assert first.gate.active is not None
    assert first.gate.candidate > first.gate.active + 0.05, first.gate
    assert first.status == "active"
    stored = registry.get(first.version)
    assert stored.status == "active"
    assert stored.metadata["metrics"]["macro_recall"] == pytest.approx(
        first.gate.candidate, abs=1e-4
    )
    assert stored.metadata["metrics"]["active"]["macro_recall"] == pytest.approx(
        first.gate.active, abs=1e-4
    )
    assert stored.metadata["training"]["gate"]["promote"] is True
    assert set(stored.metadata["training"]["stage_seconds"]) == {
        "read",
        "dataset",
        "train",
        "export",
        "evaluate",
    }
    assert CHECKPOINT_KEY in stored.metadata
    served = registry.fetch(first.version, tmp_path / "served")
    assert (served / PROFILE_FILE).is_file()
    assert not (served / "model.safetensors").exists()  # consumers never download the checkpoint

    # No leak, by id and by text; Spanish posts neither trained on nor evaluated.
    data = first.data
    assert not data.trained_post_ids & data.held_out_post_ids
    assert not data_texts(tmp_path / "one", TRAIN_SPLIT) & data_texts(
        tmp_path / "one", HELD_OUT_SPLIT
    )
    spanish = {ids[i] for i in range(POSTS) if langs[i] == "es"}
    assert not spanish & (data.trained_post_ids | data.held_out_post_ids)
    assert {ids[3], ids[POSTS - 1]} <= data.held_out_post_ids
    assert len(data.held_out) >= 100

    # Shuffled labels on the training posts (the held-out ones stay true): a worse candidate.
    rng = random.Random(7)
    held = data.held_out_post_ids
    shuffled = {post_id: rng.choice(scorer.labels) for post_id in ids if post_id not in held}
    store_labels(url, shuffled, offset=POSTS)
    tracking = importlib.util.find_spec("mlflow") is not None  # extra "tracking"
    if tracking:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        monkeypatch.chdir(tmp_path)  # MLflow's artifacts go to ./mlruns
    second = retrain(
        url, RetrainOptions(**{**vars(options), "out": tmp_path / "two"}), cache_dir=cache
    )
    assert second.started_from == f"the checkpoint of the active version {first.version}"
    assert second.gate.active == pytest.approx(first.gate.candidate, abs=1e-9)
    assert not second.gate.promote, second.gate
    assert second.status == "shadow"
    assert registry.with_status("active").version == first.version  # type: ignore[union-attr]
    assert registry.get(second.version).status == "shadow"
    assert not second.data.trained_post_ids & second.data.held_out_post_ids

    if not tracking:
        assert second.mlflow_run_id is None
        return
    import mlflow

    assert second.mlflow_run_id is not None
    assert (
        registry.get(second.version).metadata["training"]["mlflow_run_id"] == second.mlflow_run_id
    )
    run = mlflow.MlflowClient().get_run(second.mlflow_run_id)
    assert run.data.metrics["candidate_macro_recall"] == pytest.approx(second.gate.candidate)
    assert run.data.metrics["active_macro_recall"] == pytest.approx(second.gate.active)
    assert run.data.params["promote_margin"] == "0.05"
