"""Which tweet goes next, who posts it, and how it looks on the wire.

Outside a spike the simulator replays the dataset in order (shuffled with ``--shuffle``);
inside a spike it draws from per-label pools so the negative share is what was asked. A spike
about one entity (``--spike-entity``) touches only the posts rewritten to name it
(:class:`EntityMentions`); the rest of the stream replays as usual.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from model.data import LabelledTweet
from stream_core.contract import LABELS

NEGATIVE = LABELS.index("negative")


@dataclass(frozen=True, slots=True)
class Spike:
    """From ``at_s`` for ``duration_s`` seconds, a share ``negative_share`` of posts is negative."""

    at_s: float
    duration_s: float
    negative_share: float
    # A spike about one entity: a share ``entity_share`` of all posts, the whole run long, is
    # rewritten to name it (its baseline), and only those posts are the spike's.
    entity: str | None = None
    entity_share: float = 0.2

    def active(self, elapsed_s: float) -> bool:
        return self.at_s <= elapsed_s < self.at_s + self.duration_s

    def covers(self, elapsed_s: float, names_entity: bool) -> bool:
        """Whether a post at ``elapsed_s`` (naming the spike's entity or not) is the spike's."""
        return self.active(elapsed_s) and (self.entity is None or names_entity)


class TweetPicker:
    """Hands out tweets: the replay order, or the spike's per-label pools."""

    def __init__(
        self,
        tweets: Sequence[LabelledTweet],
        rng: random.Random,
        *,
        loop: bool = False,
        shuffle: bool = False,
        spike: Spike | None = None,
    ) -> None:
        if not tweets:
            raise ValueError("no tweets to replay")
        self._replay = list(tweets)
        if shuffle:
            rng.shuffle(self._replay)
        self._rng = rng
        self._loop = loop
        self._cursor = 0
        self.spike = spike
        self._negative = [t for t in tweets if t.label_id == NEGATIVE]
        self._others = [t for t in tweets if t.label_id != NEGATIVE]
        if spike and not (self._negative and self._others):
            raise ValueError("a spike needs both negative and non-negative tweets in the data")

    def any(self) -> LabelledTweet:
        """A random tweet that does not advance the replay (for poison messages)."""
        return self._rng.choice(self._replay)

    def next(self, elapsed_s: float, *, names_entity: bool = False) -> LabelledTweet | None:
        """The tweet for a post scheduled at ``elapsed_s`` (that will name the spike's entity,
        or not); None once the data ends (no loop)."""
        if self.spike and self.spike.covers(elapsed_s, names_entity):
            negative = self._rng.random() < self.spike.negative_share
            return self._rng.choice(self._negative if negative else self._others)
        if self._cursor == len(self._replay):
            if not self._loop:
                return None
            self._cursor = 0
        tweet = self._replay[self._cursor]
        self._cursor += 1
        return tweet


class EntityMentions:
    """Which posts name the spike's entity, and how: ``NAME``, ``@NAME`` or ``#NAME`` (a watched
    entity with the keyword ``NAME`` matches all three)."""

    FORMS = ("{text} {name}", "@{name} {text}", "{text} #{name}")

    def __init__(self, name: str, share: float, rng: random.Random) -> None:
        self.name = name
        self.share = share
        self._rng = rng

    def draw(self) -> bool:
        """Whether the next post names the entity (a share ``share`` of posts do)."""
        return self._rng.random() < self.share

    def mention(self, text: str) -> str:
        return self._rng.choice(self.FORMS).format(text=text, name=self.name)


class AuthorPool:
    """A fixed set of authors (``user-0042``); which one posts next depends only on the seed."""

    def __init__(self, size: int, rng: random.Random) -> None:
        if size < 1:
            raise ValueError("the author pool needs at least one author")
        width = max(4, len(str(size - 1)))
        self._names = [f"user-{i:0{width}d}" for i in range(size)]
        self._rng = rng

    def next(self) -> str:
        return self._rng.choice(self._names)


def post_fields(post_id: str, text: str, author: str, lang: str | None) -> dict[str, str]:
    """The message contract's fields, stamped with the current UTC time (no ``lang`` when
    None: the consumer identifies it)."""
    created_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    fields = {"id": post_id, "text": text, "created_at": created_at, "author": author}
    return fields if lang is None else {**fields, "lang": lang}


def encode(fields: dict[str, str]) -> bytes:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
