"""Named models: what ``SENTIMENT_MODEL=accurate`` (or ``fast``, ``default``) means.

A name stands for a model folder. ``default`` (alias ``fast``) ships inside the package; larger
models are too big to ship and are built offline into the models folder (``SENTIMENT_MODELS_DIR``)
by ``sentiment-stream model build NAME``. Anything that is not a name is a folder path
(``./accurate`` for a folder that happens to be called like a name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.metadata import MetadataError, ModelMetadata
from model.scorer import ModelLoadError
from model.settings import DEFAULT_MODEL_DIR


@dataclass(frozen=True)
class NamedModel:
    name: str
    aliases: tuple[str, ...]
    summary: str  # what it is and when to pick it
    shipped: bool  # inside the package; otherwise `model build NAME` makes it

    def folder(self, models_dir: Path) -> Path:
        return DEFAULT_MODEL_DIR if self.shipped else models_dir / self.name

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


CATALOGUE: tuple[NamedModel, ...] = (
    NamedModel(
        name="default",
        aliases=("fast",),
        summary="all-MiniLM-L6-v2 (22M parameters) fine-tuned on 8,000 TweetEval tweets; "
        "ships in the package; the choice for throughput",
        shipped=True,
    ),
    NamedModel(
        name="accurate",
        aliases=(),
        summary="all-mpnet-base-v2 (110M parameters) fine-tuned on the same tweets, int8 with "
        "SmoothQuant, averaged with the default in one graph; built offline by "
        "`sentiment-stream model build accurate`; for when accuracy matters more than cost "
        "(macro recall 0.7265 against the default's, several times slower: docs/model.md)",
        shipped=False,
    ),
)


class ModelNotBuiltError(ModelLoadError):
    """A named model that is built on the user's machine has not been built yet."""


def named(name: str) -> NamedModel | None:
    return next((entry for entry in CATALOGUE if name in entry.names), None)


def resolve(value: str | Path, models_dir: Path) -> tuple[str | None, Path]:
    """(catalogue name or None, folder) for a ``--model`` / ``SENTIMENT_MODEL`` value.

    A named model that must be built and is not gets a :class:`ModelNotBuiltError` that says
    how to build it.
    """
    entry = named(str(value))
    if entry is None:
        return None, Path(value).expanduser()
    folder = entry.folder(models_dir)
    if not entry.shipped and not (folder / "metadata.json").is_file():
        raise ModelNotBuiltError(
            f"model {entry.name!r} is not built in {folder}: build it offline with "
            f"`sentiment-stream model build {entry.name} --data <tweeteval folder>` "
            "(see docs/model.md), or set SENTIMENT_MODELS_DIR to where it was built"
        )
    return entry.name, folder


def name_of(folder: Path, models_dir: Path) -> str | None:
    """The catalogue name of ``folder``, if it is a named model's."""
    for entry in CATALOGUE:
        if _same(entry.folder(models_dir), folder):
            return entry.name
    return None


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


def listing(active: str | Path, models_dir: Path) -> list[dict[str, Any]]:
    """One row per named model, plus the active folder when it is not a named one: name,
    folder, built, active, size, version, macro recall and tweets/s from its metadata."""
    try:
        _name, active_folder = resolve(active, models_dir)
    except ModelNotBuiltError:
        entry = named(str(active))
        active_folder = entry.folder(models_dir) if entry else Path(active)
    rows = [
        _row(entry.name, entry.aliases, entry.folder(models_dir), active_folder, entry.summary)
        for entry in CATALOGUE
    ]
    if not any(row["active"] for row in rows):
        rows.append(_row(None, (), active_folder, active_folder, "a model folder (--model)"))
    return rows


def _row(
    name: str | None, aliases: tuple[str, ...], folder: Path, active: Path, summary: str
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "aliases": list(aliases),
        "folder": str(folder),
        "built": False,
        "active": _same(folder, active),
        "summary": summary,
    }
    try:
        metadata = ModelMetadata.read(folder)
    except MetadataError:
        return row
    metrics = metadata.metrics or {}
    row.update(
        built=True,
        version=metadata.version,
        size_mb=round(sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6, 1),
        macro_recall=metrics.get("macro_recall"),
        evaluated_on=metrics.get("splits"),
        tweets_per_s=(metadata.throughput or {}).get("tweets_per_s"),
    )
    return row
