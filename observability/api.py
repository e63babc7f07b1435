"""The HTTP API (FastAPI): /predict, /stats, /model, /health, /ready, /metrics, /watch, and
model monitoring's /quality and /drift.

:func:`create_app` takes everything it serves as arguments, so tests build it with a fake scorer
and no pipeline, and the consumer builds it with the live scorer, state and registry.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the annotation of the
# ``/predict`` body, a class made per app in ``create_app``, which a string could not name.
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import structlog
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictStr, field_validator
from starlette.routing import compile_path

from observability.admin import ErrorResponse, admin_guard
from observability.label_stats import LabelDistribution, OnlineLabelStats
from observability.language_stats import LanguageMix, OnlineLanguageStats
from observability.metrics import PipelineMetrics
from observability.models_api import models_router
from observability.watch_api import watch_router
from observability.window_counts import WINDOW_PATTERN, WindowCounts, parse_window
from registry.store import ModelRegistry
from stream_core import __version__
from stream_core.contract import MAX_TEXT_CHARS, NOT_BLANK_PATTERN
from stream_core.events import PipelineState
from watchlist.matcher import Matcher
from watchlist.rules import NAME_PATTERN
from watchlist.store import WatchStore

log = structlog.get_logger(__name__)


class Prediction(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def probabilities(self) -> Mapping[str, float]: ...


class Metadata(Protocol):
    @property
    def metrics(self) -> Mapping[str, Any] | None: ...
    def model_dump(self, *, mode: str = "python") -> dict[str, Any]: ...


class Scorer(Protocol):
    """What the API needs of ``model.scorer.Scorer``."""

    @property
    def labels(self) -> Sequence[str]: ...
    @property
    def version(self) -> str: ...
    @property
    def metadata(self) -> Metadata: ...
    @property
    def name(self) -> str | None: ...
    @property
    def folder(self) -> Path | None: ...
    def predict(self, text: str) -> Prediction: ...


class Monitoring(Protocol):
    """What the API needs of ``monitoring.reader.MonitoringReader``."""

    @property
    def windows(self) -> Mapping[str, timedelta]: ...
    def quality(self, windows: Mapping[str, timedelta] | None = None) -> dict[str, Any]: ...
    def drift(self) -> dict[str, Any]: ...


class PredictRequestRules(BaseModel):
    """The body of ``POST /predict`` minus the length limit, which each app sets (see
    :func:`create_app`) and publishes as ``maxLength``."""

    model_config = ConfigDict(extra="forbid")

    text: StrictStr

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not re.search(NOT_BLANK_PATTERN, text):
            raise ValueError("text is empty or whitespace only")
        return text


class PredictResponse(BaseModel):
    label: str
    probabilities: dict[str, float]
    model_version: str


class Distribution(BaseModel):
    counts: dict[str, int]
    percentages: dict[str, float] = Field(description="Per label, 0-100 (all 0 when empty).")
    total: int


class OnlineStats(Distribution):
    since: datetime = Field(description="When this process started counting.")
    gold_labelled: int = Field(description="Posts that carried a gold label (simulator).")
    accuracy: float | None = Field(description="Agreement with those gold labels, if any.")


class WindowStats(Distribution):
    window: str
    since: datetime = Field(description="Start of the first whole bucket counted.")
    resolution: Literal["minute", "hour", "day"] = Field(
        description="The counts read: per minute up to 1 day, per hour up to 60 days, else "
        "per day (so `since` is the window's start rounded down to that)."
    )


class StatsResponse(BaseModel):
    model_version: str
    entity: str | None = Field(
        description="The watched entity `window` counts the posts of (null: the whole stream)."
    )
    offline_metrics: dict[str, Any] | None = Field(
        description="Evaluation figures from the model's metadata (null when unknown)."
    )
    online: OnlineStats = Field(description="Posts scored by this process since it started.")
    window: WindowStats | None = Field(description="All consumers, from PostgreSQL.")
    window_error: str | None = Field(description="Why `window` is null, when it is.")
    languages: LanguageMix | None = Field(
        default=None,
        description="Posts per language committed by this process since it started, and the "
        "share no model reads (null where the process counts none).",
    )
    online_quality: dict[str, Any] | None = Field(
        default=None,
        description="Online quality of this model version per monitoring window, from the "
        "late gold labels in PostgreSQL (as `GET /quality`; null when unavailable).",
    )


class ReadyResponse(BaseModel):
    ready: bool
    checks: dict[str, bool]
    missing: list[str] = Field(description="The checks that fail (empty when ready).")


class HealthResponse(BaseModel):
    status: Literal["ok"]


def _validation_error(loc: tuple[str, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


async def _validation_error_body(request: Request, error: Exception) -> JSONResponse:
    """422 with each problem's location and message, without echoing the (maybe huge) input."""
    assert isinstance(error, RequestValidationError)
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _method_not_allowed(request: Request, error: Exception) -> Response:
    """405 whose ``Allow`` names every method the OpenAPI document gives the path: a path
    served by several routes (``/watch/{name}``: GET, PUT, DELETE) would otherwise name only
    the first route's."""
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    allowed = sorted(
        {
            method.upper()
            for template, operations in paths.items()
            if compile_path(template)[0].match(request.url.path)
            for method in operations
        }
    )
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)}
    )


