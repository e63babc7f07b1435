"""Training options on the tiny model: the frozen bottom (cached states give exactly the full
model's logits, and frozen weights never move) and knowledge distillation (teachers' soft targets
on training and unlabelled tweets, with the evaluation lines kept out)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from model.data import DataError
from model.distill import read_unlabelled, teacher_probabilities
from model.frozen import FrozenBottom, pad
from model.metadata import ModelMetadata
from sentiment_stream.cli import main

TEXTS = ["I love it so much", "worst day ever, really", "ok", "the meeting is at 3pm on tuesday"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["model", "--log-level", "WARNING", *args])


@pytest.fixture
def tiny_checkpoint(tiny_model_dir: Path) -> Path:
    return tiny_model_dir.parent / "checkpoint"


def test_cached_bottom_gives_the_full_models_logits(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint).eval()
    ids = tokenizer(TEXTS)["input_ids"]
    input_ids, mask = pad(ids, tokenizer.pad_token_id)
    with torch.inference_mode():
        full = model(input_ids=input_ids, attention_mask=mask).logits
    frozen = FrozenBottom(model, 1)
    cache = tmp_path / f"{frozen.cache_key(str(tiny_checkpoint), ids)}.pt"
    frozen.compute(ids, tokenizer.pad_token_id, cache)
    with torch.inference_mode(), frozen.top_only():
        frozen.select([0, 1, 2, 3])
        top = model(input_ids=input_ids, attention_mask=mask).logits
    assert torch.allclose(full, top, atol=1e-5)
    again = FrozenBottom(model, 1)  # a later run: the states come from the cache file
    again.compute(ids, tokenizer.pad_token_id, cache)
    with torch.inference_mode(), again.top_only():
        again.select([3, 2])
        cached = model(input_ids=input_ids[[3, 2]], attention_mask=mask[[3, 2]]).logits
    assert torch.allclose(full[[3, 2]], cached, atol=1e-5)
    assert again.cache_key(str(tiny_checkpoint), ids[:2]) != again.cache_key(
        str(tiny_checkpoint), ids
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "roberta.encoder.layer.1.output.dense.weight" in trainable
    assert "classifier.out_proj.weight" in trainable
    assert "roberta.encoder.layer.0.output.dense.weight" not in trainable
    assert "roberta.embeddings.word_embeddings.weight" not in trainable


def test_freeze_layers_must_leave_a_layer_to_train(tiny_checkpoint: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint)
    with pytest.raises(ValueError, match="between 1 and 1 for this 2-layer encoder"):
        FrozenBottom(model, 2)


def test_unlabelled_tweets_from_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "val_text.txt").write_text("one\n\ntwo\n", encoding="utf-8")
    (tmp_path / "a" / "val_labels.txt").write_text("0\n1\n", encoding="utf-8")
    (tmp_path / "more.txt").write_text("three\n", encoding="utf-8")
    assert read_unlabelled([tmp_path / "a", tmp_path / "more.txt"]) == ["one", "two", "three"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \*_text\.txt"):
        read_unlabelled([tmp_path / "empty"])


def test_teachers_are_averaged(tiny_model_dir: Path) -> None:
    labels = ("negative", "neutral", "positive")
    one = teacher_probabilities([tiny_model_dir], TEXTS, labels)
    two = teacher_probabilities([tiny_model_dir, tiny_model_dir], TEXTS, labels)
    assert one.shape == (4, 3)
    np.testing.assert_allclose(one.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(one, two, atol=1e-6)
    with pytest.raises(DataError, match="predicts"):
        teacher_probabilities([tiny_model_dir], TEXTS, ("bad", "good"))


def test_teacher_probabilities_are_cached_per_teacher_and_texts(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.scorer import Scorer

    labels = ("negative", "neutral", "positive")
    first = teacher_probabilities([tiny_model_dir], TEXTS, labels, tmp_path)
    assert len(list(tmp_path.glob("teacher-*.npy"))) == 1

    def no_scoring(*_args: object) -> None:
        raise AssertionError("scored again despite the cache")

    monkeypatch.setattr(Scorer, "score", no_scoring)
    np.testing.assert_array_equal(
        teacher_probabilities([tiny_model_dir], TEXTS, labels, tmp_path), first
    )
    with pytest.raises(AssertionError, match="scored again"):  # other texts: another key
        teacher_probabilities([tiny_model_dir], TEXTS[:2], labels, tmp_path)


@pytest.mark.slow
def test_distilled_training_with_a_frozen_bottom(
    tiny_model_dir: Path,
    tiny_checkpoint: Path,
    tweeteval_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unlabelled = tmp_path / "unlabelled.txt"
    unlabelled.write_text("what a day\nnot again\n", encoding="utf-8")
    out = tmp_path / "student"
    args = [
        "train", "--base", str(tiny_checkpoint), "--data", str(tweeteval_dir),
        "--out", str(out), "--checkpoint-out", str(tmp_path / "checkpoint"),
        "--train-split", "val[0:64]", "--eval-split", "test[0:50]", "--epochs", "1",
        "--freeze-layers", "1", "--teacher", str(tiny_model_dir),
        "--unlabelled", str(unlabelled), "--distill-weight", "0.7",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["/venv/bin/sentiment-stream", "model", *args])
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    training = ModelMetadata.read(out).training
    assert training is not None
    assert training["freeze_layers"] == 1
    assert training["teachers"] == [str(tiny_model_dir)]
    assert training["unlabelled_examples"] == 2
    assert training["train_examples"] == 64
    assert training["distill_weight"] == 0.7
    assert training["command"] == shlex.join(["sentiment-stream", "model", *args])
    metrics = ModelMetadata.read(out).metrics
    assert metrics is not None
    assert metrics["command"] == training["command"]


def test_unlabelled_tweets_must_not_be_evaluation_tweets(
    tiny_model_dir: Path, tweeteval_dir: Path, tmp_path: Path
) -> None:
    evaluated = (tweeteval_dir / "sentiment" / "test_text.txt").read_text("utf-8").split("\n")[7]
    leaky = tmp_path / "leaky.txt"
    leaky.write_text(f"fine tweet\n{evaluated}\n", encoding="utf-8")
    result = invoke(
        "train", "--base", "unused", "--data", str(tweeteval_dir), "--out", str(tmp_path / "o"),
        "--train-split", "val[0:10]", "--eval-split", "test[0:10]",
        "--teacher", str(tiny_model_dir), "--unlabelled", str(leaky),
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "1 --unlabelled tweets are evaluation tweets" in result.output


def test_unlabelled_tweets_need_a_teacher(tweeteval_dir: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("a tweet\n", encoding="utf-8")
    result = invoke(
        "train", "--base", "unused", "--data", str(tweeteval_dir), "--out", str(tmp_path / "o"),
        "--train-split", "val[0:10]", "--eval-split", "test[0:10]", "--unlabelled", str(extra),
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--unlabelled tweets need a --teacher" in result.output
