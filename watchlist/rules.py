"""What a watched entity is: a name and its match rules, validated the same way wherever they
come from (the CLI, the HTTP API, a YAML file).

Four kinds of rule, any mix, at least one rule in all (docs/watchlist.md shows examples):

* ``keywords``: words or phrases, matched as whole words, case- and accent-insensitively;
* ``hashtags``: ``#tag`` only as a hashtag (``#`` optional in the rule);
* ``mentions``: ``@handle`` only as a mention (``@`` optional in the rule);
* ``regexes``: Python regular expressions, searched in the normalised text.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from stream_core.contract import WHITESPACE

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
# Patterns spelled out so that Python, pydantic and JSON Schema validators (ECMAScript regexes)
# read them the same way; no NUL anywhere (PostgreSQL text cannot hold one).
NO_NUL_PATTERN = r"^[^\u0000]*$"
RULE_PATTERN = f"^[^\\u0000]*[^{WHITESPACE}\\u0000][^\\u0000]*$"  # and not blank
# A tag: anything but whitespace, # and @, after an optional sigil.
HASHTAG_PATTERN = f"^#?[^#@{WHITESPACE}\\u0000]+$"
MENTION_PATTERN = f"^@?[^#@{WHITESPACE}\\u0000]+$"
MAX_RULES_PER_KIND = 200
MAX_RULE_CHARS = 200
MAX_REGEX_CHARS = 500
MAX_DESCRIPTION_CHARS = 500


class RuleKind(StrEnum):
    KEYWORD = "keyword"
    HASHTAG = "hashtag"
    MENTION = "mention"
    REGEX = "regex"


# The field of each kind, in the order the docs and the CLI list them.
RULE_FIELDS = {
    RuleKind.KEYWORD: "keywords",
    RuleKind.HASHTAG: "hashtags",
    RuleKind.MENTION: "mentions",
    RuleKind.REGEX: "regexes",
}

Keyword = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_RULE_CHARS, pattern=RULE_PATTERN)
]
Hashtag = Annotated[str, StringConstraints(max_length=MAX_RULE_CHARS, pattern=HASHTAG_PATTERN)]
Mention = Annotated[str, StringConstraints(max_length=MAX_RULE_CHARS, pattern=MENTION_PATTERN)]
# The text must compile as a *Python* regular expression (the matcher's syntax), which is not
# JSON Schema's "regex" format (ECMAScript: "a{" is a Python pattern, "(?P<n>x)" too, neither
# an ECMAScript one): a format of our own says so, and a 422 answers one that does not compile.
PYTHON_REGEX_FORMAT = "python-regex"
Regex = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_REGEX_CHARS, pattern=RULE_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "format": PYTHON_REGEX_FORMAT,
            "minLength": 1,
            "maxLength": MAX_REGEX_CHARS,
            "pattern": RULE_PATTERN,
        }
    ),
]


def _rules(description: str) -> Any:
    return Field(default_factory=list, max_length=MAX_RULES_PER_KIND, description=description)


class EntityRules(BaseModel):
    """An entity's rules and options: the body of ``PUT /watch/{name}``, a YAML entry minus
    its name."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # 0 is not false, nor 1 a keyword: as the published schema says
        # At least one rule of some kind, stated in the schema too (any one list non-empty).
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"minItems": 1}}}
                for name in RULE_FIELDS.values()
            ]
        },
    )

    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS, pattern=NO_NUL_PATTERN)
    keywords: list[Keyword] = _rules(
        "Words or phrases, matched as whole words, ignoring case and accents."
    )
    hashtags: list[Hashtag] = _rules("Hashtags (the leading # is optional), matched as tags.")
    mentions: list[Mention] = _rules("Handles (the leading @ is optional), matched as mentions.")
    regexes: list[Regex] = _rules(
        "Python regular expressions, searched case-insensitively in the normalised text "
        "(lower case, no accents, single spaces). A pattern that does not compile is a 422.",
    )
    metrics: bool = Field(
        default=False,
        description="Export Prometheus series for this entity (bounded: see "
        "SENTIMENT_WATCH_METRICS_MAX).",
    )

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, tags: list[str]) -> list[str]:
        return [tag.removeprefix("#") for tag in tags]

    @field_validator("mentions")
    @classmethod
    def _mentions(cls, handles: list[str]) -> list[str]:
        return [handle.removeprefix("@") for handle in handles]

    @field_validator("regexes")
    @classmethod
    def _regexes_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            compile_regex(pattern)  # re.error is a ValueError: a clear 422 / usage error
        return patterns

    @model_validator(mode="after")
    def _some_rule(self) -> EntityRules:
        if not self.rule_count():
            raise ValueError("an entity needs at least one keyword, hashtag, mention or regex")
        return self

    def rule_count(self) -> int:
        return sum(len(getattr(self, name)) for name in RULE_FIELDS.values())


class WatchEntity(EntityRules):
    """A watched entity: a unique name (lower-case letters, digits, ``_ . -``) and its rules."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique, lower case: a-z 0-9 _ . -")


def compile_regex(pattern: str) -> re.Pattern[str]:
    """A rule's regular expression, compiled as the matcher runs it (ValueError when invalid)."""
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise ValueError(f"regex {pattern!r} does not compile: {error}") from None
