"""``/models``: the model registry over HTTP. Reading is open; changing needs the admin token.

A change is one transaction with its audit row; every consumer follows it within seconds
(NOTIFY). Registering a folder stays a CLI command (``model register``): it uploads files from
the operator's machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import psycopg
import structlog
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from observability.admin import ADMIN_RESPONSES, ErrorResponse
from observability.watch_api import DATABASE_DOWN, UNREADABLE_BODY
from registry.store import ModelRegistry, ModelVersion, RegistryError, UnknownVersionError
from stream_core.windows import WINDOW_PATTERN, parse_window

log = structlog.get_logger(__name__)

VERSION_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
API_ACTOR = "http-api"

VersionName = Annotated[
    str, Path(description="A registered version (`GET /models`).", pattern=VERSION_PATTERN)
]
UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No version of that name"}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Not possible in the versions' current status"}
}


class VersionOut(BaseModel):
    version: str
    sha256: str = Field(description="Of the folder's files (path, size, sha256 of each).")
    status: str = Field(description="registered, shadow, active or retired.")
    note: str
    registered_by: str
    registered_at: datetime
    status_by: str
    status_reason: str
    status_at: datetime
    previous_version: str | None = Field(description="What a rollback returns to.")
    shadow_sample: float
    offline_metrics: dict[str, Any] | None = Field(description="From its metadata.json.")

    @classmethod
    def of(cls, version: ModelVersion) -> VersionOut:
        fields = {k: v for k, v in vars(version).items() if k != "metadata"}
        return cls(**fields, offline_metrics=version.offline_metrics)


class VersionList(BaseModel):
    versions: list[VersionOut]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    action: str
    version: str
    from_status: str | None
    to_status: str | None
    actor: str
    reason: str


class History(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first.")


class ComparisonOut(BaseModel):
    shadow_version: str
    since: datetime
    shadowed: int = Field(description="Posts the shadow version scored in the window.")
    agreement: float | None = Field(description="Share labelled as the served version did.")
    confusion: dict[str, dict[str, dict[str, int]]] = Field(
        description="Served version -> its label -> the shadow's label -> posts."
    )
    served_quality: dict[str, Any] = Field(
        description="Online quality of what served the labelled shadowed posts."
    )
    shadow_quality: dict[str, Any] = Field(description="The shadow's, on the same posts.")


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000, description="Why, for the audit trail.")


class ShadowChange(Change):
    sample: float = Field(
        1.0, gt=0, le=1, description="Share of the active version's posts scored in shadow."
    )


def models_router(registry: ModelRegistry, require_admin: Any) -> APIRouter:
    """The ``/models`` routes over ``registry``."""
    router = APIRouter(prefix="/models", tags=["models"])
    admin = [Depends(require_admin)]
    changes: dict[int | str, dict[str, Any]] = {
        **UNKNOWN,
        **REFUSED,
        **UNREADABLE_BODY,
        **ADMIN_RESPONSES,
        **DATABASE_DOWN,
    }

    @contextmanager
    def answers() -> Iterator[None]:
        try:
            yield
        except UnknownVersionError as error:
            raise HTTPException(404, str(error)) from None
        except RegistryError as error:
            raise HTTPException(409, str(error)) from None
        except psycopg.Error as error:
            log.warning("registry database call failed", error=str(error).strip())
            raise HTTPException(503, f"database unavailable: {type(error).__name__}") from None

    def actor(change: Change | None) -> dict[str, str]:
        return {"actor": API_ACTOR, "reason": change.reason if change else ""}

    @router.get(
        "", summary="The registered versions", response_model=VersionList, responses=DATABASE_DOWN
    )
    async def list_versions() -> VersionList:
        with answers():
            found = await run_in_threadpool(registry.versions)
        return VersionList(versions=[VersionOut.of(v) for v in found])

    @router.get(
        "/history",
        summary="The audit trail, newest first",
        response_model=History,
        responses=DATABASE_DOWN,
    )
    async def audit(limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> History:
        with answers():
            rows = await run_in_threadpool(registry.history, limit)
        return History(entries=[AuditEntry(**row) for row in rows])

    @router.get(
        "/compare",
        summary="The shadow version against what served the same posts",
        response_model=ComparisonOut,
        responses={**UNKNOWN, **REFUSED, **DATABASE_DOWN},
    )
    async def compare(
        since: Annotated[str, Query(description="How far back.", pattern=WINDOW_PATTERN)] = "1h",
        version: Annotated[
            str | None,
            Query(description="Default: the shadow version.", pattern=VERSION_PATTERN),
        ] = None,
    ) -> ComparisonOut:
        with answers():
            found = await run_in_threadpool(registry.compare, version, parse_window(since))
        return ComparisonOut(**found.document())

    @router.post(
        "/active/rollback",
        summary="Reactivate the version the active one replaced (admin)",
        response_model=VersionOut,
        dependencies=admin,
        responses=changes,
    )
    async def rollback(change: Annotated[Change | None, Body()] = None) -> VersionOut:
        with answers():
            found = await run_in_threadpool(lambda: registry.rollback(**actor(change)))
        log.info("model rolled back over HTTP", version=found.version)
        return VersionOut.of(found)

    @router.get(
        "/{version}",
        summary="One version",
        response_model=VersionOut,
        responses={**UNKNOWN, **DATABASE_DOWN},
    )
    async def get_version(version: VersionName) -> VersionOut:
        with answers():
            return VersionOut.of(await run_in_threadpool(registry.get, version))

    @router.post(
        "/{version}/promote",
        summary="Make a version the active one (admin)",
        response_model=VersionOut,
        dependencies=admin,
        responses=changes,
    )
    async def promote(
        version: VersionName, change: Annotated[Change | None, Body()] = None
    ) -> VersionOut:
        with answers():
            found = await run_in_threadpool(lambda: registry.promote(version, **actor(change)))
        log.info("model promoted over HTTP", version=version)
        return VersionOut.of(found)

    @router.post(
        "/{version}/shadow",
        summary="Score live posts with a version too (admin)",
        response_model=VersionOut,
        dependencies=admin,
        responses=changes,
    )
    async def shadow(
        version: VersionName, change: Annotated[ShadowChange | None, Body()] = None
    ) -> VersionOut:
        with answers():
            found = await run_in_threadpool(
                lambda: registry.shadow(
                    version, sample=change.sample if change else 1.0, **actor(change)
                )
            )
        return VersionOut.of(found)

    @router.post(
        "/{version}/retire",
        summary="Take a version out of use (admin)",
        response_model=VersionOut,
        dependencies=admin,
        responses=changes,
    )
    async def retire(
        version: VersionName, change: Annotated[Change | None, Body()] = None
    ) -> VersionOut:
        with answers():
            found = await run_in_threadpool(lambda: registry.retire(version, **actor(change)))
        return VersionOut.of(found)

    return router
