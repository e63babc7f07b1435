"""The poller's bookkeeping: batches in flight and the partitions it may commit."""

from __future__ import annotations

import threading
import time

from consumer.flow import InFlight, OwnedPartitions


def test_wait_empty_returns_once_every_batch_is_done() -> None:
    in_flight = InFlight()
    in_flight.add()
    in_flight.add()
    assert len(in_flight) == 2
    assert not in_flight.wait_empty(time.monotonic() + 0.05)  # times out

    def finish() -> None:
        time.sleep(0.05)
        in_flight.done()
        in_flight.done()

    threading.Thread(target=finish).start()
    assert in_flight.wait_empty(time.monotonic() + 5)
    assert len(in_flight) == 0


def test_owned_partitions_follow_assign_and_revoke() -> None:
    owned = OwnedPartitions()
    assert owned.add({("posts", 0), ("posts", 1)}) == {("posts", 0), ("posts", 1)}
    assert owned.add({("posts", 2)}) == {("posts", 0), ("posts", 1), ("posts", 2)}
    assert owned.remove({("posts", 1)}) == {("posts", 0), ("posts", 2)}
    snapshot = owned.snapshot()
    owned.remove({("posts", 0)})
    assert snapshot == {("posts", 0), ("posts", 2)}  # a copy, not a view
