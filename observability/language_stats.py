"""The online language mix: posts per language and how many no model read, since the process
started, fed by committed batches; exported as ``sentiment_posts_by_language_total``."""

from __future__ import annotations

import threading
from collections import Counter

from pydantic import BaseModel, Field

from observability.metrics import PipelineMetrics
from stream_core.events import CommittedBatch
from stream_core.records import SCORED, UNSCORED

UNDETERMINED = "und"
OTHER = "other"
# The languages that get a series of their own (the most common on Twitter, and every language
# of the bundled UMSAB sample); the rest are counted as "other", so the label stays bounded.
TRACKED = frozenset(
    {
        "ar",
        "ca",
        "de",
        "en",
        "es",
        "fa",
        "fr",
        "hi",
        "id",
        "it",
        "ja",
        "ko",
        "ms",
        "nl",
        "pl",
        "pt",
        "ru",
        "sv",
        "th",
        "tl",
        "tr",
        "uk",
        "ur",
        "zh",
        UNDETERMINED,
    }
)


def language_label(lang: str | None) -> str:
    """The value of the ``lang`` label for a post in ``lang``."""
    if lang is None:
        return UNDETERMINED
    return lang if lang in TRACKED else OTHER


class LanguageMix(BaseModel):
    posts: dict[str, int] = Field(description="Posts per language (und: undetermined).")
    unscored: dict[str, int] = Field(
        description="Posts per language that no model reads, stored unscored."
    )
    total: int
    unscored_share: float = Field(description="Share of posts left unscored (0..1).")


class OnlineLanguageStats:
    """A :class:`~stream_core.events.BatchObserver` counting committed posts per language and
    status, in memory (``/stats``) and in Prometheus."""

    def __init__(self, metrics: PipelineMetrics) -> None:
        self._metrics = metrics
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def on_batch_committed(self, batch: CommittedBatch) -> None:
        counts = Counter(
            (language_label(post.lang), UNSCORED if post.label is None else SCORED)
            for post in batch.posts
        )
        for (lang, status), count in counts.items():
            self._metrics.language_posts.labels(lang=lang, status=status).inc(count)
        with self._lock:
            self._counts.update(counts)

    def mix(self) -> LanguageMix:
        with self._lock:
            counts = dict(self._counts)
        posts: Counter[str] = Counter()
        unscored: Counter[str] = Counter()
        for (lang, status), count in counts.items():
            posts[lang] += count
            if status == UNSCORED:
                unscored[lang] += count
        total = sum(posts.values())
        return LanguageMix(
            posts=dict(posts.most_common()),
            unscored=dict(unscored.most_common()),
            total=total,
            unscored_share=round(sum(unscored.values()) / total, 4) if total else 0.0,
        )
