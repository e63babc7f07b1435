"""Exponential backoff with jitter: retrying PostgreSQL and the dead-letter topic, and waiting
for PostgreSQL and the broker at start-up (``stream_core.startup``)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry ``attempt`` (0-based): doubling from ``initial_s``, capped, jittered.

    The jitter (a random 50-100% of the delay) keeps many consumers from retrying in lockstep
    against a database that is coming back.
    """

    initial_s: float = 0.2
    max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(attempt, 32))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
