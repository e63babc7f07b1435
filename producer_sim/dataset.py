"""Reading TweetEval-format folders: ``<dir>/sentiment/{split}_text.txt`` and ``_labels.txt``.

A folder in this layout is what ``--data`` points at (the shared copy, a download cache, or a
user's own data in the same format). Label ids map to names through ``mapping.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentiment_stream.contract import LABELS

TASK = "sentiment"


class DatasetError(Exception):
    """The folder is not a readable TweetEval-format folder; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class LabelledTweet:
    text: str
    label_id: int
    line_no: int  # 1-based line number in the split's text file

    @property
    def label(self) -> str:
        return LABELS[self.label_id]


def split_files(data_dir: Path, split: str) -> tuple[Path, Path]:
    """The text and label files of one split."""
    folder = data_dir / TASK
    return folder / f"{split}_text.txt", folder / f"{split}_labels.txt"


def read_mapping(data_dir: Path) -> None:
    """Check that ``mapping.txt`` (when present) agrees with our label order."""
    mapping = data_dir / TASK / "mapping.txt"
    if not mapping.exists():
        return
    for line in mapping.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        label_id, _, name = line.partition("\t")
        if LABELS[int(label_id)] != name.strip():
            raise DatasetError(
                f"{mapping}: label {label_id} is {name.strip()!r}, expected {LABELS}"
            )


def read_split(data_dir: Path, split: str) -> list[LabelledTweet]:
    """All tweets of one split with their gold labels, in file order."""
    text_path, labels_path = split_files(data_dir, split)
    for path in (text_path, labels_path):
        if not path.is_file():
            raise DatasetError(
                f"{path} not found: --data must be a TweetEval-format folder "
                f"(<dir>/{TASK}/{split}_text.txt and {split}_labels.txt)"
            )
    read_mapping(data_dir)
    # Tweets may contain U+2028 and friends, which str.splitlines() would split on.
    texts = text_path.read_text(encoding="utf-8").split("\n")
    labels = labels_path.read_text(encoding="utf-8").split()
    if texts and texts[-1] == "":
        texts.pop()
    if len(texts) != len(labels):
        raise DatasetError(
            f"{text_path} has {len(texts)} lines but {labels_path} has {len(labels)} labels"
        )
    tweets = []
    for line_no, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
        if label not in {"0", "1", "2"}:
            raise DatasetError(f"{labels_path}:{line_no}: label {label!r} is not 0, 1 or 2")
        tweets.append(LabelledTweet(text.rstrip("\r").strip(), int(label), line_no))
    return [tweet for tweet in tweets if tweet.text]


def read_splits(data_dir: Path, splits: list[str]) -> list[LabelledTweet]:
    """The named splits one after the other."""
    return [tweet for split in splits for tweet in read_split(data_dir, split)]
