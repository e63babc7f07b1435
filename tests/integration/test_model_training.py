"""Training and benchmarking a model for real (torch fine-tuning, ONNX export, ONNX Runtime)
through `sentiment-stream model`: slow, so outside the unit lane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from model.metadata import ModelMetadata
from sentiment_stream.cli import main


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["model", "--log-level", "WARNING", *args])


@pytest.mark.slow
def test_train_exports_evaluates_and_gates(
    tiny_model_dir: Path, sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "trained"
    result = invoke(
        "train", "--base", str(tiny_model_dir.parent / "checkpoint"),
        "--data", str(sample_dir), "--out", str(out),
        "--checkpoint-out", str(tmp_path / "checkpoint"),
        "--train-split", "val[0:96]", "--eval-split", "val[100:200]",
        "--epochs", "1", "--lr", "1e-3", "--min-macro-recall", "0.99",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "below --min-macro-recall 0.99" in result.output
    metadata = ModelMetadata.read(out)
    assert metadata.quantization == "int8-static"
    assert metadata.training is not None
    assert metadata.training["train_splits"] == ["val[0:96]"]
    assert metadata.training["eval_splits"] == ["val[100:200]"]
    assert metadata.training["train_examples"] == 96
    assert metadata.metrics is not None
    assert metadata.metrics["splits"] == ["val[100:200]"]
    assert (tmp_path / "checkpoint" / "config.json").is_file()


@pytest.mark.slow
def test_bench_last_line_is_json(tiny_model_dir: Path, sample_dir: Path) -> None:
    result = invoke(
        "bench", "--model", str(tiny_model_dir), "--data", str(sample_dir),
        "--checkpoint", str(tiny_model_dir.parent / "checkpoint"),
        "--split", "val[0:120]", "--limit", "120", "--pipeline-limit", "16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    for key in (
        "scorer_tweets_per_s", "pipeline_tweets_per_s", "torch_batched_tweets_per_s",
        "bare_ort_tweets_per_s", "scorer_vs_pipeline", "scorer_vs_bare_ort",
        "int8_macro_recall", "fp32_macro_recall", "int8_minus_fp32_macro_recall_points",
    ):  # fmt: skip
        assert key in figures
    assert figures["tweets"] == 120
    assert figures["pipeline_tweets"] == 16
    assert figures["scorer_tweets_per_s"] > 0
