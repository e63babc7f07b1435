"""The identification step: every post leaves it with its language and where it came from."""

from __future__ import annotations

from dataclasses import replace

from language.identify import UNDETERMINED, Guess, Identifier, language_code
from language.settings import DetectionMode
from stream_core.batch import Batch
from stream_core.records import ScoredPost

MESSAGE = "message"  # lang_source: the message said
DETECTED = "detected"  # lang_source: identified from the text


class IdentifyStep:
    """A :class:`~stream_core.batch.BatchStep`: sets ``lang``, ``lang_source`` and
    ``lang_confidence`` of each post, as ``mode`` says (``language.settings``)."""

    def __init__(
        self, identifier: Identifier, mode: DetectionMode = "missing", min_confidence: float = 0.3
    ) -> None:
        self._identifier = identifier
        self._mode = mode
        self._min_confidence = min_confidence

    def process(self, batch: Batch) -> Batch:
        batch.posts = [self._identified(post) for post in batch.posts]
        return batch

    def _identified(self, post: ScoredPost) -> ScoredPost:
        given = language_code(post.lang) if post.lang else None
        if given == UNDETERMINED:
            given = None  # Twitter's "und": the message does not know
        if self._mode == "off" or (given is not None and self._mode == "missing"):
            return replace(post, lang=given, lang_source=MESSAGE if given else None)
        guess = self._identifier.identify(post.text)
        sure = guess.confidence >= self._min_confidence and guess.lang != UNDETERMINED
        if given is not None and (not sure or guess.lang == given):
            agreed = guess.confidence if guess.lang == given else None
            return replace(post, lang=given, lang_source=MESSAGE, lang_confidence=agreed)
        return self._detected(post, guess if sure else Guess(UNDETERMINED, guess.confidence))

    @staticmethod
    def _detected(post: ScoredPost, guess: Guess) -> ScoredPost:
        return replace(
            post, lang=guess.lang, lang_source=DETECTED, lang_confidence=round(guess.confidence, 4)
        )
