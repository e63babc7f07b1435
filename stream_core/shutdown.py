"""Turn Ctrl-C and SIGTERM into a threading.Event, so long-running commands stop cleanly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def stop_on_signals(
    stop_event: threading.Event,
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[threading.Event]:
    """Set ``stop_event`` on the signals while the block runs; restore the handlers after."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        stop_event.set()

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield stop_event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
