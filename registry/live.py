"""The scorer a consumer serves, following the registry's active version while it runs.

:meth:`LiveScorer.refresh` is what the change listener (``storage.coordination``) calls on
every NOTIFY and every poll: one cheap query, and when the active version changed, a loader
thread fetches and loads the new version beside the old one. Only a fully loaded scorer is
swapped in (one attribute assignment); the score step takes :meth:`LiveScorer.current` once per
batch, so a batch is scored by one version, the old or the new, and its rows say which. A
version that fails to load is reported, and the old one keeps serving until the registry
changes again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import structlog

from model.scorer import ModelLoadError, Prediction, ScoreBatch, Scorer
from registry.store import ModelRegistry, RegistryError

log = structlog.get_logger(__name__)

Loader = Callable[[Path], Scorer]
SwapCallback = Callable[[str, str | None], None]  # (version, error or None when it loaded)


class LiveScorer:
    """A :class:`~model.scorer.Scorer` stand-in whose model is the registry's active version.

    It offers what the pipeline and the HTTP API read of a scorer (``labels``, ``version``,
    ``score``, ``predict``...), each call on the scorer current at that moment;
    :meth:`current` gives one scorer to use for a whole batch.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        initial: Scorer,
        *,
        cache_dir: Path,
        load: Loader,
        on_swap: SwapCallback | None = None,
    ) -> None:
        self._registry = registry
        self._scorer = initial
        self._cache_dir = cache_dir
        self._load = load
        self._on_swap = on_swap
        self._lock = threading.Lock()
        self._wanted: str | None = None  # the active version last read from the registry
        self._given_up: str | None = None  # a version that failed to load: not retried
        self._loader: threading.Thread | None = None

    @property
    def registry(self) -> ModelRegistry:
        return self._registry

    # What the pipeline and the API read.

    def current(self) -> Scorer:
        return self._scorer

    @property
    def labels(self) -> tuple[str, ...]:
        return self._scorer.labels

    @property
    def version(self) -> str:
        return self._scorer.version

    @property
    def metadata(self) -> Any:
        return self._scorer.metadata

    @property
    def name(self) -> str | None:
        return self._scorer.name

    @property
    def folder(self) -> Path | None:
        return self._scorer.folder

    def score(self, texts: Sequence[str]) -> ScoreBatch:
        return self._scorer.score(texts)

    def predict(self, text: str) -> Prediction:
        return self._scorer.predict(text)

    # Following the registry.

    def refresh(self) -> None:
        """Read the active version; start loading it when it is not the one serving."""
        active = self._registry.serving_state().get("active")
        with self._lock:
            wanted = active[0] if active else None
            if wanted != self._wanted:
                self._given_up = None  # the registry changed: a failed version may try again
            self._wanted = wanted
            if wanted is None or wanted in (self.version, self._given_up):
                return
            if self._loader is not None and self._loader.is_alive():
                return  # it looks again once this load is done
            self._loader = threading.Thread(
                target=self._load_and_swap, args=(wanted,), name="model-loader", daemon=True
            )
            self._loader.start()

    def wait_loaded(self, timeout_s: float | None) -> None:
        """Wait for a load in progress (start-up serves the active version from the first
        batch)."""
        with self._lock:
            loader = self._loader
        if loader is not None:
            loader.join(timeout_s)

    def _load_and_swap(self, version: str) -> None:
        try:
            self._load_version(version)
        finally:
            with self._lock:
                self._loader = None
        self.refresh_quietly()  # it may have changed again while this one loaded

    def _load_version(self, version: str) -> None:
        started = time.monotonic()
        try:
            scorer = self._load(self._registry.fetch(version, self._cache_dir))
            if scorer.version != version:
                raise ModelLoadError(f"its metadata.json says version {scorer.version}")
            if sorted(scorer.labels) != sorted(self.labels):
                raise ModelLoadError(
                    f"it predicts {', '.join(scorer.labels)}, the serving version"
                    f" {', '.join(self.labels)}"
                )
        except (RegistryError, ModelLoadError, psycopg.Error, OSError) as error:
            with self._lock:
                self._given_up = version
            log.error(
                "model version failed to load; the old version keeps serving",
                version=version,
                serving=self.version,
                error=str(error),
            )
            self._report(version, str(error) or type(error).__name__)
            return
        previous, self._scorer = self.version, scorer
        log.info(
            "model version swapped in",
            version=version,
            previous=previous,
            load_s=round(time.monotonic() - started, 3),
        )
        self._report(version, None)

    def refresh_quietly(self) -> None:
        try:
            self.refresh()
        except psycopg.Error as error:
            log.warning("cannot read the active model version", error=str(error).strip())

    def _report(self, version: str, error: str | None) -> None:
        if self._on_swap is not None:
            self._on_swap(version, error)
