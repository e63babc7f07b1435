"""The committed offline default model: loads with no network, scores sensibly, says what it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.settings import Settings
from model.metadata import ModelMetadata
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from stream_core.cli_options import load_settings


@pytest.fixture(scope="module")
def default_scorer() -> Scorer:
    return Scorer.load(DEFAULT_MODEL_DIR)


def test_settings_point_at_it() -> None:
    assert load_settings(Settings, {}).model == DEFAULT_MODEL_DIR


def test_it_is_small_int8_and_documented() -> None:
    metadata = ModelMetadata.read(DEFAULT_MODEL_DIR)
    size = sum(f.stat().st_size for f in Path(DEFAULT_MODEL_DIR).iterdir())
    assert size < 30_000_000
    assert metadata.quantization == "int8-static"
    # Distilled from the accurate model (issue 16), starting from the previous default's
    # checkpoint rebuilt out of its int8-dynamic export.
    assert metadata.provenance is not None
    assert "model.rebuild" in metadata.provenance
    assert metadata.labels == ("negative", "neutral", "positive")
    assert metadata.preprocessing == "cardiffnlp"
    assert metadata.metrics is not None
    assert metadata.metrics["macro_recall"] >= 0.71
    assert metadata.training is not None
    trained = set(metadata.training["train_splits"])
    evaluated = set(metadata.metrics["splits"])
    assert trained == {"val", "test[0:6000]"}
    assert evaluated == {"test[6000:8000]"}
    assert "73.7" in metadata.training["note"]
    assert metadata.training["distill_weight"] == 0.5
    assert [Path(t).name for t in metadata.training["teachers"]] == ["accurate"]
    assert metadata.training["unlabelled_examples"] > 3000


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I absolutely love this, best day ever!", "positive"),
        ("This is the worst service, I hate it so much", "negative"),
        ("The meeting is scheduled for 3pm on Tuesday.", "neutral"),
    ],
)
def test_obvious_tweets_get_the_obvious_label(
    default_scorer: Scorer, text: str, label: str
) -> None:
    assert default_scorer.predict(text).label == label
