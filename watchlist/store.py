"""The watchlist in PostgreSQL, as validated entities: what the CLI and the HTTP API change.

Each call is one short connection (these are rare, human-paced calls). Database failures come
out as ``psycopg.Error``; the callers turn them into a clear CLI error or an HTTP 503.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from storage import watch_entities
from storage.connection import connect
from storage.watch_entities import Outcome, SyncResult
from watchlist.live import entities_from_rows
from watchlist.rules import WatchEntity


class WatchStore:
    """Read and change ``watch_entities``; every change reaches the consumers at commit."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with connect(self._url, "sentiment-stream watch") as conn:
            yield conn

    def list(self) -> list[WatchEntity]:
        with self._connection() as conn:
            return entities_from_rows(watch_entities.list_entities(conn))

    def get(self, name: str) -> WatchEntity | None:
        with self._connection() as conn:
            row = watch_entities.get_entity(conn, name)
        found = entities_from_rows([row]) if row is not None else []
        return found[0] if found else None

    def put(self, entity: WatchEntity) -> Outcome:
        with self._connection() as conn:
            return watch_entities.put_entity(conn, entity.model_dump())

    def remove(self, name: str) -> bool:
        with self._connection() as conn:
            return watch_entities.delete_entity(conn, name)

    def sync(self, entities: Sequence[WatchEntity], *, prune: bool) -> SyncResult:
        with self._connection() as conn:
            return watch_entities.sync(conn, [e.model_dump() for e in entities], prune=prune)
