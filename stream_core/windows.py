"""Time windows written as text (``90s``, ``15m``, ``24h``, ``7d``): their format, their bounds
and their parsing, shared by ``/stats``, the monitoring windows and the reports, and
``model compare-live --since``."""

from __future__ import annotations

import re
from datetime import timedelta

MIN_WINDOW = timedelta(minutes=1)  # the aggregate's resolution
MAX_WINDOW = timedelta(days=366)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _same_length_alternatives(low: str, high: str) -> list[str]:
    """Regex alternatives matching exactly the digit strings from ``low`` to ``high`` (same
    length, leading zeros allowed: they are tails of longer numbers)."""
    if low == high:
        return [low]
    if low[0] == high[0]:
        return [low[0] + tail for tail in _same_length_alternatives(low[1:], high[1:])]
    rest = len(low) - 1
    first, last = int(low[0]), int(high[0])
    head: list[str] = []
    tail: list[str] = []
    if low[1:] != "0" * rest:  # low's own first digit covers only part of its tails
        head = [low[0] + t for t in _same_length_alternatives(low[1:], "9" * rest)]
        first += 1
    if high[1:] != "9" * rest:
        tail = [high[0] + t for t in _same_length_alternatives("0" * rest, high[1:])]
        last -= 1
    middle = []
    if first <= last:
        digit = str(first) if first == last else f"[{first}-{last}]"
        middle = [digit + ("[0-9]" * rest if rest < 2 else f"[0-9]{{{rest}}}")]
    return head + middle + tail


def integer_range_pattern(low: int, high: int) -> str:
    """A regex (no anchors) matching exactly the decimal integers ``low..high``, written without
    leading zeros: ``integer_range_pattern(60, 120)`` is ``(?:[6-9][0-9]|1[0-1][0-9]|120)``."""
    alternatives: list[str] = []
    while low <= high:
        same_length_high = min(high, 10 ** len(str(low)) - 1)
        alternatives += _same_length_alternatives(str(low), str(same_length_high))
        low = same_length_high + 1
    return "(?:" + "|".join(alternatives) + ")"


def _window_pattern() -> str:
    """Every ``<whole number><unit>`` from MIN_WINDOW to MAX_WINDOW, and nothing else, so the
    OpenAPI document (which publishes this pattern) states the whole rule."""
    per_unit = []
    for unit, name in _UNITS.items():
        size = timedelta(**{name: 1})
        low, high = -(MIN_WINDOW // -size), MAX_WINDOW // size  # ceil, floor
        per_unit.append(integer_range_pattern(low, high) + unit)
    return "^(?:" + "|".join(per_unit) + ")$"


WINDOW_PATTERN = _window_pattern()


def parse_window(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"24h"`` or ``"7d"`` -> a timedelta (ValueError when invalid)."""
    if not re.fullmatch(WINDOW_PATTERN, text):
        raise ValueError(
            f"window must be a whole number of s, m, h or d from 1m to 366d, like 90s, 15m, "
            f"24h or 7d; got {text!r}"
        )
    return timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
