"""Label counts over a recent time window, from the ``sentiment_minute_counts`` aggregate."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Protocol

import psycopg

from storage.urls import libpq_url

WINDOW_PATTERN = r"^[1-9][0-9]{0,5}[smhd]$"
MIN_WINDOW = timedelta(minutes=1)  # the aggregate's resolution
MAX_WINDOW = timedelta(days=366)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

# Whole minutes: the minute that holds ``now() - window`` counts in full.
WINDOW_QUERY = """
SELECT label, COALESCE(SUM(count), 0)::bigint
FROM sentiment_minute_counts
WHERE minute >= date_trunc('minute', now() - %(window)s::interval)
GROUP BY label
"""


def parse_window(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"24h"`` or ``"7d"`` -> a timedelta (ValueError when invalid)."""
    if not re.fullmatch(WINDOW_PATTERN, text):
        raise ValueError(f"window must look like 90s, 15m, 24h or 7d, got {text!r}")
    window = timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ValueError(f"window must be between 1m and 366d, got {text!r}")
    return window


class WindowCounts(Protocol):
    """Counts per label over the last ``window`` (raises on database trouble)."""

    def __call__(self, window: timedelta) -> dict[str, int]: ...


class PostgresWindowCounts:
    """Reads the per-minute aggregate; one short connection per call (``/stats`` is rare)."""

    def __init__(self, database_url: str, timeout_s: int = 5) -> None:
        self._dsn = libpq_url(database_url)
        self._timeout_s = timeout_s

    def __call__(self, window: timedelta) -> dict[str, int]:
        with psycopg.connect(
            self._dsn,
            connect_timeout=self._timeout_s,
            options=f"-c statement_timeout={self._timeout_s * 1000}",
        ) as conn:
            rows = conn.execute(WINDOW_QUERY, {"window": window}).fetchall()
        return {str(label): int(count) for label, count in rows}
