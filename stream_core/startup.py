"""Start-up that waits: retry a probe of a service with backoff until it answers or a deadline.

A fleet restarted during a database failover or a broker rolling restart then comes up on its
own when the service returns, instead of crash-looping. Errors that waiting cannot fix (a wrong
password, a missing schema) are the caller's ``worth_waiting`` to refuse: they raise at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from stream_core.backoff import Backoff, retry

log = structlog.get_logger(__name__)

T = TypeVar("T")

STARTUP_BACKOFF = Backoff(initial_s=0.5, max_s=5.0)


class StoppedWhileWaitingError(Exception):
    """SIGTERM or Ctrl-C came while a service was still being waited for."""


def wait_for(
    service: str,
    probe: Callable[[], T],
    *,
    timeout_s: float,
    worth_waiting: Callable[[Exception], bool],
    stop: threading.Event | None = None,
    backoff: Backoff = STARTUP_BACKOFF,
) -> T:
    """``probe()``'s result, once it stops raising errors that are ``worth_waiting``.

    Retries with ``backoff`` for up to ``timeout_s`` seconds, logging each wait; after that (or
    at once, for an error not worth waiting for) the probe's last error propagates unchanged, so
    the caller's one-line message stays what it was. ``stop`` set: StoppedWhileWaitingError.
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    deadline = started + timeout_s
    waited = False

    def pause(error: Exception, _attempt: int, delay_s: float) -> bool:
        nonlocal waited
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            return False
        delay_s = min(delay_s, remaining_s)
        lines = str(error).strip().splitlines()
        log.warning(
            "waiting for a service",
            service=service,
            error=lines[0] if lines else repr(error),
            retry_in_s=round(delay_s, 2),
            gives_up_in_s=round(remaining_s, 1),
        )
        if stop.wait(delay_s):
            raise StoppedWhileWaitingError(f"stopped while waiting for {service}") from None
        waited = True
        return True

    result = retry(probe, backoff=backoff, retry_on=worth_waiting, pause=pause)
    if waited:
        log.info("service is up", service=service, waited_s=round(time.monotonic() - started, 1))
    return result
