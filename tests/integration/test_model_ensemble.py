"""SmoothQuant (model/smoothing.py) and ensembles (model/ensemble.py) on the tiny model: the
smoothed fp32 graph computes the same logits, an ensemble's probabilities are the weighted mean
of its members', a member that numbers its tokens otherwise is remapped exactly, and `model build`
joins the trained model with its partner and can reuse a trained checkpoint."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from model import catalogue, catalogue_cli
from model.data import read_split
from model.ensemble import EnsembleError, Member, build_ensemble, vocabulary_table
from model.export import ModelExportError, export_model
from model.metadata import ModelMetadata
from model.recipes import RECIPES
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from model.smoothing import channel_maxima, smooth, smoothed_inputs
from sentiment_stream.cli import main


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["model", "--log-level", "WARNING", *args])


@pytest.fixture(scope="module")
def texts(sample_dir: Path) -> list[str]:
    return [t.text for t in read_split(sample_dir, "val")]


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_model_dir: Path) -> Path:
    return tiny_model_dir.parent / "checkpoint"


@pytest.fixture(scope="module")
def tiny_fp32(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fp32") / "model"
    export_model(str(tiny_checkpoint), out, quantization="none", preprocessing="cardiffnlp")
    return out


def _renumbered(checkpoint: Path, out: Path, seed: int) -> Path:
    """A copy of the tiny checkpoint that reads text into the same pieces but numbers them in
    another order, calls ``<s>``/``</s>`` ``[CLS]``/``[SEP]`` (as MPNet and BERT differ), and
    has another classifier: another model behind another vocabulary."""
    import torch
    from transformers import AutoModelForSequenceClassification

    shutil.copytree(checkpoint, out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        path = out / name
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"<s>"', '"[CLS]"').replace('"</s>"', '"[SEP]"'))
    tokenizer = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    vocabulary: dict[str, int] = tokenizer["model"]["vocab"]
    size = len(vocabulary)
    order = np.arange(size)
    order[5:] = 5 + np.random.default_rng(seed).permutation(size - 5)  # specials keep 0..4
    tokenizer["model"]["vocab"] = {token: int(order[i]) for token, i in vocabulary.items()}
    (out / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    model = AutoModelForSequenceClassification.from_pretrained(out)
    with torch.no_grad():
        table = model.roberta.embeddings.word_embeddings.weight
        moved = table.clone()
        moved[torch.from_numpy(order)] = table
        table.copy_(moved)
        torch.manual_seed(seed)
        model.classifier.out_proj.weight.add_(torch.randn_like(model.classifier.out_proj.weight))
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def renumbered_model(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("renumbered")
    checkpoint = _renumbered(tiny_checkpoint, work / "checkpoint", seed=7)
    export_model(str(checkpoint), work / "model", preprocessing="cardiffnlp")
    return work / "model"


def _logits(folder: Path, texts: list[str], graph: Path | None = None) -> np.ndarray:
    import onnxruntime as ort

    scorer = Scorer.load(folder)
    session = ort.InferenceSession(str(graph or folder / "model.onnx"))
    name = session.get_outputs()[0].name
    out = np.empty((len(texts), len(scorer.labels)), dtype=np.float32)
    for rows, feeds in scorer.batches(texts):
        out[rows] = session.run([name], feeds)[0]
    return out


def test_smoothing_keeps_the_fp32_logits_and_flattens_the_channels(
    tiny_fp32: Path, texts: list[str], tmp_path: Path
) -> None:
    import onnx

    model = onnx.load(str(tiny_fp32 / "model.onnx"))
    scorer = Scorer.load(tiny_fp32)
    tensors = sorted(smoothed_inputs(model))
    before = channel_maxima(model, tensors, (f for _r, f in scorer.batches(texts[:256])))
    assert smooth(model, before, alpha=0.75) == len(tensors) > 0
    smoothed = tmp_path / "smoothed.onnx"
    onnx.save(model, str(smoothed))
    expected = _logits(tiny_fp32, texts[:500])
    assert np.allclose(_logits(tiny_fp32, texts[:500], smoothed), expected, atol=1e-4)
    after = channel_maxima(
        model, [f"{t}_smoothed" for t in tensors], (f for _r, f in scorer.batches(texts[:256]))
    )
    for name in tensors:
        spread_before = before[name].max() / np.median(before[name])
        spread_after = after[f"{name}_smoothed"].max() / np.median(after[f"{name}_smoothed"])
        assert spread_after < spread_before, name


def test_smoothquant_export_is_recorded_and_kept_by_reexport(
    tiny_checkpoint: Path, sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sq"
    metadata = export_model(str(tiny_checkpoint), out, smoothquant=0.75, preprocessing="cardiffnlp")
    details = metadata.quantization_details or {}
    assert details["smoothquant"]["alpha"] == 0.75
    assert details["smoothquant"]["smoothed_activations"] > 0
    probabilities = Scorer.load(out).score(["I love it", "worst day ever"]).probabilities
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    evaluated = invoke(
        "evaluate", "--model", str(out), "--data", str(sample_dir), "--split", "val[0:40]"
    )
    assert evaluated.exit_code == 0, evaluated.output
    again = invoke(
        "reexport", "--model", str(out), "--data", str(sample_dir), "--checkpoint",
        str(tiny_checkpoint),
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    kept = ModelMetadata.read(out).quantization_details or {}
    assert kept["smoothquant"]["alpha"] == 0.75
    with pytest.raises(ModelExportError, match="SmoothQuant prepares a graph for int8-static"):
        export_model(str(tiny_checkpoint), tmp_path / "no", quantization="int8-dynamic",
                     smoothquant=0.5)  # fmt: skip


def test_an_ensemble_scores_the_weighted_mean_of_its_members(
    tiny_model_dir: Path, tiny_fp32: Path, texts: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "joined"
    metadata = build_ensemble(
        [Member(tiny_model_dir, 1.0), Member(tiny_fp32, 3.0)], out, name="both", check_texts=texts
    )
    assert metadata.version.startswith("both-")
    assert metadata.quantization == "int8-static"  # the weakest guarantee of its members
    members = (metadata.ensemble or {})["members"]
    assert [m["weight"] for m in members] == [0.25, 0.75]
    assert members[1]["vocabulary"] == "the first member's"
    first = Scorer.load(tiny_model_dir).score(texts[:300]).probabilities
    second = Scorer.load(tiny_fp32).score(texts[:300]).probabilities
    joined = Scorer.load(out).score(texts[:300]).probabilities
    assert np.allclose(joined, 0.25 * first + 0.75 * second, atol=1e-6)


def test_a_member_with_another_vocabulary_is_remapped_exactly(
    tiny_model_dir: Path, renumbered_model: Path, texts: list[str], tmp_path: Path
) -> None:
    table = vocabulary_table(tiny_model_dir, renumbered_model)
    assert table is not None
    assert table[0] == 0  # <s> -> [CLS]: by role, not by string
    out = tmp_path / "remapped"
    metadata = build_ensemble(
        [Member(tiny_model_dir, 0.5), Member(renumbered_model, 0.5)],
        out,
        name="remapped",
        check_texts=texts,
    )
    vocabulary = (metadata.ensemble or {})["members"][1]["vocabulary"]
    assert vocabulary.startswith("remapped by a lookup table") and "2000 tweets" in vocabulary
    first = Scorer.load(tiny_model_dir).score(texts).probabilities
    second = Scorer.load(renumbered_model).score(texts).probabilities
    assert not np.allclose(first, second, atol=1e-3)  # two different models
    joined = Scorer.load(out).score(texts).probabilities
    assert np.allclose(joined, 0.5 * (first + second), atol=1e-6)


def test_members_that_tokenise_otherwise_or_disagree_are_refused(
    tiny_model_dir: Path, texts: list[str], tmp_path: Path
) -> None:
    with pytest.raises(EnsembleError, match=r"splits \d+ of 2000 tweets unlike"):
        build_ensemble(
            [Member(DEFAULT_MODEL_DIR, 1), Member(tiny_model_dir, 1)],
            tmp_path / "no",
            name="no",
            check_texts=texts,
        )
    other = Path(shutil.copytree(tiny_model_dir, tmp_path / "other"))
    metadata = ModelMetadata.read(other)
    metadata.with_updates(labels=tuple(reversed(metadata.labels))).write(other)
    with pytest.raises(EnsembleError, match="must share labels"):
        build_ensemble(
            [Member(tiny_model_dir, 1), Member(other, 1)], tmp_path / "no", name="no",
            check_texts=texts,
        )  # fmt: skip


def test_model_ensemble_command_writes_a_profiled_folder_that_reexport_refuses(
    tiny_model_dir: Path, tiny_fp32: Path, sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "joined"
    result = invoke(
        "ensemble", "--model", str(tiny_model_dir), "--model", str(tiny_fp32), "--weight", "2",
        "--weight", "1", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "profile.json").is_file()
    assert "0.666667" in result.output
    refused = invoke("reexport", "--model", str(out), "--data", str(sample_dir))
    assert refused.exit_code == 2
    assert "is an ensemble" in refused.output
    wrong = invoke("ensemble", "--model", str(tiny_model_dir), "--model", str(tiny_fp32),
                   "--weight", "1", "--out", str(tmp_path / "no"))  # fmt: skip
    assert wrong.exit_code == 2
    assert "1 --weight for 2 --model" in wrong.output


def test_build_joins_the_trained_model_and_reuses_its_checkpoint(
    tiny_model_dir: Path,
    tiny_checkpoint: Path,
    sample_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    partner = Path(shutil.copytree(tiny_model_dir, tmp_path / "partner"))
    monkeypatch.setattr(catalogue, "DEFAULT_MODEL_DIR", partner)
    recipe = dataclasses.replace(
        RECIPES["accurate"],
        base=lambda _cache: tiny_checkpoint,
        train={"epochs": 1, "lr": 1e-3, "batch_size": 32, "smoothquant": 0.75},
        min_macro_recall=0.0,
    )
    monkeypatch.setitem(RECIPES, "accurate", recipe)
    monkeypatch.setattr(catalogue_cli, "TRAIN_SPLITS", ("val[0:300]",))
    monkeypatch.setattr(catalogue_cli, "EVAL_SPLITS", ("val[1800:2000]",))
    monkeypatch.setenv("SENTIMENT_MODELS_DIR", str(tmp_path / "models"))
    built = invoke("build", "accurate", "--data", str(sample_dir))
    assert built.exit_code == 0, built.output
    folder = tmp_path / "models" / "accurate"
    metadata = ModelMetadata.read(folder)
    members = (metadata.ensemble or {})["members"]
    assert [m["folder"] for m in members] == [str(partner), str(folder) + "-mpnet"]
    assert members[1]["smoothquant"]["alpha"] == 0.75
    assert (metadata.metrics or {})["splits"] == ["val[1800:2000]"]
    assert not (tmp_path / "models" / "accurate.candidate").exists()
    checkpoint = tmp_path / "models" / "checkpoints" / "accurate-seed42"
    record = json.loads((checkpoint / "training.json").read_text(encoding="utf-8"))
    again = invoke("build", "accurate", "--data", str(sample_dir), "--reuse-checkpoint")
    assert again.exit_code == 0, again.output
    assert "reusing the checkpoint" in again.output
    member = ModelMetadata.read(tmp_path / "models" / "accurate-mpnet")
    assert member.training is not None
    assert member.training["epoch_losses"] == record["epoch_losses"]
    assert "reused_by" in member.training
    high = dataclasses.replace(recipe, min_macro_recall=1.0)
    monkeypatch.setitem(RECIPES, "accurate", high)
    failed = invoke("build", "accurate", "--data", str(sample_dir), "--reuse-checkpoint")
    assert failed.exit_code == 1
    assert "below the accurate recipe's bar 1.0" in failed.output
    assert ModelMetadata.read(folder).version == metadata.version  # the working one stays
    student = dataclasses.replace(
        RECIPES["default"],
        base=lambda _cache: tiny_checkpoint,
        warm_start={"epochs": 1, "lr": 1e-3, "batch_size": 32},
        train={"epochs": 1, "lr": 1e-4, "batch_size": 32, "distill_weight": 0.7},
        unlabelled=(),
        min_macro_recall=0.0,
    )
    monkeypatch.setitem(RECIPES, "default", student)
    distilled = invoke("build", "default", "--data", str(sample_dir), "--out", str(tmp_path / "d"))
    assert distilled.exit_code == 0, distilled.output
    training = ModelMetadata.read(tmp_path / "d").training or {}
    warm = tmp_path / "models" / "checkpoints" / "default-warm-start-seed42"
    assert training["base"] == str(warm)  # the distillation started from the warm start
    assert training["teachers"] == [str(folder)]
    assert training["distill_weight"] == 0.7
    assert (warm / "training.json").is_file()
