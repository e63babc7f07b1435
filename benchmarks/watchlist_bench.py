"""Watchlist benchmark: what matching costs per post at 10, 100 and 1,000 watched entities.

In one run, on the TweetEval sample bundled with the package (a tenth of the posts rewritten to
name a watched entity, as a brand's stream would), it prints per entity count:

1. the Aho-Corasick matcher (``watchlist.matcher.Matcher``, what the consumer runs), in CPU
   microseconds per post, normalisation included;
2. the alternative measured against it: one compiled regular expression, an alternation of every
   rule with one named group per entity, searched over the same normalised text (it finds at
   most one entity per position, so it may miss overlapping ones: the agreement is printed);
3. the match step (``watchlist.step.MatchStep`` on batches of 32) against the default model's
   scoring of the same posts, per post: the step's share of the pipeline's per-post time
   (target <= 5% at 1,000 entities). The pipeline also parses, writes and commits, so the
   share against the scorer alone is an upper bound.

Each entity has four rules (a keyword, a two-word phrase, a hashtag, a mention); one in twenty
also has a regular expression, and one in a hundred is keyed on a word real tweets contain.
Times are CPU time of this process (``time.process_time``), which a shared machine's load moves
far less than wall-clock time; the CPU and its flags are printed beside them. The last line is
JSON. About two minutes on a loaded 2-core machine::

    python -m benchmarks.watchlist_bench
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.machine import cpu_description
from model.data import SAMPLE_DIR, read_split
from model.scorer import Scorer
from model.settings import DEFAULT_MODEL_DIR
from stream_core.batch import Batch
from stream_core.records import ScoredPost
from watchlist.matcher import Matcher
from watchlist.normalise import normalise
from watchlist.rules import WatchEntity
from watchlist.step import MatchStep

ENTITY_COUNTS = (10, 100, 1000)
REGEX_EVERY = 20  # one entity in twenty has a regular expression too
NAMED_SHARE = 0.1  # of posts rewritten to name a watched entity
BATCH = 32
SYLLABLES = ("ka", "ro", "mi", "ze", "tu", "vo", "ly", "qua", "nex", "dor", "bri", "sol")


def brand(i: int) -> str:
    """A made-up brand name, distinct for every ``i`` (``kamize3``...)."""
    rng = random.Random(i)  # noqa: S311 - names, not secrets
    return "".join(rng.choice(SYLLABLES) for _ in range(3)) + str(i)


def watchlist(count: int, words: Sequence[str]) -> list[WatchEntity]:
    """``count`` entities; one in a hundred takes a word of the tweets as its keyword (each its
    own word), so the automaton reports real occurrences and not only misses."""
    entities = []
    for i in range(count):
        name = brand(i)
        keyword = words[i // 100 % len(words)] if i % 100 == 0 else name
        entities.append(
            WatchEntity(
                name=name,
                keywords=[keyword, f"{name} support"],
                hashtags=[f"{name}fail"],
                mentions=[f"{name}_help"],
                regexes=[rf"\b{name}[ -]?\d{{3}}\b"] if i % REGEX_EVERY == 0 else [],
            )
        )
    return entities


def brand_like_words(texts: Sequence[str]) -> list[str]:
    """Words of five letters or more that about one tweet in 200 contains (ranks 200 to 300 by
    frequency: ``iphone``, ``christmas``...), as a brand's name would be."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in re.findall(r"[a-z]{5,}", text.lower()):
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))[200:300]


def posts_for(texts: Sequence[str], entities: Sequence[WatchEntity], seed: int) -> list[str]:
    rng = random.Random(seed)  # noqa: S311
    forms = ("{text} {name}", "@{name}_help {text}", "{text} #{name}fail", "{name} support {text}")
    return [
        rng.choice(forms).format(text=text, name=rng.choice(entities).name)
        if rng.random() < NAMED_SHARE
        else text
        for text in texts
    ]


class RegexAlternation:
    """Every rule of every entity in one compiled regular expression, one group per entity."""

    def __init__(self, entities: Sequence[WatchEntity]) -> None:
        self._names: dict[str, str] = {}
        groups = []
        for index, entity in enumerate(entities):
            group = f"e{index}"
            self._names[group] = entity.name
            rules = [rf"\b{re.escape(normalise(k))}\b" for k in entity.keywords]
            rules += [rf"(?<!\w){re.escape('#' + normalise(h))}\b" for h in entity.hashtags]
            rules += [rf"(?<!\w){re.escape('@' + normalise(m))}\b" for m in entity.mentions]
            rules += [f"(?:{r})" for r in entity.regexes]
            groups.append(f"(?P<{group}>{'|'.join(rules)})")
        self._pattern = re.compile("|".join(groups), re.IGNORECASE)

    def entities_in(self, text: str) -> tuple[str, ...]:
        found = {
            self._names[m.lastgroup]
            for m in self._pattern.finditer(normalise(text))
            if m.lastgroup is not None
        }
        return tuple(sorted(found))


