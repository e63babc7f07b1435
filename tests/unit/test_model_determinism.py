"""int8-static scores are a pure function of the text: random batches of 1-64 shuffled long and
short posts, 1 and 2 intra-op threads, any batch-mates, all within 1e-6 of one-by-one scoring.
Also the device choice (SENTIMENT_MODEL_DEVICE), tested on CPU: no GPU here."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from model import scorer as scorer_module
from model.data import read_split
from model.export import export_model
from model.metadata import LegacyQuantizationWarning, ModelMetadata
from model.scorer import ModelLoadError, Scorer, execution_providers
from model.settings import DEFAULT_MODEL_DIR, ModelSettings
from stream_core.cli_options import load_settings

ROUNDS = 12


@pytest.fixture(scope="module")
def posts(sample_dir: Path) -> list[str]:
    """Val tweets plus posts longer than max_length tokens and one-word ones."""
    tweets = [t.text for t in read_split(sample_dir, "val[0:300]")]
    long = [" ".join(tweets[i : i + 12]) for i in range(0, 96, 12)]
    short = ["a", "ok!", "meh", "😂", "@user", "#fail", "love it", "no"]
    return tweets + long + short


def assert_batch_invariant(model_dir: Path, posts: list[str], seed: int) -> None:
    alone = Scorer.load(model_dir, threads=1, batch_size=1)
    reference = {text: alone.score([text]).probabilities[0] for text in set(posts)}
    rng = np.random.default_rng(seed)
    for threads in (1, 2):
        for sub_batch in (8, 64):
            scorer = Scorer.load(model_dir, threads=threads, batch_size=sub_batch)
            for _ in range(ROUNDS):
                picked = rng.choice(len(posts), size=int(rng.integers(1, 65)), replace=False)
                batch = [posts[i] for i in picked]
                got = scorer.score(batch).probabilities
                expected = np.stack([reference[text] for text in batch])
                np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_tiny_int8_static_scores_do_not_depend_on_batch_mates(
    tiny_model_dir: Path, posts: list[str]
) -> None:
    assert ModelMetadata.read(tiny_model_dir).quantization == "int8-static"
    assert_batch_invariant(tiny_model_dir, posts, seed=15)


def test_the_shipped_default_scores_do_not_depend_on_batch_mates(posts: list[str]) -> None:
    assert ModelMetadata.read(DEFAULT_MODEL_DIR).quantization == "int8-static"
    assert_batch_invariant(DEFAULT_MODEL_DIR, posts, seed=16)


def test_the_metadata_records_how_the_scales_were_chosen(tiny_model_dir: Path) -> None:
    details = ModelMetadata.read(tiny_model_dir).quantization_details
    assert details is not None
    assert details["quantised_matmuls"] >= 12  # Q, K, V, output and two FFN per layer
    assert "val" in details["calibration"]


def test_legacy_int8_folders_are_read_as_int8_dynamic_with_a_warning(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "old"))
    raw = (folder / "metadata.json").read_text("utf-8")
    (folder / "metadata.json").write_text(raw.replace('"int8-static"', '"int8"'), "utf-8")
    with pytest.warns(LegacyQuantizationWarning, match="batched with"):
        assert ModelMetadata.read(folder).quantization == "int8-dynamic"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ModelMetadata.read(tiny_model_dir).quantization == "int8-static"


def test_the_device_picks_the_execution_providers() -> None:
    cpu_only = ["CPUExecutionProvider"]
    with_gpu = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert execution_providers("cpu", with_gpu) == cpu_only
    assert execution_providers("auto", cpu_only) == cpu_only
    for device in ("auto", "cuda"):
        providers = execution_providers(device, with_gpu)
        assert providers[0][0] == "CUDAExecutionProvider"
        assert providers[-1] == "CPUExecutionProvider"  # what CUDA lacks runs on the CPU
    with pytest.raises(ModelLoadError, match="onnxruntime-gpu"):
        execution_providers("cuda", cpu_only)


def test_auto_scores_like_cpu_here(tiny_model_dir: Path, posts: list[str]) -> None:
    """No GPU on the test machines: auto falls back to the CPU, with the same scores; the
    determinism test above is what a GPU machine must pass too (SENTIMENT_MODEL_DEVICE=cuda)."""
    auto = Scorer.load(tiny_model_dir, device="auto")
    cpu = Scorer.load(tiny_model_dir, device="cpu")
    assert "CPUExecutionProvider" in auto.session.get_providers()
    np.testing.assert_array_equal(auto.score(posts).probabilities, cpu.score(posts).probabilities)


def test_the_device_setting_has_a_flat_env_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_MODEL_DEVICE", "cpu")
    assert load_settings(ModelSettings, {}).model_device == "cpu"
    monkeypatch.delenv("SENTIMENT_MODEL_DEVICE")
    assert load_settings(ModelSettings, {}).model_device == "auto"


def test_an_int8_static_export_does_not_depend_on_the_cores(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calibration feeds are cut the same way however many cores share a batch at scoring
    time, so one checkpoint exports to the same graph on every machine."""
    exported = []
    for cores in (1, 2):
        monkeypatch.setattr(scorer_module, "available_cores", lambda cores=cores: cores)
        out = tmp_path / f"cores-{cores}"
        export_model(str(tiny_model_dir.parent / "checkpoint"), out, quantization="int8-static")
        exported.append(ModelMetadata.read(out).onnx_sha256)
    assert exported[0] == exported[1]
