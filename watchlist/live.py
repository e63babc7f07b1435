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
from storage.connection import LazyConnection
from watchlist.matcher import Matcher
from watchlist.rules import WatchEntity

log = structlog.get_logger(__name__)


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
        self._conn = LazyConnection(database_url, "sentiment-stream watchlist")
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
                self._conn.close()
                raise

    def _refresh(self) -> None:
        conn = self._conn.get()
        fingerprint = watch_entities.fingerprint(conn)
        if fingerprint == self._fingerprint:
            return
        matcher = Matcher(entities_from_rows(watch_entities.list_entities(conn)))
        self.matcher, self._fingerprint = matcher, fingerprint
        log.info("watchlist loaded", entities=len(matcher.entities))
        for callback in self._on_change:
            callback(matcher)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