def cpu_us_per_post(match: Callable[[str], Any], posts: Sequence[str], rounds: int = 3) -> float:
    """The best of ``rounds`` passes, in CPU microseconds per post."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for text in posts:
            match(text)
        best = min(best, time.process_time() - started)
    return best / len(posts) * 1e6


def step_us_per_post(step: MatchStep, posts: Sequence[str], rounds: int = 3) -> float:
    """The match step on batches of :data:`BATCH` posts, in CPU microseconds per post."""
    rows = [
        ScoredPost(post_id=str(i), text=text, topic="bench", partition=0, offset=i)
        for i, text in enumerate(posts)
    ]
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for start in range(0, len(rows), BATCH):
            step.process(Batch(posts=rows[start : start + BATCH]))
        best = min(best, time.process_time() - started)
    return best / len(rows) * 1e6


def scorer_us_per_post(texts: Sequence[str]) -> tuple[float, str]:
    """The default model's scoring, in CPU microseconds per post (all its threads)."""
    scorer = Scorer.load(DEFAULT_MODEL_DIR, batch_size=BATCH)
    scorer.score(list(texts[:BATCH]))  # warm-up
    started = time.process_time()
    for start in range(0, len(texts), BATCH):
        scorer.score(list(texts[start : start + BATCH]))
    return (time.process_time() - started) / len(texts) * 1e6, scorer.version


class FixedWatchlist:
    """A :class:`~watchlist.step.MatcherSource` that always hands out one matcher."""

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regex-posts", type=int, default=400, help="posts the regex runs on")
    parser.add_argument("--score-posts", type=int, default=1000, help="posts the model scores")
    args = parser.parse_args()
    from stream_core.logs import configure_logging

    configure_logging("WARNING", "console")
    texts = [t.text for t in read_split(SAMPLE_DIR, "val")]
    words = brand_like_words(texts)
    print(f"CPU: {cpu_description()}")
    print(f"posts: {len(texts):,} TweetEval val tweets, {NAMED_SHARE:.0%} naming an entity")

    score_us, model = scorer_us_per_post(texts[: args.score_posts])
    print(f"default model ({model}): {score_us:,.0f} CPU us/post ({1e6 / score_us:,.0f}/CPU-s)")
    results: list[dict[str, Any]] = []
    for count in ENTITY_COUNTS:
        entities = watchlist(count, words)
        posts = posts_for(texts, entities, seed=count)
        started = time.process_time()
        matcher = Matcher(entities)
        build_ms = (time.process_time() - started) * 1e3
        alternation = RegexAlternation(entities)
        sample = posts[: args.regex_posts]
        started = time.process_time()  # one pass: the regex is slow, its answers are compared
        regex_found = [alternation.entities_in(post) for post in sample]
        regex_us = (time.process_time() - started) / len(sample) * 1e6
        agree = sum(
            matcher.entities_in(p) == found for p, found in zip(sample, regex_found, strict=True)
        )
        aho_us = cpu_us_per_post(matcher.entities_in, posts)
        step_us = step_us_per_post(MatchStep(FixedWatchlist(matcher)), posts)
        share = step_us / (score_us + step_us)
        rules = sum(entity.rule_count() for entity in entities)
        named = sum(bool(matcher.entities_in(p)) for p in posts) / len(posts)
        results.append(
            {
                "entities": count,
                "rules": rules,
                "aho_corasick_us_per_post": round(aho_us, 1),
                "regex_alternation_us_per_post": round(regex_us, 1),
                "match_step_us_per_post": round(step_us, 1),
                "match_step_share_of_pipeline": round(share, 5),
                "matcher_build_ms": round(build_ms, 1),
                "posts_naming_an_entity": round(named, 3),
                "regex_agrees_on": f"{agree}/{len(sample)}",
            }
        )
        print(
            f"{count:>5} entities ({rules:,} rules): Aho-Corasick {aho_us:,.1f} us/post, "
            f"one regex alternation {regex_us:,.1f} us/post ({regex_us / aho_us:,.1f}x); "
            f"match step {step_us:,.1f} us/post = {share:.2%} of the pipeline's per-post time "
            f"(build {build_ms:,.0f} ms; {named:.0%} of posts name one; the regex agrees on "
            f"{agree}/{len(sample)})"
        )
    verdict = "met" if results[-1]["match_step_share_of_pipeline"] <= 0.05 else "MISSED"
    print(f"target: the match step <= 5% of the per-post time at 1,000 entities: {verdict}")
    print(
        json.dumps(
            {
                "cpu": cpu_description(),
                "model": model,
                "model_cpu_us_per_post": round(score_us, 1),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
