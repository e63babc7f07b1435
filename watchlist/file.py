"""The watchlist as a YAML file, for GitOps: ``watch load`` makes the database equal the file,
``watch list --format yaml`` writes one back.

::

    entities:
      - name: acme
        description: ACME Corporation and its support account
        keywords: [acme corp, acme inc]
        hashtags: [acme]
        mentions: [acme_help]
        regexes: ['\\bacme\\s?\\d{3}\\b']
        metrics: true
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from watchlist.rules import WatchEntity


class WatchlistFileError(ValueError):
    """The file cannot be read, is not YAML, or does not describe a valid watchlist."""


class WatchlistFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entities: list[WatchEntity]


def read_watchlist(path: Path) -> list[WatchEntity]:
    """The entities of a watchlist file; :class:`WatchlistFileError` says what is wrong."""
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise WatchlistFileError(f"cannot read {path}: {error}") from None
    except yaml.YAMLError as error:
        raise WatchlistFileError(f"{path} is not valid YAML: {error}") from None
    if document is None:
        document = {"entities": []}
    try:
        entities = WatchlistFile.model_validate(document).entities
    except ValidationError as error:
        problems = "; ".join(_where(document, e["loc"]) + e["msg"] for e in error.errors())
        raise WatchlistFileError(f"{path}: {problems}") from None
    twice = sorted(name for name, n in Counter(e.name for e in entities).items() if n > 1)
    if twice:
        raise WatchlistFileError(f"{path}: entities named more than once: {', '.join(twice)}")
    return entities


def dump_watchlist(entities: Sequence[WatchEntity]) -> str:
    """YAML that :func:`read_watchlist` reads back to the same entities (empty lists omitted)."""
    documents = [
        {
            key: value
            for key, value in entity.model_dump().items()
            if value not in ([], "") or key == "name"
        }
        for entity in entities
    ]
    # The name first, then the fields in the model's order.
    ordered = [{"name": doc.pop("name"), **doc} for doc in documents]
    return yaml.safe_dump({"entities": ordered}, sort_keys=False, allow_unicode=True)


def _where(document: Any, loc: tuple[int | str, ...]) -> str:
    """``entities[3] (acme).keywords.0: `` for an error at that location."""
    if len(loc) < 2 or loc[0] != "entities" or not isinstance(loc[1], int):
        return ".".join(str(part) for part in loc) + ": " if loc else ""
    entry = document["entities"][loc[1]]
    name = f" ({entry['name']})" if isinstance(entry, dict) and "name" in entry else ""
    rest = "".join(f".{part}" for part in loc[2:])
    return f"entities[{loc[1]}]{name}{rest}: "
