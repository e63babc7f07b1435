"""The leak-free data set of a retrain: labelled posts -> one example per post id and per
normalised text -> the newest window held out -> training examples (plus optional base data).

Leaks it rules out:

- the same post stored twice (a replayed message is another row): one vote per post id;
- the same text posted by several posts (retweets, copy-paste, spam): one example per
  normalised text, so a text is on one side of the split only;
- the future: the held-out examples are the newest ones, never trained on, and base data
  whose text is held out is dropped.

Posts of one text whose labels disagree are settled by majority; a tie is dropped. Every
disagreement is reported (:class:`Disagreement`), so that people can look at the labelling.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from model.preprocess import cardiffnlp_normalise
from storage.labelled_posts import LabelledPost
from stream_core.windows import parse_window

_SPACES = re.compile(r"\s+")


class DatasetError(ValueError):
    """The labelled posts cannot make a data set (the message says what is missing)."""


def text_key(text: str) -> str:
    """What counts as "the same text": mentions and links masked, case and spaces folded."""
    return _SPACES.sub(" ", cardiffnlp_normalise(text)).strip().casefold()


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    post_ids: tuple[str, ...]  # the posts (one or more) this text stands for; () for base data
    at: datetime | None  # the newest of its posts; None for base data


@dataclass(frozen=True)
class Disagreement:
    text: str
    votes: dict[str, int]  # label -> posts that say it
    kept: str | None  # the majority label, None for a tie (dropped)


@dataclass(frozen=True)
class Holdout:
    """Which examples are held out: the newest ``share`` of them, or those of the newest
    ``window`` (measured back from the newest labelled post)."""

    share: float | None = None
    window: timedelta | None = None

    @classmethod
    def parse(cls, text: str) -> Holdout:
        """``20%`` or a window such as ``2d`` / ``12h``."""
        text = text.strip()
        if text.endswith("%"):
            try:
                share = float(text[:-1]) / 100
            except ValueError:
                share = -1.0
            if not 0 < share < 1:
                raise DatasetError(f"holdout {text!r}: a share must be between 0% and 100%")
            return cls(share=share)
        try:
            return cls(window=parse_window(text))
        except ValueError as error:
            raise DatasetError(
                f"holdout {text!r}: give a share (20%) or a window (2d): {error}"
            ) from None

    def __str__(self) -> str:
        return f"{self.share:.0%}" if self.share is not None else f"window {self.window}"


@dataclass(frozen=True)
class RetrainData:
    train: list[Example]  # labelled posts, then base examples
    held_out: list[Example]
    disagreements: list[Disagreement]
    posts_read: int  # rows read from PostgreSQL
    duplicate_rows: int  # rows of a post id seen already (replays)
    folded_posts: int  # posts that are not an example of their own: same text, or a tie
    base_examples: int  # base examples in ``train``
    base_dropped: int  # base examples left out: their text is held out or already trained on

    @property
    def trained_post_ids(self) -> set[str]:
        return {post_id for example in self.train for post_id in example.post_ids}

    @property
    def held_out_post_ids(self) -> set[str]:
        return {post_id for example in self.held_out for post_id in example.post_ids}

    def summary(self) -> dict[str, int]:
        return {
            "posts_read": self.posts_read,
            "duplicate_rows": self.duplicate_rows,
            "folded_posts": self.folded_posts,
            "disagreements": len(self.disagreements),
            "ties_dropped": sum(d.kept is None for d in self.disagreements),
            "train_examples": len(self.train),
            "train_from_posts": len(self.train) - self.base_examples,
            "base_examples": self.base_examples,
            "base_dropped": self.base_dropped,
            "held_out_examples": len(self.held_out),
        }


def one_per_text(posts: Sequence[LabelledPost]) -> tuple[list[Example], list[Disagreement], int]:
    """Examples, one per normalised text (majority label, ties dropped), the disagreements,
    and how many rows repeated a post id already seen."""
    by_id: dict[str, LabelledPost] = {}
    for post in posts:
        seen = by_id.get(post.post_id)
        if seen is None or post.at > seen.at:
            by_id[post.post_id] = post  # the newest row of a post carries its label
    groups: dict[str, list[LabelledPost]] = {}
    for post in by_id.values():
        groups.setdefault(text_key(post.text), []).append(post)
    examples, disagreements = [], []
    for group in groups.values():
        votes = Counter(post.label for post in group)
        ranked = votes.most_common()
        tie = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        kept = None if tie else ranked[0][0]
        if len(ranked) > 1:
            disagreements.append(Disagreement(group[0].text, dict(ranked), kept))
        if kept is not None:
            newest = max(group, key=lambda post: post.at)
            ids = tuple(sorted(post.post_id for post in group))
            examples.append(Example(newest.text, kept, ids, newest.at))
    examples.sort(key=lambda example: (example.at, example.post_ids))
    return examples, disagreements, len(posts) - len(by_id)


def split(examples: Sequence[Example], holdout: Holdout) -> tuple[list[Example], list[Example]]:
    """(train, held out): the held-out examples are the newest (``examples`` in time order)."""
    if not examples:
        return [], []
    if holdout.share is not None:
        first_held = len(examples) - max(1, round(len(examples) * holdout.share))
    else:
        assert holdout.window is not None
        newest = examples[-1].at
        assert newest is not None
        start = newest - holdout.window
        first_held = next(
            (i for i, e in enumerate(examples) if e.at is not None and e.at > start), 0
        )
    return list(examples[:first_held]), list(examples[first_held:])


def build(
    posts: Sequence[LabelledPost], holdout: Holdout, base: Iterable[Example] = ()
) -> RetrainData:
    """The data set: deduplicated, split by time, with the base examples whose text is neither
    held out nor trained on already added to training."""
    examples, disagreements, repeats = one_per_text(posts)
    train, held_out = split(examples, holdout)
    taken = {text_key(example.text) for example in (*train, *held_out)}
    extra, dropped = [], 0
    for example in base:
        key = text_key(example.text)
        if key in taken:
            dropped += 1
            continue
        taken.add(key)
        extra.append(example)
    distinct_posts = len(posts) - repeats
    return RetrainData(
        train=train + extra,
        held_out=held_out,
        disagreements=disagreements,
        posts_read=len(posts),
        duplicate_rows=repeats,
        folded_posts=distinct_posts - len(examples),
        base_examples=len(extra),
        base_dropped=dropped,
    )
