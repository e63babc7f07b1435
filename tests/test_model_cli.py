"""`sentiment-stream model ...` end to end on the tiny model: clear errors, no tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from model.metadata import ModelMetadata
from sentiment_stream.cli import main


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["model", "--log-level", "WARNING", *args])


def test_evaluate_prints_records_and_plots(
    tiny_model_dir: Path, sample_dir: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    plot = tmp_path / "confusion.png"
    result = invoke(
        "evaluate", "--model", str(model_dir), "--data", str(sample_dir),
        "--split", "val[0:300]", "--plot", str(plot),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "macro recall" in result.output
    assert plot.read_bytes().startswith(b"\x89PNG")
    metrics = ModelMetadata.read(model_dir).metrics
    assert metrics is not None
    assert metrics["splits"] == ["val[0:300]"]
    assert metrics["n"] == 300
    assert sum(map(sum, metrics["confusion_matrix"])) == 300
    assert 0 <= metrics["macro_recall"] <= 1
    assert set(metrics["per_class"]) == {"negative", "neutral", "positive"}


def test_evaluate_on_a_broken_folder_is_one_clear_line(tmp_path: Path, sample_dir: Path) -> None:
    (tmp_path / "broken").mkdir()
    result = invoke("evaluate", "--model", str(tmp_path / "broken"), "--data", str(sample_dir))
    assert result.exit_code == 1
    assert "metadata.json does not exist" in result.output
    assert "Traceback" not in result.output


def test_export_offline_unknown_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("export", "--checkpoint", "nobody-here/nothing", "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "HF_HUB_OFFLINE" in result.output
    assert "local checkpoint folder" in result.output


def test_train_refuses_to_evaluate_on_training_lines(tmp_path: Path, sample_dir: Path) -> None:
    result = invoke(
        "train", "--base", "unused", "--data", str(sample_dir), "--out", str(tmp_path / "o"),
        "--train-split", "val[0:100]", "--eval-split", "val[50:150]",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "50 evaluation lines also train the model" in result.output


def test_bad_split_spec_is_a_usage_error(tmp_path: Path, sample_dir: Path) -> None:
    result = invoke(
        "train", "--base", "unused", "--data", str(sample_dir), "--out", str(tmp_path / "o"),
        "--train-split", "val[9:1]",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "bad split" in result.output


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
    assert metadata.quantization == "int8"
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
