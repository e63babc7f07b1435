"""The observability runtime's own threads."""

from __future__ import annotations

import time
from datetime import datetime
from typing import cast

from observability.runtime import TICK_S, ObservabilityRuntime
from observability.spike_observer import SpikeObserver


class FailingOnceObserver:
    """A spike observer whose first tick raises, as a detector bug would."""

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self, now: datetime | None = None) -> None:
        self.ticks += 1
        if self.ticks == 1:
            raise ValueError("a bug in the detector")


def test_the_ticker_survives_a_failing_tick() -> None:
    observer = FailingOnceObserver()
    runtime = ObservabilityRuntime(spike_observer=cast(SpikeObserver, observer))
    deadline = time.monotonic() + 20 * TICK_S
    while observer.ticks < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    runtime.close()
    assert observer.ticks >= 3
