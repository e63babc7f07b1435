"""The stages behind the poller: threads that take batches from bounded queues, in order.

:class:`Downstream` chains the steps stages and the writer stage and counts the batches in
flight; each :class:`Stage` is one thread working through its queue one item at a time.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import structlog

from consumer.flow import InFlight
from stream_core.batch import Batch, BatchStep

log = structlog.get_logger(__name__)

QUEUE_BATCHES = 2  # batches waiting between two stages
# Batches waiting between the steps before the model and the model: one is enough to keep the
# model busy, and each one more is memory.
QUEUE_TO_MODEL = 1
PUT_CHECK_S = 0.1  # how often a blocked hand-over looks at the abandon flag

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


class Downstream:
    """The steps stages (``steps``, in order, on each batch) and the writer stage (``write``),
    joined by bounded queues.

    The last step (the model) has a thread of its own and the steps before it (the
    watchlist's match, language identification) another, so that they prepare the next batch
    while the model scores this one: run in turn they left the model's cores idle for 8% of
    a backlog (docs/pipeline.md, run O).

    :attr:`in_flight` counts the batches handed over and not yet stored (or dropped after a
    failure); :meth:`waiting` says whether the steps have nothing to do (the poller then cuts
    a batch that is due; else it lets it grow). A hand-over waits for room only as long as it
    is told to, and never once ``abandon`` is set (past the shutdown deadline).
    """

    def __init__(
        self,
        *,
        steps: Sequence[BatchStep],
        write: Callable[[Batch], None],
        on_failure: Callable[[BaseException], None],
        abandon: threading.Event,
    ) -> None:
        self.in_flight = InFlight()
        self._at_steps = InFlight()  # handed over, and the steps not yet done with them
        self._write = write
        self._abandon = abandon
        self._to_steps: queue.Queue[Batch | EndOfStream] = queue.Queue(QUEUE_BATCHES)
        to_write: queue.Queue[Batch | EndOfStream] = queue.Queue(QUEUE_BATCHES)
        *before_model, model = steps or [_Unchanged()]
        self._stages: list[Stage[Any, Any]] = []
        inbox = self._to_steps
        if before_model:
            to_model: queue.Queue[Batch | EndOfStream] = queue.Queue(QUEUE_TO_MODEL)
            self._stages.append(
                Stage(
                    "steps",
                    inbox=inbox,
                    work=lambda batch: _run(before_model, batch),
                    outbox=to_model,
                    on_dropped=self._dropped_at_steps,
                    on_failure=on_failure,
                )
            )
            inbox = to_model
        self._stages += [
            Stage(
                "model",
                inbox=inbox,
                work=lambda batch: self._scored(model, batch),
                outbox=to_write,
                on_dropped=self._dropped_at_steps,
                on_failure=on_failure,
            ),
            Stage(
                "writer",
                inbox=to_write,
                work=self._store,
                outbox=None,
                on_dropped=self.in_flight.done,
                on_failure=on_failure,
            ),
        ]

    def start(self) -> None:
        for stage in self._stages:
            stage.start()

    def waiting(self) -> bool:
        """The steps hold no batch, queued or at work: the model waits for the next one."""
        return len(self._at_steps) == 0

    def offer(self, batch: Batch, wait_s: float = 0.0) -> bool:
        """Hand ``batch`` to the steps if their queue has room (within ``wait_s``)."""
        self._added()
        try:
            self._to_steps.put(batch, block=wait_s > 0, timeout=wait_s or None)
        except queue.Full:
            self._refused()
            return False
        return True

    def hand_over(self, batch: Batch, deadline: float) -> bool:
        """Hand ``batch`` to the steps, waiting for room until ``deadline`` (monotonic)."""
        self._added()
        if self._put_until(batch, deadline):
            return True
        self._refused()
        return False

    def finish(self, deadline: float) -> None:
        """Let the stages finish what they hold and stop; past ``deadline``, abandon it."""
        if not self._put_until(END, deadline):
            self._abandon.set()
        for stage in self._stages:
            stage.join(max(0.0, deadline - time.monotonic()))
        if any(stage.is_alive() for stage in self._stages):
            self._abandon.set()
            for stage in self._stages:
                stage.join(5.0)

    def _added(self) -> None:
        self.in_flight.add()
        self._at_steps.add()

    def _refused(self) -> None:
        self.in_flight.done()
        self._at_steps.done()

    def _scored(self, model: BatchStep, batch: Batch) -> Batch:
        batch = model.process(batch)  # on failure the stage counts the batch as dropped
        self._at_steps.done()
        return batch

    def _dropped_at_steps(self) -> None:
        self.in_flight.done()
        self._at_steps.done()

    def _store(self, batch: Batch) -> None:
        self._write(batch)
        self.in_flight.done()  # on failure the stage counts the batch as dropped instead

    def _put_until(self, item: Batch | EndOfStream, deadline: float) -> bool:
        while not self._abandon.is_set():
            wait_s = min(PUT_CHECK_S, max(0.0, deadline - time.monotonic()))
            try:
                self._to_steps.put(item, timeout=wait_s)
            except queue.Full:
                if time.monotonic() >= deadline:
                    return False
                continue
            return True
        return False


def _run(steps: Sequence[BatchStep], batch: Batch) -> Batch:
    for step in steps:
        batch = step.process(batch)
    return batch


class _Unchanged:
    """The step of a pipeline built with none: the batch as it came."""

    def process(self, batch: Batch) -> Batch:
        return batch
