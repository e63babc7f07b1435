"""The watchlist's rules, normalisation, matcher and match step, without a database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from stream_core.batch import Batch
from stream_core.records import Post, SourceRecord
from tests.fixtures.watchlist import CASES, ENTITIES
from watchlist.matcher import Matcher
from watchlist.normalise import normalise
from watchlist.rules import EntityRules, RuleKind, WatchEntity
from watchlist.step import MatchStep


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_the_rules_match_what_they_say(text: str, expected: tuple[str, ...], why: str) -> None:
    assert Matcher(ENTITIES).entities_in(text) == expected, why


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("Café ÉCLAIR", "cafe eclair"),
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),
        ("ＡＢＣ  def\n\tx", "abc def x"),  # noqa: RUF001 - full-width letters on purpose
        ("naïve coöperate", "naive cooperate"),
        ("🍎apple🍎", "🍎apple🍎"),
    ],
)
def test_normalise_folds_case_accents_width_and_spaces(text: str, normalised: str) -> None:
    assert normalise(text) == normalised


def test_hits_say_which_rule_matched_where() -> None:
    hits = Matcher(ENTITIES).hits("Apple Music and #AcmeCorp")
    assert [(h.entity, h.kind, h.rule, h.start, h.end) for h in hits] == [
        ("apple", RuleKind.KEYWORD, "Apple", 0, 5),
        ("apple-music", RuleKind.KEYWORD, "apple music", 0, 11),
        ("acme", RuleKind.HASHTAG, "AcmeCorp", 16, 25),
    ]


def test_entities_sharing_a_pattern_both_match() -> None:
    matcher = Matcher(
        [WatchEntity(name="a", keywords=["acme"]), WatchEntity(name="b", keywords=["ACME"])]
    )
    assert matcher.entities_in("acme rocks") == ("a", "b")


def test_regexes_that_cannot_join_an_alternation_still_match() -> None:
    matcher = Matcher(
        [
            WatchEntity(name="double", regexes=[r"(\w)\1x"]),  # a backreference
            WatchEntity(name="flags", regexes=[r"(?s)start.end"]),  # an inline flag
            WatchEntity(name="plain", regexes=[r"\bzeta\d\b"]),
        ]
    )
    assert matcher.entities_in("aax zeta1 start-end") == ("double", "flags", "plain")
    assert matcher.entities_in("abx zeta") == ()


def test_an_empty_watchlist_matches_nothing() -> None:
    assert Matcher(()).empty
    assert Matcher(()).entities_in("anything") == ()


def test_rules_are_validated_with_clear_messages() -> None:
    entity = WatchEntity(name="acme", hashtags=["#Acme"], mentions=["@acme", "acme_help"])
    assert entity.hashtags == ["Acme"] and entity.mentions == ["acme", "acme_help"]
    refused = {
        "needs at least one keyword": {"name": "acme"},
        "should match pattern": {"name": "Acme Corp", "keywords": ["acme"]},
        "does not compile": {"name": "acme", "regexes": ["(unclosed"]},
        "hashtags.0": {"name": "acme", "hashtags": ["@acme"]},
        "keywords.0": {"name": "acme", "keywords": ["   "]},
        "Extra inputs": {"name": "acme", "keywords": ["acme"], "colour": "red"},
    }
    for message, fields in refused.items():
        with pytest.raises(ValidationError, match=message):
            WatchEntity.model_validate(fields)


def test_the_published_schema_says_at_least_one_rule() -> None:
    schema = EntityRules.model_json_schema()
    assert {tuple(option["required"]) for option in schema["anyOf"]} == {
        ("keywords",),
        ("hashtags",),
        ("mentions",),
        ("regexes",),
    }


@dataclass
class FixedWatchlist:
    matcher: Matcher


def test_the_match_step_fills_entities_and_leaves_the_rest() -> None:
    batch = Batch()
    for offset, text in enumerate(["Apple Music rocks", "nothing here", "#acmecorp"]):
        record = SourceRecord("posts", 0, offset, None, b"")
        batch.add(record, Post(post_id=str(offset), text=text))
    watchlist = FixedWatchlist(Matcher(ENTITIES))
    posts = MatchStep(watchlist).process(batch).posts
    assert [post.entities for post in posts] == [("apple", "apple-music"), (), ("acme",)]
    assert [post.text for post in posts] == ["Apple Music rocks", "nothing here", "#acmecorp"]

    watchlist.matcher = Matcher(())  # a change lands between two batches
    assert MatchStep(watchlist).process(Batch()).posts == []