def create_app(
    scorer: Scorer,
    state: PipelineState,
    metrics: PipelineMetrics,
    label_stats: OnlineLabelStats,
    window_counts: WindowCounts,
    *,
    max_text_chars: int = MAX_TEXT_CHARS,
    watch_store: WatchStore | None = None,
    live_matcher: Callable[[], Matcher] = lambda: Matcher(()),
    admin_token: SecretStr | None = None,
    language_stats: OnlineLanguageStats | None = None,
    monitoring: Monitoring | None = None,
    model_registry: ModelRegistry | None = None,
) -> FastAPI:
    """The API over one scorer, pipeline state, metrics registry and statistics sources;
    ``/watch`` over ``watch_store`` (when given) and ``live_matcher`` (the process's current
    watchlist), ``/models`` over ``model_registry`` (when given), their changes guarded by
    ``admin_token``."""
    started_at = datetime.now(UTC)
    app = FastAPI(
        title="sentiment-stream",
        version=__version__,
        description="Sentiment of a Kafka stream of posts: scoring, statistics and metrics.",
    )
    app.add_exception_handler(RequestValidationError, _validation_error_body)
    app.add_exception_handler(405, _method_not_allowed)
    if watch_store is not None:
        app.include_router(watch_router(watch_store, live_matcher, admin_guard(admin_token)))
    if model_registry is not None:
        app.include_router(models_router(model_registry, admin_guard(admin_token)))

    class PredictRequest(PredictRequestRules):
        text: StrictStr = Field(
            description="The post to score: not blank, at most "
            f"{max_text_chars} characters (Unicode code points).",
            json_schema_extra={"maxLength": max_text_chars, "pattern": NOT_BLANK_PATTERN},
        )

    @app.get("/health", summary="The process is alive", response_model=HealthResponse)
    def health() -> HealthResponse:
        return HealthResponse(status="ok")

    @app.get(
        "/ready",
        summary="Model loaded, database answering and partitions assigned",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "Not ready; `missing` says why"}},
    )
    def ready() -> JSONResponse:
        checks = {
            "model_loaded": state.model_loaded,
            "database": state.database_ok,
            "partitions_assigned": bool(state.assigned_partitions()),
        }
        missing = [name for name, ok in checks.items() if not ok]
        body = ReadyResponse(ready=not missing, checks=checks, missing=missing)
        return JSONResponse(body.model_dump(), status_code=503 if missing else 200)

    @app.get(
        "/model",
        summary="The active model: its name and folder (`active`) and its metadata",
        description="`active.name` is the catalogue name it was chosen by (default, accurate; "
        "null for a folder given by path); the other keys are the folder's metadata.json.",
    )
    def model() -> dict[str, Any]:
        active = {
            "name": scorer.name,
            "folder": None if scorer.folder is None else str(scorer.folder),
        }
        return {"active": active, **scorer.metadata.model_dump(mode="json")}

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "The Prometheus text exposition format",
                "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            }
        },
    )
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        summary="Score one text with the stream's model",
        response_model=PredictResponse,
        responses={
            400: {
                "model": ErrorResponse,
                "description": "The body could not be read (e.g. it is not UTF-8)",
            }
        },
    )
    async def predict(request: PredictRequest) -> PredictResponse:
        if len(request.text) > max_text_chars:
            raise _validation_error(
                ("body", "text"),
                f"text is {len(request.text)} characters long; the limit is {max_text_chars}",
            )
        try:  # ONNX Runtime releases the GIL: score off the event loop
            prediction = await run_in_threadpool(scorer.predict, request.text)
        except ValueError as error:  # the scorer's own refusal (e.g. nothing left to score)
            raise _validation_error(("body", "text"), str(error)) from error
        return PredictResponse(
            label=prediction.label,
            probabilities={k: float(v) for k, v in prediction.probabilities.items()},
            model_version=scorer.version,
        )

    @app.get(
        "/stats",
        summary="Offline reference metrics and the online label mix",
        responses={404: {"model": ErrorResponse, "description": "`entity` is not watched"}},
    )
    async def stats(
        window: Annotated[
            str,
            Query(
                description="Time window for the PostgreSQL figures: a whole number of s, m, h "
                "or d from 1m to 366d, like 90s, 15m, 24h or 7d (the pattern says exactly that).",
                json_schema_extra={"pattern": WINDOW_PATTERN},
            ),
        ] = "1h",
        entity: Annotated[
            str | None,
            Query(
                description="A watched entity: `window` then counts only the posts naming it.",
                pattern=NAME_PATTERN,
            ),
        ] = None,
    ) -> StatsResponse:
        try:
            span = parse_window(window)
        except ValueError as error:
            raise _validation_error(("query", "window"), str(error)) from error
        if entity is not None and entity not in live_matcher().names:
            raise HTTPException(404, f"{entity} is not watched (see GET /watch)")
        online = label_stats.distribution()
        accuracy = label_stats.accuracy()
        window_stats, window_error = await _window_stats(window, span, entity)
        offline = scorer.metadata.metrics
        online_quality = None
        if monitoring is not None:
            try:
                found = await run_in_threadpool(monitoring.quality)
                online_quality = {
                    window: versions.get(scorer.version)
                    for window, versions in found["windows"].items()
                }
            except Exception as error:  # a dashboard call must not fail because the DB does
                log.warning("online quality unavailable", error=str(error))
        return StatsResponse(
            model_version=scorer.version,
            entity=entity,
            offline_metrics=dict(offline) if offline is not None else None,
            online=OnlineStats(
                **asdict(online),
                since=started_at,
                gold_labelled=accuracy.labelled,
                accuracy=accuracy.accuracy,
            ),
            window=window_stats,
            window_error=window_error,
            languages=language_stats.mix() if language_stats is not None else None,
            online_quality=online_quality,
        )

    unavailable: dict[int | str, dict[str, Any]] = {
        503: {"model": ErrorResponse, "description": "No database, or no monitoring"}
    }

    def _monitoring() -> Monitoring:
        if monitoring is None:
            raise HTTPException(503, "model monitoring is not running in this process")
        return monitoring

    @app.get(
        "/quality",
        summary="Online quality from late gold labels, per window and model version",
        description="Per monitoring window (SENTIMENT_MONITOR_WINDOWS) and model version: "
        "labelled posts (`n`), macro recall (TweetEval's metric), accuracy, per-class figures "
        "and the confusion matrix (rows gold, columns predicted), beside the offline "
        "reference. Null figures: no label in the window (never a 0).",
        responses=unavailable,
    )
    async def quality(
        window: Annotated[
            str | None,
            Query(
                description="One window instead of the configured ones (like 15m, 1h, 24h).",
                json_schema_extra={"pattern": WINDOW_PATTERN},
            ),
        ] = None,
    ) -> dict[str, Any]:
        reader = _monitoring()
        windows = None
        if window is not None:
            try:
                windows = {window: parse_window(window)}
            except ValueError as error:
                raise _validation_error(("query", "window"), str(error)) from error
        try:
            return await run_in_threadpool(reader.quality, windows)
        except Exception as error:
            log.warning("online quality unavailable", error=str(error))
            raise HTTPException(503, f"database unavailable: {type(error).__name__}") from None

    @app.get(
        "/drift",
        summary="Drift of the served model's inputs and outputs against its reference profile",
        description="The elected replica's last computation per window and feature: PSI and "
        "Jensen-Shannon distance against the model folder's profile.json. `available: false` "
        "with a `reason` when it could not be measured (no reference profile, too few posts): "
        "never a 0.",
        responses=unavailable,
    )
    async def drift() -> dict[str, Any]:
        reader = _monitoring()
        try:
            return await run_in_threadpool(reader.drift)
        except Exception as error:
            log.warning("drift unavailable", error=str(error))
            raise HTTPException(503, f"database unavailable: {type(error).__name__}") from None

    async def _window_stats(
        window: str, span: timedelta, entity: str | None
    ) -> tuple[WindowStats | None, str | None]:
        try:
            found = await run_in_threadpool(window_counts, span, entity)
        except Exception as error:  # a dashboard call must not fail because the DB does
            log.warning("window statistics unavailable", error=str(error))
            return None, f"database unavailable: {type(error).__name__}"
        distribution = LabelDistribution.of(scorer.labels, found.counts)
        return WindowStats(
            **asdict(distribution),
            window=window,
            since=found.since,
            resolution=found.resolution.value,
        ), None

    return app
