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


def test_bench_without_the_checkpoint_prints_the_ceiling(
    tiny_model_dir: Path, sample_dir: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    metadata = ModelMetadata.read(model_dir)
    (model_dir / "metadata.json").write_text(
        metadata.model_copy(update={"source_checkpoint": str(tmp_path / "gone")}).model_dump_json()
    )
    result = invoke(
        "bench", "--model", str(model_dir), "--data", str(sample_dir), "--split", "val",
        "--limit", "300", "--threads", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the ceiling only" in result.output
    figures = json.loads(result.output.splitlines()[-1])
    assert figures["tweets"] == 300 and figures["ceiling_sub_batch"] in (32, 64)
    assert figures["ceiling_tweets_per_s"] > 0 and "cpu" in figures
