"""Drift-free pacing: message ``n`` is due at ``start + n / rate`` on the monotonic clock.

Sleeping ``1 / rate`` after each send would add every send's own cost to the period and drift
over minutes; absolute deadlines do not. A sender that falls behind catches up at full speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """``rate_per_s`` <= 0 means unpaced: every message is due at once."""
        self.rate_per_s = rate_per_s
        self._clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self._clock() - self.start

    def offset(self, seq: int) -> float:
        """When message ``seq`` is due, in seconds after the start (its place in the schedule)."""
        return seq / self.rate_per_s if self.rate_per_s > 0 else self.elapsed()

    def wait_s(self, seq: int) -> float:
        """How long until message ``seq`` is due (0 when due or late)."""
        if self.rate_per_s <= 0:
            return 0.0
        return max(0.0, self.start + seq / self.rate_per_s - self._clock())
