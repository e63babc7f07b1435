"""TweetEval-format reading: splits, line ranges, label names, bad folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.data import (
    SAMPLE_DIR,
    TASK,
    DataError,
    SplitSpec,
    read_label_names,
    read_split,
    read_splits,
)
from tests.fixtures.services import ROOT


def test_label_names(sample_dir: Path) -> None:
    assert read_label_names(sample_dir) == ("negative", "neutral", "positive")


def test_the_bundled_sample_is_the_whole_validation_split(sample_dir: Path) -> None:
    tweets = read_split(sample_dir, "val")
    assert len(tweets) == 2000
    assert [t.line_no for t in tweets] == list(range(2000))
    first_text = (sample_dir / "sentiment" / "val_text.txt").read_text("utf-8").split("\n")[0]
    assert tweets[0].text == first_text
    counts = [sum(t.label_id == i for t in tweets) for i in range(3)]
    assert counts == [312, 869, 819]  # TweetEval's figures


def test_the_bundled_sample_is_a_copy_of_tweeteval(sample_dir: Path, tweeteval_dir: Path) -> None:
    for name in ("val_text.txt", "val_labels.txt", "mapping.txt"):
        bundled = (sample_dir / TASK / name).read_bytes()
        assert bundled == (tweeteval_dir / TASK / name).read_bytes(), name


def test_the_bundled_sample_ships_with_its_attribution() -> None:
    readme = (SAMPLE_DIR / "README.md").read_text("utf-8")
    notice = (ROOT / "NOTICE").read_text("utf-8")
    for text in (readme, notice):
        assert "Barbieri" in text
        assert "SemEval-2017 Task 4" in text
        assert "Rosenthal" in text


def test_line_range(sample_dir: Path) -> None:
    tweets = read_split(sample_dir, "val[1500:2000]")
    assert len(tweets) == 500
    assert tweets[0].line_no == 1500
    assert tweets[-1].line_no == 1999
    whole = read_split(sample_dir, "val")
    assert tweets[0] == whole[1500]
    assert len(read_split(sample_dir, "val[:10]")) == 10
    assert len(read_split(sample_dir, "val[1990:]")) == 10


def test_several_splits(sample_dir: Path) -> None:
    tweets = read_splits(sample_dir, ["val[0:5]", "val[10:15]"])
    assert [t.line_no for t in tweets] == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]


@pytest.mark.parametrize("spec", ["test[5:2]", "test[a:b]", "te st", "test[1:2", ""])
def test_bad_split_specs(spec: str) -> None:
    with pytest.raises(DataError, match="bad split"):
        SplitSpec.parse(spec)


def test_split_spec_prints_back() -> None:
    assert str(SplitSpec.parse("test[0:6000]")) == "test[0:6000]"
    assert str(SplitSpec.parse("val")) == "val"
    assert str(SplitSpec.parse("test[100:]")) == "test[100:]"


def test_range_past_the_end(sample_dir: Path) -> None:
    with pytest.raises(DataError, match="up to 2500"):
        read_split(sample_dir, "val[0:2500]")


def test_missing_split(sample_dir: Path) -> None:
    with pytest.raises(DataError, match=r"train_text\.txt does not exist"):
        read_split(sample_dir, "train")


def test_mismatched_files(tmp_path: Path) -> None:
    folder = tmp_path / "sentiment"
    folder.mkdir()
    (folder / "mapping.txt").write_text("0\tnegative\n1\tpositive\n", encoding="utf-8")
    (folder / "x_text.txt").write_text("a\nb\u2028still b\n", encoding="utf-8")
    (folder / "x_labels.txt").write_text("0\n1\n", encoding="utf-8")
    tweets = read_split(tmp_path, "x")
    assert [t.text for t in tweets] == ["a", "b\u2028still b"]
    (folder / "x_labels.txt").write_text("0\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 2 lines"):
        read_split(tmp_path, "x")
    (folder / "x_labels.txt").write_text("0\n7\n", encoding="utf-8")
    with pytest.raises(DataError, match="bad label"):
        read_split(tmp_path, "x")
