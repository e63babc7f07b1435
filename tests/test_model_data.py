"""TweetEval-format reading: splits, line ranges, label names, bad folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.data import DataError, SplitSpec, read_label_names, read_split, read_splits


def test_label_names(tweeteval_dir: Path) -> None:
    assert read_label_names(tweeteval_dir) == ("negative", "neutral", "positive")


def test_whole_split_lines_up_with_its_labels(tweeteval_dir: Path) -> None:
    tweets = read_split(tweeteval_dir, "val")
    assert len(tweets) == 2000
    assert [t.line_no for t in tweets] == list(range(2000))
    first_text = (tweeteval_dir / "sentiment" / "val_text.txt").read_text("utf-8").split("\n")[0]
    assert tweets[0].text == first_text
    counts = [sum(t.label_id == i for t in tweets) for i in range(3)]
    assert counts == [312, 869, 819]  # the README's figures


def test_line_range(tweeteval_dir: Path) -> None:
    tweets = read_split(tweeteval_dir, "test[6000:8000]")
    assert len(tweets) == 2000
    assert tweets[0].line_no == 6000
    assert tweets[-1].line_no == 7999
    whole = read_split(tweeteval_dir, "test")
    assert tweets[0] == whole[6000]
    assert len(read_split(tweeteval_dir, "test[:10]")) == 10
    assert len(read_split(tweeteval_dir, "test[7990:]")) == 10


def test_several_splits(tweeteval_dir: Path) -> None:
    tweets = read_splits(tweeteval_dir, ["val[0:5]", "test[0:5]"])
    assert len(tweets) == 10


@pytest.mark.parametrize("spec", ["test[5:2]", "test[a:b]", "te st", "test[1:2", ""])
def test_bad_split_specs(spec: str) -> None:
    with pytest.raises(DataError, match="bad split"):
        SplitSpec.parse(spec)


def test_split_spec_prints_back() -> None:
    assert str(SplitSpec.parse("test[0:6000]")) == "test[0:6000]"
    assert str(SplitSpec.parse("val")) == "val"
    assert str(SplitSpec.parse("test[100:]")) == "test[100:]"


def test_range_past_the_end(tweeteval_dir: Path) -> None:
    with pytest.raises(DataError, match="up to 9000"):
        read_split(tweeteval_dir, "test[0:9000]")


def test_missing_split(tweeteval_dir: Path) -> None:
    with pytest.raises(DataError, match=r"train_text\.txt does not exist"):
        read_split(tweeteval_dir, "train")


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
