"""Finds the watched entities a post names: one Aho-Corasick pass for every keyword, hashtag and
mention of every entity, then the (few) regular expressions.

Both sides are normalised first (``watchlist.normalise``). The automaton reports every
occurrence of every pattern, overlapping ones included, in one pass over the text whatever the
number of patterns; each occurrence is then checked for word boundaries, which is what makes
``apple`` match ``Apple's``, ``#apple`` and ``🍎apple🍎`` but not ``pineapple`` or ``apples``:

* a pattern that starts with a letter, digit or ``_`` (or with ``#`` / ``@``: a tag) must not
  follow one;
* a pattern that ends with one must not precede one.

Overlapping entities all match: with ``apple`` and ``apple-music`` (keyword ``apple music``)
watched, "apple music is down" names both. A compiled regex alternation, the alternative that
was measured (``benchmarks/watchlist_bench.py``), reports at most one pattern per position, so
it would lose the second of two overlapping entities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import ahocorasick

from watchlist.normalise import is_word_char, normalise
from watchlist.rules import RULE_FIELDS, RuleKind, WatchEntity, compile_regex

_SIGILS = {RuleKind.HASHTAG: "#", RuleKind.MENTION: "@"}
# Numbered or named backreferences, and inline flags (which must open a whole pattern).
_UNJOINABLE = re.compile(r"\\[1-9]|\(\?P=|\(\?[aiLmsux]+\)")


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule of one entity, found in a post (``start``/``end`` index the normalised text)."""

    entity: str
    kind: RuleKind
    rule: str  # as the entity states it
    start: int
    end: int


class _Owner(NamedTuple):
    entity: str
    kind: RuleKind
    rule: str


class _Pattern(NamedTuple):
    """The automaton's value for one normalised pattern (several entities may share it)."""

    length: int
    bounded_left: bool
    bounded_right: bool
    entities: frozenset[str]
    owners: tuple[_Owner, ...]


class Matcher:
    """An immutable matcher over a set of entities; build a new one when the watchlist changes."""

    def __init__(self, entities: Iterable[WatchEntity]) -> None:
        self.entities: tuple[WatchEntity, ...] = tuple(sorted(entities, key=lambda e: e.name))
        owners: dict[str, list[_Owner]] = {}
        regexes = []
        for entity in self.entities:
            for kind, rule in _rules(entity):
                if kind is RuleKind.REGEX:
                    regexes.append((_Owner(entity.name, kind, rule), compile_regex(rule)))
                    continue
                pattern = _SIGILS.get(kind, "") + normalise(rule)
                if pattern.strip("#@"):  # a rule of combining marks only normalises to nothing
                    owners.setdefault(pattern, []).append(_Owner(entity.name, kind, rule))
        self._regexes = tuple(regexes)
        self._regex_prefilter = _prefilter([regex for _, regex in regexes])
        self._automaton: ahocorasick.Automaton | None = None
        if owners:
            automaton = ahocorasick.Automaton()
            for pattern, found in owners.items():
                automaton.add_word(
                    pattern,
                    _Pattern(
                        length=len(pattern),
                        bounded_left=is_word_char(pattern[0]) or pattern[0] in "#@",
                        bounded_right=is_word_char(pattern[-1]),
                        entities=frozenset(owner.entity for owner in found),
                        owners=tuple(found),
                    ),
                )
            automaton.make_automaton()
            self._automaton = automaton

    @property
    def empty(self) -> bool:
        return not self.entities

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(entity.name for entity in self.entities)

    def entities_in(self, text: str) -> tuple[str, ...]:
        """The names of the entities ``text`` names, sorted (empty when none)."""
        normalised = normalise(text)
        found: set[str] = set()
        for _, pattern in self._occurrences(normalised):
            found |= pattern.entities
        if any(prefilter.search(normalised) for prefilter in self._regex_prefilter):
            for owner, regex in self._regexes:
                if owner.entity not in found and regex.search(normalised):
                    found.add(owner.entity)
        return tuple(sorted(found))

    def hits(self, text: str) -> list[Hit]:
        """Every rule that matches ``text`` and where: what ``watch test`` and the API show."""
        normalised = normalise(text)
        hits = [
            Hit(owner.entity, owner.kind, owner.rule, start, start + pattern.length)
            for start, pattern in self._occurrences(normalised)
            for owner in pattern.owners
        ]
        for owner, regex in self._regexes:
            hits += [
                Hit(owner.entity, owner.kind, owner.rule, m.start(), m.end())
                for m in regex.finditer(normalised)
            ]
        return sorted(hits, key=lambda hit: (hit.start, hit.end, hit.entity, hit.kind))

    def _occurrences(self, text: str) -> Iterator[tuple[int, _Pattern]]:
        """(start, pattern) of each pattern occurrence that respects the word boundaries."""
        if self._automaton is None:
            return
        for last, pattern in self._automaton.iter(text):
            start = last + 1 - pattern.length
            if pattern.bounded_left and start > 0 and is_word_char(text[start - 1]):
                continue
            if pattern.bounded_right and last + 1 < len(text) and is_word_char(text[last + 1]):
                continue
            yield start, pattern


def _prefilter(regexes: list[re.Pattern[str]]) -> tuple[re.Pattern[str], ...]:
    """Patterns that match wherever any of ``regexes`` does: most posts match no regex, and one
    search of an alternation costs a fraction of one search per rule (about 2.5 vs 190 us a
    post for 50 rules). Patterns that cannot join an alternation (backreferences, inline
    flags) stay on their own."""
    joinable = [r.pattern for r in regexes if not _UNJOINABLE.search(r.pattern)]
    alone = [r for r in regexes if _UNJOINABLE.search(r.pattern)]
    if not joinable:
        return tuple(alone)
    try:
        return (re.compile("|".join(f"(?:{p})" for p in joinable), re.IGNORECASE), *alone)
    except re.error:  # a combination the checks above did not foresee: no prefilter
        return tuple(regexes)


def _rules(entity: WatchEntity) -> Iterator[tuple[RuleKind, str]]:
    for kind, field in RULE_FIELDS.items():
        for rule in getattr(entity, field):
            yield kind, rule
