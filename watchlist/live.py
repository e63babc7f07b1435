"""This process's copy of the watchlist, kept in step with ``watch_entities``.

:meth:`LiveWatchlist.refresh` is what the change listener (``storage.coordination``) calls on
every NOTIFY and every poll: it compares a fingerprint of the table and, only when it changed,
loads the rows and builds a new :class:`~watchlist.matcher.Matcher`. Readers take
:attr:`LiveWatchlist.matcher` once per batch; the swap is one attribute assignment, so a batch
is matched against one list, the old or the new.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from pydantic import ValidationError

from storage import watch_entities
from storage.urls import libpq_url
from watchlist.matcher import Matcher
from watchlist.rules import WatchEntity

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 5


def entities_from_rows(rows: list[dict[str, Any]]) -> list[WatchEntity]:
    """Validated entities; a row the rules refuse (edited by hand, say) is logged and left out
    rather than stopping every consumer."""
    entities = []
    for row in rows:
        try:
            entities.append(WatchEntity.model_validate(row))
        except ValidationError as error:
            log.error(
                "watched entity skipped: invalid rules", entity=row.get("name"), error=str(error)
            )
    return entities


class LiveWatchlist:
    """The current matcher; :meth:`refresh` re-reads the table when it changed."""

    def __init__(self, database_url: str) -> None:
        self._dsn = libpq_url(database_url)
        self._conn: psycopg.Connection[Any] | None = None
        self._fingerprint: str | None = None
        self._lock = threading.Lock()  # one refresh at a time (listener thread, start-up)
        self._on_change: list[Callable[[Matcher], None]] = []
        self.matcher = Matcher(())

    def on_change(self, callback: Callable[[Matcher], None]) -> None:
        """Call ``callback(new_matcher)`` after each change (and after the first load)."""
        self._on_change.append(callback)

    def refresh(self) -> None:
        """Load the watchlist if it changed since the last call."""
        with self._lock:
            try:
                self._refresh()
            except psycopg.Error:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise

    def _refresh(self) -> None:
        conn = self._connection()
        fingerprint = watch_entities.fingerprint(conn)
        if fingerprint == self._fingerprint:
            return
        matcher = Matcher(entities_from_rows(watch_entities.list_entities(conn)))
        self.matcher, self._fingerprint = matcher, fingerprint
        log.info("watchlist loaded", entities=len(matcher.entities))
        for callback in self._on_change:
            callback(matcher)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="sentiment-stream watchlist",
            )
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
