"""The demo's `--promote-at`: part-way through the stream, the model the consumer serves is
registered again under another version name and promoted, as an operator would a retrained
one; the consumer switches between two batches, and the rows say which version scored them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from demo.database import DemoDatabase
from model.catalogue import resolve
from model.metadata import ModelMetadata
from registry.store import ModelRegistry

log = structlog.get_logger(__name__)


class DemoPromotion:
    """Promotes a second version once; :meth:`figures` says what the rows show."""

    def __init__(self, model: Path, models_dir: Path, database_url: str, workdir: Path) -> None:
        self._model, self._models_dir = model, models_dir
        self._registry = ModelRegistry(database_url)
        self._database = DemoDatabase(database_url)
        self._workdir = workdir
        self.version: str | None = None
        self.promoted_at: datetime | None = None

    def promote(self) -> None:
        _, folder = resolve(self._model, self._models_dir)
        copy = self._workdir / "promoted-model"
        shutil.copytree(folder, copy)
        metadata = ModelMetadata.read(copy)
        metadata.with_updates(version=f"{metadata.version}-promoted").write(copy)
        version = self._registry.register(copy, note="the demo's --promote-at").version.version
        self._registry.promote(version, reason="the demo's --promote-at")
        self.version, self.promoted_at = version, datetime.now(UTC)
        log.info("demo promoted a second model version", version=version)

    def figures(self) -> dict[str, Any]:
        if self.version is None or self.promoted_at is None:
            return {}
        rows = self._database.rows_by_version()
        first_new = rows.get(self.version, (0, None, None))[1]
        return {
            "promotion": {
                "version": self.version,
                "promoted_at": self.promoted_at.isoformat(),
                "rows_by_version": {version: n for version, (n, _, _) in sorted(rows.items())},
                "first_row_after_s": (
                    round((first_new - self.promoted_at).total_seconds(), 2)
                    if first_new is not None
                    else None
                ),
            }
        }
