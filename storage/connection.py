"""Connections to the service's PostgreSQL for the small, side jobs (the registry, the
watchlist, shadow scoring): autocommit, a short connect timeout, a name in
``pg_stat_activity``."""

from __future__ import annotations

from typing import Any

import psycopg

from storage.urls import libpq_url

CONNECT_TIMEOUT_S = 5


def connect(database_url: str, application_name: str) -> psycopg.Connection[Any]:
    """A new autocommit connection (``with connect(...) as conn`` closes it)."""
    return psycopg.connect(
        libpq_url(database_url),
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name=application_name,
    )


class LazyConnection:
    """One connection kept open between calls, made again after it was closed or lost."""

    def __init__(self, database_url: str, application_name: str) -> None:
        self._url = database_url
        self._name = application_name
        self._conn: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url, self._name)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
