"""The match step: records in each post the watched entities it names."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from stream_core.batch import Batch
from watchlist.matcher import Matcher


class MatcherSource(Protocol):
    """Where the current matcher comes from (``watchlist.live.LiveWatchlist``)."""

    @property
    def matcher(self) -> Matcher: ...


class MatchStep:
    """A :class:`~stream_core.batch.BatchStep`: fills ``ScoredPost.entities``.

    The matcher is taken once per batch, so a watchlist change lands between two batches.
    """

    def __init__(self, watchlist: MatcherSource) -> None:
        self._watchlist = watchlist

    def process(self, batch: Batch) -> Batch:
        matcher = self._watchlist.matcher
        if matcher.empty:
            return batch
        batch.posts = [
            replace(post, entities=entities)
            if (entities := matcher.entities_in(post.text))
            else post
            for post in batch.posts
        ]
        return batch
