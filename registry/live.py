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
from typing import Any, Literal

import psycopg
import structlog

from model.scorer import ModelLoadError, Prediction, ScoreBatch, Scorer
from registry.store import ModelRegistry, RegistryError

log = structlog.get_logger(__name__)

Loader = Callable[[Path], Scorer]
Role = Literal["active", "shadow"]
# (role, version, error or None when it loaded)
SwapCallback = Callable[[Role, str, str | None], None]


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
        self._shadow: tuple[Scorer, float] | None = None
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, float]] = {}  # as last read from the registry
        self._given_up: set[str] = set()  # versions that failed to load: not retried
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

    def shadow(self) -> tuple[Scorer, float] | None:
        """The shadow version's scorer and the share of posts it scores, when there is one."""
        return self._shadow

    # Following the registry.

    def refresh(self) -> None:
        """Read the active and shadow versions; start loading those not loaded yet."""
        state = self._registry.serving_state()
        with self._lock:
            if state != self._state:
                self._given_up.clear()  # the registry changed: a failed version may try again
                self._state = state
            if not self._work_left():
                return
            if self._loader is not None and self._loader.is_alive():
                return  # it looks again once this load is done
            self._loader = threading.Thread(target=self._sync, name="model-loader", daemon=True)
            self._loader.start()

    def wait_loaded(self, timeout_s: float | None) -> None:
        """Wait for a load in progress (start-up serves the active version from the first
        batch)."""
        with self._lock:
            loader = self._loader
        if loader is not None:
            loader.join(timeout_s)

    def _wanted(self, role: Role) -> tuple[str, float] | None:
        wanted = self._state.get(role)
        return None if wanted is None or wanted[0] in self._given_up else wanted

    def _work_left(self) -> bool:
        """Whether a version must be loaded; a dropped shadow or a new sample needs none."""
        active, shadow = self._wanted("active"), self._wanted("shadow")
        if "shadow" not in self._state:
            self._shadow = None
        elif self._shadow is not None and shadow and self._shadow[0].version == shadow[0]:
            self._shadow = (self._shadow[0], shadow[1])
        loaded_shadow = self._shadow[0].version if self._shadow else None
        return bool(
            (active and active[0] != self.version) or (shadow and shadow[0] != loaded_shadow)
        )

    def _sync(self) -> None:
        try:
            with self._lock:
                active = self._wanted("active")
            if active and active[0] != self.version:
                scorer = self._load_version("active", active[0])
                if scorer is not None:
                    previous, self._scorer = self.version, scorer
                    log.info("model version swapped in", version=active[0], previous=previous)
            with self._lock:
                shadow = self._wanted("shadow")
            if shadow and (self._shadow is None or self._shadow[0].version != shadow[0]):
                scorer = self._load_version("shadow", shadow[0])
                if scorer is not None:
                    self._shadow = (scorer, shadow[1])
                    log.info("shadow version loaded", version=shadow[0], sample=shadow[1])
        finally:
            with self._lock:
                self._loader = None
        self.refresh_quietly()  # it may have changed again while these loaded

    def _load_version(self, role: Role, version: str) -> Scorer | None:
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
                self._given_up.add(version)
            log.error(
                "model version failed to load; the old version keeps serving",
                role=role,
                version=version,
                serving=self.version,
                error=str(error),
            )
            self._report(role, version, str(error) or type(error).__name__)
            return None
        log.info(
            "model version loaded",
            role=role,
            version=version,
            load_s=round(time.monotonic() - started, 3),
        )
        self._report(role, version, None)
        return scorer

    def refresh_quietly(self) -> None:
        try:
            self.refresh()
        except psycopg.Error as error:
            log.warning("cannot read the active model version", error=str(error).strip())

    def _report(self, role: Role, version: str, error: str | None) -> None:
        if self._on_swap is not None:
            self._on_swap(role, version, error)
