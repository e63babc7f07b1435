"""Text normalisation a checkpoint expects before tokenisation (``metadata.preprocessing``)."""

from __future__ import annotations

from collections.abc import Callable

from model.metadata import Preprocessing


def cardiffnlp_normalise(text: str) -> str:
    """The cardiffnlp/TweetEval normalisation: mentions -> ``@user``, links -> ``http``.

    Word for word the preprocessing of the cardiffnlp model cards, so scores match theirs.
    """
    return " ".join(map(_normalise_word, text.split(" ")))


def _normalise_word(word: str) -> str:
    if word.startswith("@") and len(word) > 1:
        return "@user"
    if word.startswith("http"):
        return "http"
    return word


def normaliser(kind: Preprocessing) -> Callable[[str], str] | None:
    """The function for ``kind``, or None when texts go to the tokenizer unchanged."""
    return cardiffnlp_normalise if kind == "cardiffnlp" else None
