"""Bad model folders give ModelLoadError with a message that says what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model.metadata import ModelMetadata, file_sha256, model_version
from model.scorer import ModelLoadError, Scorer


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def test_the_tiny_model_folder_is_complete(tiny_model_dir: Path) -> None:
    metadata = ModelMetadata.read(tiny_model_dir)
    assert metadata.quantization == "int8-static"
    assert metadata.labels == ("negative", "neutral", "positive")
    assert metadata.onnx_sha256 == file_sha256(tiny_model_dir / metadata.onnx_file)
    assert metadata.version == model_version(metadata.source_checkpoint, metadata.onnx_sha256)
    assert metadata.version.endswith("-" + metadata.onnx_sha256[:12])
    assert metadata.opset >= 11
    assert (tiny_model_dir / "tokenizer.json").is_file()
    assert (tiny_model_dir / "model.onnx").stat().st_size < 5_000_000


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"does not exist.*model export"):
        Scorer.load(tmp_path / "nowhere")


def test_missing_metadata(model_copy: Path) -> None:
    (model_copy / "metadata.json").unlink()
    with pytest.raises(ModelLoadError, match=r"metadata\.json does not exist"):
        Scorer.load(model_copy)


def test_corrupt_metadata_json(model_copy: Path) -> None:
    (model_copy / "metadata.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not valid model metadata"):
        Scorer.load(model_copy)


def test_metadata_missing_a_field(model_copy: Path) -> None:
    document = json.loads((model_copy / "metadata.json").read_text(encoding="utf-8"))
    del document["labels"]
    (model_copy / "metadata.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="labels"):
        Scorer.load(model_copy)


def test_missing_onnx_file(model_copy: Path) -> None:
    (model_copy / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match=r"model\.onnx is missing"):
        Scorer.load(model_copy)


def test_changed_onnx_file_fails_the_checksum(model_copy: Path) -> None:
    with (model_copy / "model.onnx").open("ab") as file:
        file.write(b"\0")
    with pytest.raises(ModelLoadError, match=r"sha256.*changed or corrupted"):
        Scorer.load(model_copy)


def test_garbage_onnx_file_with_matching_checksum(model_copy: Path) -> None:
    onnx_path = model_copy / "model.onnx"
    onnx_path.write_bytes(b"this is not a protobuf")
    metadata = ModelMetadata.read(model_copy)
    metadata.with_updates(onnx_sha256=file_sha256(onnx_path)).write(model_copy)
    with pytest.raises(ModelLoadError, match="ONNX Runtime cannot load"):
        Scorer.load(model_copy)


def test_missing_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer"):
        Scorer.load(model_copy)


def test_label_count_must_match_the_model_output(model_copy: Path) -> None:
    metadata = ModelMetadata.read(model_copy)
    metadata.with_updates(labels=("negative", "positive")).write(model_copy)
    with pytest.raises(ModelLoadError, match="outputs 3 scores"):
        Scorer.load(model_copy)


def test_metadata_round_trip(model_copy: Path) -> None:
    metadata = ModelMetadata.read(model_copy)
    updated = metadata.with_updates(metrics={"macro_recall": 0.5})
    updated.write(model_copy)
    assert ModelMetadata.read(model_copy) == updated
    assert ModelMetadata.read(model_copy).metrics == {"macro_recall": 0.5}
