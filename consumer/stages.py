"""A pipeline stage: a thread that takes items from a bounded queue, in order, one at a time."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class EndOfStream:
    """Passed down the queues after the last batch: each stage forwards it and stops."""


END = EndOfStream()


class Stage(threading.Thread, Generic[In, Out]):
    """Runs ``work`` on each item of ``inbox``; puts results in ``outbox`` (when given).

    After a failure the stage keeps emptying its inbox (dropping items, which therefore are
    never committed) until END, so that upstream never blocks on a dead stage.
    """

    def __init__(
        self,
        name: str,
        *,
        inbox: queue.Queue[In | EndOfStream],
        work: Callable[[In], Out],
        outbox: queue.Queue[Out | EndOfStream] | None,
        on_dropped: Callable[[], None],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._inbox = inbox
        self._work = work
        self._outbox = outbox
        self._on_dropped = on_dropped
        self._on_failure = on_failure
        self.failure: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self._inbox.get()
            if isinstance(item, EndOfStream):
                break
            if self.failure is not None:
                self._on_dropped()
                continue
            try:
                result = self._work(item)
            except BaseException as error:
                self.failure = error
                self._on_dropped()
                self._on_failure(error)
                continue
            if self._outbox is not None:
                self._outbox.put(result)
        if self._outbox is not None:
            self._outbox.put(END)
