"""Which model scores a post, by its language: the default model reads the languages its
metadata declares, ``SENTIMENT_LANGUAGE_MODELS`` adds a model per language, and an optional
multilingual fallback reads the rest. A post no model reads is left unscored.

The score step reads the routes once per batch through :class:`RoutingSource`, so a source that
changes them (:class:`FollowingRoutes`, on the model registry's active version) swaps them
between batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from language.identify import UNDETERMINED

if TYPE_CHECKING:
    from consumer.scoring import BatchScorer
    from language.settings import LanguageSettings
    from model.scorer import Scorer

log = structlog.get_logger(__name__)


class RoutingError(ValueError):
    """A language model folder cannot serve the languages it is configured for."""


@dataclass(frozen=True, slots=True)
class Route:
    """A model and the languages it reads (None: every language, no identification needed)."""

    scorer: BatchScorer
    languages: frozenset[str] | None


class Routes:
    """The models of one batch; also a static :class:`RoutingSource`.

    A language's own model (``by_language``) comes before the default model, the fallback
    after both.
    """

    def __init__(
        self,
        default: Route,
        by_language: Sequence[Route] = (),
        fallback: BatchScorer | None = None,
    ) -> None:
        self.default = default
        self._by_language = tuple(by_language)
        self._routes = (*self._by_language, default)
        self.fallback = fallback

    @classmethod
    def everything(cls, scorer: BatchScorer) -> Routes:
        """One model for every post, whatever its language."""
        return cls(Route(scorer, None))

    def routes(self) -> Routes:
        return self

    def with_default(self, primary: Scorer) -> Routes:
        """These routes with ``primary`` as the default model, reading the languages its
        metadata declares."""
        return Routes(default_route(primary), self._by_language, self.fallback)

    def scorer_for(self, lang: str | None) -> BatchScorer | None:
        """The model that reads ``lang``, or None: no model does.

        A post whose language is not known goes to the default model: identification off and
        no lang in the message, or ``und`` (too little text to tell: "lol", emoji, numbers).
        """
        if lang is None or lang == UNDETERMINED:
            return self.default.scorer
        for route in self._routes:
            if route.languages is None or lang in route.languages:
                return route.scorer
        return self.fallback

    @property
    def languages(self) -> frozenset[str]:
        """Every language some model reads (the fallback's excepted: it reads any)."""
        return frozenset().union(*(route.languages or () for route in self._routes))


class RoutingSource(Protocol):
    """What the score step asks once per batch: the routes to score it with."""

    def routes(self) -> Routes: ...


class LiveModel(Protocol):
    """A default model that can change while the consumer runs (``registry.live.LiveScorer``)."""

    def current(self) -> Scorer: ...


class FollowingRoutes:
    """A :class:`RoutingSource` whose default model is ``primary``'s current one: when the
    registry swaps it, the routes are rebuilt with the new version and the languages it
    declares; the language models and the fallback stay. ``on_change`` hears of the new
    version (monitoring follows it)."""

    def __init__(
        self,
        primary: LiveModel,
        routes: Routes,
        on_change: Callable[[Scorer], None] | None = None,
    ) -> None:
        self._primary = primary
        self._routes = routes
        self._on_change = on_change

    def routes(self) -> Routes:
        routes, current = self._routes, self._primary.current()
        if current is not routes.default.scorer:
            routes = self._routes = routes.with_default(current)
            log.info(
                "language routes follow the active version",
                default=current.version,
                default_languages=list(current.metadata.languages),
            )
            if self._on_change is not None:
                self._on_change(current)
        return routes


def default_route(primary: Scorer) -> Route:
    """The default model's route: the languages its metadata declares."""
    return Route(primary, frozenset(primary.metadata.languages))


def load_routes(
    settings: LanguageSettings, primary: Scorer, load: Callable[[Path], Scorer]
) -> Routes:
    """The default model ``primary``, the models of ``settings.language_models`` and the
    fallback, each loaded once by ``load`` (a folder may serve several languages)."""
    loaded: dict[Path, Scorer] = {}

    def scorer(folder: Path) -> Scorer:
        if folder not in loaded:
            loaded[folder] = load(folder)
            _check_labels(loaded[folder], primary)
        return loaded[folder]

    by_language: Mapping[str, Scorer] = {
        lang: scorer(folder) for lang, folder in sorted(settings.language_models.items())
    }
    for lang, model in by_language.items():
        if lang not in model.metadata.languages:
            raise RoutingError(
                f"{model.folder} is configured for {lang!r} (SENTIMENT_LANGUAGE_MODELS) but its "
                f"metadata declares {', '.join(model.metadata.languages)}"
            )
    routes = [Route(model, frozenset({lang})) for lang, model in by_language.items()]
    fallback = scorer(settings.fallback_model) if settings.fallback_model else None
    log.info(
        "language routes",
        default=primary.version,
        default_languages=list(primary.metadata.languages),
        models={lang: model.version for lang, model in by_language.items()},
        fallback=fallback.version if fallback else None,
    )
    return Routes(default_route(primary), routes, fallback)


def _check_labels(model: Scorer, primary: Scorer) -> None:
    # Rows store probabilities in the default model's label order.
    if model.labels != primary.labels:
        raise RoutingError(
            f"{model.folder} predicts {', '.join(model.labels)}; every routed model must "
            f"predict the default model's labels in its order ({', '.join(primary.labels)})"
        )
