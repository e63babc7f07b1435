"""The `window` of `/stats`: its format, its bounds, and what reads the counts over it
(``storage.rollups.PostgresWindowCounts`` in the service, at the resolution that fits the
window; a fake in tests)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from storage.rollups import LabelCounts
from stream_core.windows import (
    MAX_WINDOW,
    MIN_WINDOW,
    WINDOW_PATTERN,
    integer_range_pattern,
    parse_window,
)

__all__ = [
    "MAX_WINDOW",
    "MIN_WINDOW",
    "WINDOW_PATTERN",
    "WindowCounts",
    "integer_range_pattern",
    "parse_window",
]


class WindowCounts(Protocol):
    """Counts per label over the last ``window``, of the whole stream or of the posts naming
    ``entity`` (raises on database trouble)."""

    def __call__(self, window: timedelta, entity: str | None = None) -> LabelCounts: ...
