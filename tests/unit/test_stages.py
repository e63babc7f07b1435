"""The stages behind the poller: the steps before the model prepare the next batch while the
model scores this one, and every batch is counted out whatever happens to it."""

from __future__ import annotations

import threading
import time

from consumer.stages import Downstream
from stream_core.batch import Batch

WAIT_S = 10


class Noting:
    """A step before the model: notes the thread and the batch it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.second = threading.Event()

    def process(self, batch: Batch) -> Batch:
        self.seen.append((threading.current_thread().name, id(batch)))
        if len(self.seen) == 2:
            self.second.set()
        return batch


class HeldModel:
    """The model: holds its first batch until told to go on."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go_on = threading.Event()
        self.threads: set[str] = set()

    def process(self, batch: Batch) -> Batch:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        assert self.go_on.wait(WAIT_S)
        return batch


class Failing:
    def process(self, batch: Batch) -> Batch:
        raise RuntimeError("a step broke")


def downstream(*steps: object, written: list[Batch], failures: list[BaseException]) -> Downstream:
    return Downstream(
        steps=steps,  # type: ignore[arg-type]
        write=written.append,
        on_failure=failures.append,
        abandon=threading.Event(),
    )


def test_the_steps_prepare_the_next_batch_while_the_model_scores_this_one() -> None:
    noting, model = Noting(), HeldModel()
    written: list[Batch] = []
    failures: list[BaseException] = []
    stages = downstream(noting, model, written=written, failures=failures)
    stages.start()
    first, second = Batch(), Batch()
    assert stages.offer(first, WAIT_S)
    assert model.entered.wait(WAIT_S)
    assert stages.offer(second, WAIT_S)
    assert noting.second.wait(WAIT_S)  # prepared while the model still holds the first
    assert not stages.waiting()  # the poller lets the open batch grow meanwhile
    model.go_on.set()
    stages.finish(deadline=time.monotonic() + WAIT_S)
    assert written == [first, second]  # in order
    assert [batch for _, batch in noting.seen] == [id(first), id(second)]
    assert {name for name, _ in noting.seen} == {"steps"} and model.threads == {"model"}
    assert len(stages.in_flight) == 0 and stages.waiting()
    assert failures == []


def test_a_step_before_the_model_that_fails_drops_its_batches_and_counts_them_out() -> None:
    model = HeldModel()
    model.go_on.set()
    written: list[Batch] = []
    failures: list[BaseException] = []
    stages = downstream(Failing(), model, written=written, failures=failures)
    stages.start()
    for _ in range(3):
        assert stages.offer(Batch(), WAIT_S)
    stages.finish(deadline=time.monotonic() + WAIT_S)
    assert written == []  # never stored, so never committed: replayed after the restart
    assert [str(error) for error in failures] == ["a step broke"]
    assert len(stages.in_flight) == 0 and stages.waiting()


def test_with_no_steps_the_batch_goes_to_the_writer_as_it_came() -> None:
    written: list[Batch] = []
    stages = downstream(written=written, failures=[])
    stages.start()
    batch = Batch()
    assert stages.offer(batch, WAIT_S)
    stages.finish(deadline=time.monotonic() + WAIT_S)
    assert written == [batch]
