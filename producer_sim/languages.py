"""The multilingual sample that ships with the simulator (``assets/umsab``: 200 labelled tweets
in each of seven languages, see its README), and mixing it into the replayed tweets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from model.data import DataError, LabelledTweet, read_text_lines

SAMPLE_DIR = Path(__file__).resolve().parent / "assets" / "umsab"


def sample_languages() -> list[str]:
    """The languages of the bundled sample (ISO 639-1 codes)."""
    return sorted(path.name.removesuffix("_text.txt") for path in SAMPLE_DIR.glob("*_text.txt"))


def read_sample(lang: str) -> list[LabelledTweet]:
    """The bundled tweets in ``lang``, each marked with it."""
    if lang not in sample_languages():
        raise DataError(
            f"no bundled tweets in {lang!r}: the sample has {', '.join(sample_languages())}"
        )
    texts = read_text_lines(SAMPLE_DIR / f"{lang}_text.txt")
    labels = read_text_lines(SAMPLE_DIR / f"{lang}_labels.txt")
    return [
        LabelledTweet(text, int(label), line_no, lang=lang)
        for line_no, (text, label) in enumerate(zip(texts, labels, strict=True))
    ]


def mixed(tweets: Sequence[LabelledTweet], languages: Sequence[str]) -> list[LabelledTweet]:
    """``tweets`` with the sample of each of ``languages`` spread evenly among them, so that
    any stretch of the replay carries every language in proportion."""
    sources = [list(tweets), *(read_sample(lang) for lang in languages)]
    positioned = [
        ((i + 0.5) / len(source), n, tweet)
        for n, source in enumerate(sources)
        for i, tweet in enumerate(source)
    ]
    return [tweet for _, _, tweet in sorted(positioned, key=lambda item: item[:2])]
