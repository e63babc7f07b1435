"""The one retry policy: exponential backoff with jitter, and the loop that applies it.

Every external write retries through :func:`retry`: the batch's PostgreSQL transaction and
its dead letters (``consumer.writer``), spike alerts (``observability.alert_sink``), and the
start-up wait for PostgreSQL and the broker (``stream_core.startup``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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


# pause(error, attempt, delay): log, wait up to ``delay`` seconds, and say whether to try again.
Pause = Callable[[Exception, int, float], bool]


def retry(
    action: Callable[[], T],
    *,
    backoff: Backoff,
    retry_on: Callable[[Exception], bool],
    pause: Pause,
) -> T:
    """``action()``, tried again after each failure that ``retry_on`` accepts.

    Between tries, ``pause`` gets the error, the 0-based attempt that failed and its backoff
    delay; it waits (or not) and returns whether to go on. An error ``retry_on`` refuses, or
    the last one when ``pause`` gives up, propagates unchanged.
    """
    attempt = 0
    while True:
        try:
            return action()
        except Exception as error:
            if not retry_on(error) or not pause(error, attempt, backoff.delay(attempt)):
                raise
            attempt += 1
