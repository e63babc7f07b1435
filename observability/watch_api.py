"""``/watch``: the watchlist over HTTP. Reading is open; changing needs the admin token.

Changes go to PostgreSQL (``watch_entities``), from where every consumer picks them up within
seconds; ``POST /match`` tries a text against this process's live watchlist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

import psycopg
import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from observability.admin import ADMIN_RESPONSES, ErrorResponse
from stream_core.contract import MAX_TEXT_CHARS, NOT_BLANK_PATTERN
from watchlist.matcher import Matcher
from watchlist.rules import NAME_PATTERN, EntityRules, RuleKind, WatchEntity
from watchlist.store import WatchStore

log = structlog.get_logger(__name__)

EntityName = Annotated[
    str,
    Path(
        description="The entity's name: lower case a-z, 0-9, _ . - (at most 64 characters).",
        pattern=NAME_PATTERN,
    ),
]
DATABASE_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "PostgreSQL did not answer"}
}
NOT_WATCHED: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No entity of that name"}
}
UNREADABLE_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be read (e.g. not UTF-8)"}
}


class Watchlist(BaseModel):
    entities: list[WatchEntity]


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(
        description=f"A post: not blank, at most {MAX_TEXT_CHARS} characters.",
        max_length=MAX_TEXT_CHARS,
        pattern=NOT_BLANK_PATTERN,
    )


class MatchHit(BaseModel):
    entity: str
    kind: RuleKind
    rule: str = Field(description="The rule as the entity states it.")
    start: int = Field(description="Where it matched, in the normalised text.")
    end: int


class MatchResponse(BaseModel):
    entities: list[str] = Field(description="The entities the text names, sorted.")
    hits: list[MatchHit]


def watch_router(
    store: WatchStore, live: Callable[[], Matcher], require_admin: Callable[..., None]
) -> APIRouter:
    """The ``/watch`` and ``/match`` routes over ``store``; ``live`` gives this process's
    current matcher."""
    router = APIRouter(tags=["watchlist"])
    admin = [Depends(require_admin)]

    @contextmanager
    def database() -> Iterator[None]:
        try:
            yield
        except psycopg.Error as error:
            log.warning("watchlist database call failed", error=str(error).strip())
            raise HTTPException(503, f"database unavailable: {type(error).__name__}") from None

    @router.get(
        "/watch", summary="The watched entities", response_model=Watchlist, responses=DATABASE_DOWN
    )
    async def list_entities() -> Watchlist:
        with database():
            return Watchlist(entities=await run_in_threadpool(store.list))

    @router.get(
        "/watch/{name}",
        summary="One watched entity",
        response_model=WatchEntity,
        responses={**NOT_WATCHED, **DATABASE_DOWN},
    )
    async def get_entity(name: EntityName) -> WatchEntity:
        with database():
            entity = await run_in_threadpool(store.get, name)
        if entity is None:
            raise HTTPException(404, f"{name} is not watched")
        return entity

    @router.put(
        "/watch/{name}",
        summary="Watch an entity, or replace its rules (admin)",
        response_model=WatchEntity,
        dependencies=admin,
        responses={
            201: {"model": WatchEntity, "description": "Created"},
            **UNREADABLE_BODY,
            **ADMIN_RESPONSES,
            **DATABASE_DOWN,
        },
    )
    async def put_entity(name: EntityName, rules: EntityRules, response: Response) -> WatchEntity:
        entity = WatchEntity(name=name, **rules.model_dump())
        with database():
            outcome = await run_in_threadpool(store.put, entity)
        response.status_code = 201 if outcome == "created" else 200
        log.info("watched entity stored", entity=name, outcome=outcome)
        return entity

    @router.delete(
        "/watch/{name}",
        summary="Stop watching an entity (admin); its counts and alerts stay",
        status_code=204,
        response_class=Response,
        dependencies=admin,
        responses={**NOT_WATCHED, **ADMIN_RESPONSES, **DATABASE_DOWN},
    )
    async def delete_entity(name: EntityName) -> Response:
        with database():
            removed = await run_in_threadpool(store.remove, name)
        if not removed:
            raise HTTPException(404, f"{name} is not watched")
        log.info("watched entity removed", entity=name)
        return Response(status_code=204)

    @router.post(
        "/match",  # not under /watch/: "match" is a valid entity name
        summary="Which watched entities a text names, and which rule matched where",
        response_model=MatchResponse,
        responses=UNREADABLE_BODY,
    )
    def match(request: MatchRequest) -> MatchResponse:
        matcher = live()
        hits = matcher.hits(request.text)
        return MatchResponse(
            entities=sorted({hit.entity for hit in hits}),
            hits=[MatchHit(**asdict(hit)) for hit in hits],
        )

    return router
