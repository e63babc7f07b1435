"""Late gold labels and the drift scenario of the simulator.

* :class:`Feedback`: a share of the posts gets its gold label later, on the labels topic, as
  when people annotate a sample (``--feedback-rate``, ``--feedback-delay``). With
  ``--feedback-shuffle`` the labels are drawn from the other posts' labels instead of the
  post's own: a stream whose feedback no longer agrees with the model, which raises the online
  quality alert.
* :func:`drifted`: from ``--drift-at`` on, posts stop looking like the training data: in turn
  all upper-case, emoji only, long non-tweet text (several tweets run together without their
  mentions, hashtags and links), and negative tweets only (another label mix).
"""

from __future__ import annotations

import heapq
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from model.data import LabelledTweet
from stream_core.contract import LABELS

EMOJI = "".join(
    map(chr, (0x1F525, 0x1F602, 0x1F44D, 0x1F62D, 0x1F64F, 0x2764, 0x1F389, 0x1F680, 0x1F4AF))
)
DRIFT_KINDS = ("upper_case", "emoji_only", "long_text", "negative_only")
_TWEET_MARKS = re.compile(r"(?<!\w)[@#]\w+|https?://\S+|\bhttp\b")
NEGATIVE = LABELS.index("negative")


@dataclass(order=True)
class _Due:
    due_s: float
    seq: int
    value: bytes = field(compare=False)
    key: bytes = field(compare=False)


class Feedback:
    """Labels waiting for their time: ``offer`` a post, ``due`` the labels whose time came."""

    def __init__(
        self, rate: float, delay_s: float, rng: random.Random, *, shuffle: bool = False
    ) -> None:
        self.rate = rate
        self.delay_s = delay_s
        self.shuffle = shuffle
        self._rng = rng
        self._waiting: list[_Due] = []
        self._seen: list[str] = []  # gold labels of the posts so far: what a shuffle draws
        self._seq = 0

    def offer(self, post_id: str, key: bytes, label: str, sent_s: float) -> None:
        self._seen.append(label)
        if self._rng.random() >= self.rate:
            return
        given = self._rng.choice(self._seen) if self.shuffle else label
        value = json.dumps({"post_id": post_id, "label": given}).encode()
        heapq.heappush(self._waiting, _Due(sent_s + self.delay_s, self._seq, value, key))
        self._seq += 1

    def due(self, now_s: float) -> list[tuple[bytes, bytes]]:
        """(key, value) of every label due by ``now_s``, oldest first."""
        ready = []
        while self._waiting and self._waiting[0].due_s <= now_s:
            item = heapq.heappop(self._waiting)
            ready.append((item.key, item.value))
        return ready

    def next_due_s(self) -> float | None:
        return self._waiting[0].due_s if self._waiting else None

    def __len__(self) -> int:
        return len(self._waiting)


def drifted(
    tweet: LabelledTweet, seq: int, pool: Sequence[LabelledTweet], rng: random.Random
) -> LabelledTweet:
    """The post the drift scenario sends instead of ``tweet`` (its ``seq``-th post)."""
    kind = DRIFT_KINDS[seq % len(DRIFT_KINDS)]
    if kind == "upper_case":
        return replace(tweet, text=tweet.text.upper())
    if kind == "emoji_only":
        return replace(tweet, text="".join(rng.choices(EMOJI, k=rng.randint(1, 6))))
    if kind == "long_text":
        parts = [
            _TWEET_MARKS.sub("", t.text).strip() for t in rng.sample(list(pool), min(10, len(pool)))
        ]
        return replace(tweet, text=". ".join(p for p in parts if p) + ".")
    negatives = [t for t in pool if t.label_id == NEGATIVE] or list(pool)
    return rng.choice(negatives)
