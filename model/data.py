"""TweetEval-format data: ``<dir>/sentiment/{split}_text.txt`` + ``_labels.txt``, ``mapping.txt``.

A split may name a range of lines, ``test[0:6000]`` (0-based, end exclusive, like a Python
slice), so a model's metadata can record exactly which lines trained it and which evaluated it.

:data:`SAMPLE_DIR` is such a folder shipped inside the package: the official TweetEval validation
split (2,000 labelled tweets), so the simulator, the demo and the tests run offline with no data
given (attribution: ``assets/tweeteval/README.md`` and the NOTICE file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TASK = "sentiment"
SAMPLE_DIR = Path(__file__).resolve().parent / "assets" / "tweeteval"
SAMPLE_SPLITS = ("val",)  # the splits SAMPLE_DIR holds
_SPLIT = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)(?:\[(?P<start>\d*):(?P<end>\d*)\])?$")


class DataError(ValueError):
    """The data folder or a split specification is unusable (the message says why)."""


@dataclass(frozen=True)
class LabelledTweet:
    text: str
    label_id: int
    line_no: int  # 0-based line of the tweet in its split's files
    lang: str | None = None  # its language when the data says (None: the data set's own)


@dataclass(frozen=True)
class SplitSpec:
    """``name`` or ``name[start:end]``: which lines of one split to use."""

    name: str
    start: int | None = None
    end: int | None = None

    @classmethod
    def parse(cls, spec: str) -> SplitSpec:
        match = _SPLIT.match(spec.strip())
        if match is None:
            raise DataError(
                f"bad split {spec!r}: expected NAME or NAME[START:END], e.g. test[0:6000]"
            )
        start, end = match["start"], match["end"]
        parsed = cls(match["name"], int(start) if start else None, int(end) if end else None)
        if parsed.start is not None and parsed.end is not None and parsed.start >= parsed.end:
            raise DataError(f"bad split {spec!r}: the range is empty")
        return parsed

    def __str__(self) -> str:
        if self.start is None and self.end is None:
            return self.name
        start = "" if self.start is None else self.start
        end = "" if self.end is None else self.end
        return f"{self.name}[{start}:{end}]"


def read_text_lines(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist (expected the TweetEval layout)") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8: {error}") from None
    # Split on "\n" only: str.splitlines() would also break tweets at U+2028 and friends and
    # shift every later text against its label.
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_label_names(data_dir: Path) -> tuple[str, ...]:
    """Label names by id from ``mapping.txt`` (``0<TAB>negative`` ...)."""
    names: dict[int, str] = {}
    path = Path(data_dir) / TASK / "mapping.txt"
    for line in read_text_lines(path):
        if not line.strip():
            continue
        label_id, _, name = line.strip().partition("\t")
        if not label_id.isdigit() or not name.strip():
            raise DataError(f"{path}: bad line {line!r}, expected '<id><TAB><name>'")
        names[int(label_id)] = name.strip()
    if sorted(names) != list(range(len(names))) or len(names) < 2:
        raise DataError(f"{path}: label ids must be 0..N-1, got {sorted(names)}")
    return tuple(names[i] for i in range(len(names)))


def read_split(data_dir: Path, split: str | SplitSpec) -> list[LabelledTweet]:
    """The tweets of one split (optionally a line range of it), in file order."""
    spec = split if isinstance(split, SplitSpec) else SplitSpec.parse(split)
    folder = Path(data_dir) / TASK
    texts = read_text_lines(folder / f"{spec.name}_text.txt")
    labels = read_text_lines(folder / f"{spec.name}_labels.txt")
    if len(texts) != len(labels):
        raise DataError(
            f"{folder}: {spec.name}_text.txt has {len(texts)} lines but "
            f"{spec.name}_labels.txt has {len(labels)}"
        )
    if spec.end is not None and spec.end > len(texts):
        raise DataError(f"split {spec} asks for lines up to {spec.end}, but it has {len(texts)}")
    n_labels = len(read_label_names(data_dir))
    start = spec.start or 0
    tweets = []
    for line_no in range(start, len(texts) if spec.end is None else spec.end):
        label = labels[line_no].strip()
        if not label.isdigit() or int(label) >= n_labels:
            raise DataError(f"{spec.name}_labels.txt line {line_no + 1}: bad label {label!r}")
        tweets.append(LabelledTweet(texts[line_no], int(label), line_no))
    return tweets


def read_splits(data_dir: Path, splits: list[str]) -> list[LabelledTweet]:
    """Several splits (or line ranges) one after the other."""
    return [tweet for split in splits for tweet in read_split(data_dir, split)]
