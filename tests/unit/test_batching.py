"""Micro-batching and scoring with fakes: size and time bounds, offsets, label mapping."""

from __future__ import annotations

import time

from consumer.batching import MicroBatcher, batch_size_for
from consumer.scoring import ScoreStep
from observability.metrics import PipelineMetrics
from stream_core.batch import Batch
from stream_core.contract import GOLD_LABEL_HEADER, DeadLetterReason
from stream_core.records import DeadLetter, Post, SourceRecord
from tests.fixtures.fakes import FakeScorer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(offset: int, partition: int = 0, **fields: object) -> SourceRecord:
    return SourceRecord("posts", partition, offset, b"k", b"{}", **fields)  # type: ignore[arg-type]


def post(text: str = "hello") -> Post:
    return Post(post_id="p", text=text)


def test_a_batch_is_ready_when_full() -> None:
    batcher = MicroBatcher(max_posts=3, max_wait_s=10, clock=FakeClock())
    assert batcher.room() == 3
    for offset in range(2):
        batcher.add(record(offset), post())
    assert not batcher.ready()
    assert batcher.room() == 1
    batcher.add(record(2), post())
    assert batcher.ready()
    batch = batcher.take()
    assert batch is not None and len(batch) == 3
    assert batcher.take() is None


def test_a_batch_is_ready_when_its_first_record_waited_long_enough() -> None:
    clock = FakeClock()
    batcher = MicroBatcher(max_posts=100, max_wait_s=0.5, clock=clock)
    assert batcher.time_left() == 0.5
    assert not batcher.ready()  # empty: never ready
    batcher.add(record(0), post())
    clock.now += 0.3
    batcher.add(record(1), post())
    assert not batcher.ready()
    assert abs(batcher.time_left() - 0.2) < 1e-9
    clock.now += 0.2
    assert batcher.ready()


def trickle(batcher: MicroBatcher, clock: FakeClock, posts: int, every_s: float) -> list[int]:
    """Posts arriving ``every_s`` apart to a poller whose model is idle: the batch sizes cut."""
    sizes: list[int] = []
    for offset in range(posts):
        batcher.add(record(offset), post())
        clock.now += every_s
        if batcher.ready(model_idle=True):
            batch = batcher.take()
            assert batch is not None
            sizes.append(len(batch))
    return sizes


def test_a_trickle_is_cut_by_time_into_small_batches() -> None:
    clock = FakeClock()
    batcher = MicroBatcher(max_posts=1024, max_wait_s=0.1, clock=clock)
    sizes = trickle(batcher, clock, posts=100, every_s=0.02)  # 50 posts/s
    assert sizes and set(sizes) <= {5, 6}
    assert len(batcher.take() or []) == 100 - sum(sizes)


def test_a_single_post_is_never_held_past_the_wait_while_the_model_is_idle() -> None:
    clock = FakeClock()
    batcher = MicroBatcher(max_posts=1024, max_wait_s=0.1, max_bytes=1 << 21, clock=clock)
    assert batcher.wanted() == 1  # the wait starts when the first record comes, not later
    batcher.add(record(0), post())
    assert batcher.wanted() == 1023
    clock.now += 0.099
    assert not batcher.ready(model_idle=True)
    assert abs(batcher.time_left() - 0.001) < 1e-9
    clock.now += 0.001
    assert batcher.ready(model_idle=True)
    batch = batcher.take()
    assert batch is not None and len(batch) == 1


def test_a_backlog_is_cut_by_size_into_large_batches_whatever_the_model_does() -> None:
    clock = FakeClock()
    batcher = MicroBatcher(max_posts=1024, max_wait_s=0.1, clock=clock)
    for offset in range(1024):  # a backlog: a fetch brings them all at once
        assert not batcher.ready(model_idle=False)
        batcher.add(record(offset), post())
    assert batcher.full() and batcher.room() == 0
    assert batcher.ready(model_idle=False) and batcher.ready(model_idle=True)
    assert len(batcher.take() or []) == 1024


def test_a_due_batch_keeps_filling_while_the_model_is_busy() -> None:
    clock = FakeClock()
    batcher = MicroBatcher(max_posts=64, max_wait_s=0.1, clock=clock)
    batcher.add(record(0), post())
    clock.now += 0.5  # long past its wait, but the model still scores the batch before
    assert not batcher.ready(model_idle=False)
    for offset in range(1, 40):
        batcher.add(record(offset), post())
        assert not batcher.ready(model_idle=False)
    assert batcher.ready(model_idle=True)  # the model is free: cut what has grown
    assert len(batcher.take() or []) == 40
    for offset in range(40, 104):  # busy model, and the batch reaches its size: cut anyway
        batcher.add(record(offset), post())
    assert batcher.ready(model_idle=False)
    assert len(batcher.take() or []) == 64


def test_a_batch_is_cut_when_its_values_reach_the_byte_bound() -> None:
    batcher = MicroBatcher(max_posts=1024, max_wait_s=10, max_bytes=1000, clock=FakeClock())
    big = SourceRecord("posts", 0, 0, b"k", b"x" * 400)
    batcher.add(big, post())
    batcher.add(big, post())
    assert not batcher.full() and batcher.room() == 1022
    batcher.add(big, post())
    assert batcher.full() and batcher.room() == 0 and batcher.wanted() == 1
    assert batcher.ready(model_idle=False)
    assert len(batcher.take() or []) == 3
    assert not batcher.full() and batcher.room() == 1024  # a new batch counts from zero


def test_dead_letters_count_toward_the_size_bound_and_the_offsets() -> None:
    batcher = MicroBatcher(max_posts=2, max_wait_s=10, clock=FakeClock())
    batcher.add(record(5, partition=1), post())
    bad = record(6, partition=1)
    batcher.add(bad, DeadLetter(bad, DeadLetterReason.INVALID_JSON, "nope"))
    assert batcher.ready()
    batch = batcher.take()
    assert batch is not None
    assert len(batch.accepted) == 1 and len(batch.dead_letters) == 1
    assert batch.next_offsets == {("posts", 1): 7}


def test_next_offsets_are_the_highest_offset_plus_one_per_partition() -> None:
    batch = Batch()
    for partition, offset in [(0, 10), (1, 3), (0, 11), (1, 4), (2, 0)]:
        batch.add(record(offset, partition), post())
    assert batch.next_offsets == {("posts", 0): 12, ("posts", 1): 5, ("posts", 2): 1}


def test_score_batch_keeps_order_coordinates_and_gold_label() -> None:
    batch = Batch()
    texts = ["a", "bb", "ccc"]
    for offset, text in enumerate(texts):
        batch.add(
            record(offset, headers=((GOLD_LABEL_HEADER, b"positive"),), timestamp_ms=1_000),
            post(text),
        )
    scored = ScoreStep(FakeScorer(), PipelineMetrics()).process(batch)
    assert [p.text for p in scored.posts] == texts
    assert [p.offset for p in scored.posts] == [0, 1, 2]
    assert [p.label for p in scored.posts] == ["neutral", "positive", "negative"]
    assert scored.posts[1].probabilities[2] == max(scored.posts[1].probabilities)
    assert all(p.gold_label == "positive" for p in scored.posts)
    assert scored.posts[0].kafka_timestamp is not None
    assert scored.posts[0].kafka_timestamp.timestamp() == 1.0


def test_a_batch_of_only_dead_letters_needs_no_model() -> None:
    batch = Batch()
    bad = record(0)
    batch.add(bad, DeadLetter(bad, DeadLetterReason.EMPTY_TEXT, "empty"))

    class Exploding(FakeScorer):
        def score(self, texts):  # type: ignore[no-untyped-def]
            raise AssertionError("the model must not run")

    assert ScoreStep(Exploding(), PipelineMetrics()).process(batch).posts == []


def test_the_score_step_records_the_model_version_and_its_time() -> None:
    batch = Batch()
    batch.add(record(0), post("a"))
    assert batch.posts[0].label is None  # unscored until the step runs
    metrics = PipelineMetrics()
    (scored,) = ScoreStep(FakeScorer(), metrics).process(batch).posts
    assert (scored.label, scored.model_version) == ("neutral", FakeScorer().version)
    assert metrics.registry.get_sample_value("sentiment_inference_seconds_count") == 1


def test_the_default_batch_size_follows_the_model_speed() -> None:
    # Under a quarter of the 30 s drain: the default model keeps 1,024, roberta-base gets less.
    assert batch_size_for(posts_per_s=900, shutdown_timeout_s=30, requested=1024) == 1024
    assert batch_size_for(posts_per_s=26, shutdown_timeout_s=30, requested=1024) == 195
    assert batch_size_for(posts_per_s=0.01, shutdown_timeout_s=30, requested=1024) == 1


def test_consume_times_the_model_when_no_batch_size_is_set() -> None:
    from consumer.cli import _batch_size_for_the_model
    from consumer.settings import Settings

    class Slow(FakeScorer):
        def score(self, texts):  # type: ignore[no-untyped-def]
            time.sleep(len(texts) / 400)  # 400 posts/s
            return super().score(texts)

    settings = Settings(shutdown_timeout_s=1, _env_file=None)  # type: ignore[call-arg]
    assert 50 <= _batch_size_for_the_model(Slow(), settings) <= 100  # 400 x 1 s / 4


def stream_through_a_model(
    posts_per_s: float,
    seconds: float,
    *,
    per_batch_s: float = 0.01,
    per_post_s: float = 0.001,
    stall: tuple[float, float] | None = None,
    max_posts: int = 1024,
    max_wait_s: float = 0.05,
) -> tuple[list[int], list[float]]:
    """A fake-clock poller and model: posts arrive evenly, the model takes ``per_batch_s`` +
    ``per_post_s`` per post for a batch (plus ``stall`` = (at, seconds) once), and the poller
    asks the batcher every millisecond. Returns the sizes of the batches cut, in order, and
    each post's time in the open batch (from its arrival to its batch's cut)."""
    clock = FakeClock()
    start = clock.now
    batcher = MicroBatcher(max_posts=max_posts, max_wait_s=max_wait_s, clock=clock)
    sizes: list[int] = []
    held: list[float] = []
    arrived: dict[int, float] = {}
    busy_until = start
    sent = 0
    tick = 0.001
    while clock.now - start < seconds:
        while sent < (clock.now - start) * posts_per_s:
            arrived[sent] = clock.now
            batcher.add(record(sent), post())
            sent += 1
        if batcher.ready(model_idle=clock.now >= busy_until):
            batch = batcher.take()
            assert batch is not None
            sizes.append(len(batch))
            held += [clock.now - arrived[r.offset] for r, _ in batch.accepted]
            took = per_batch_s + per_post_s * len(batch)
            if stall is not None and clock.now - start >= stall[0]:
                took, stall = took + stall[1], None
            busy_until = max(busy_until, clock.now) + took
        clock.now += tick
    return sizes, held


def test_moderate_load_keeps_batches_bounded_and_a_stall_does_not_cascade() -> None:
    # Half of what the model can score: batches are cut by time, about rate x wait posts.
    sizes, held = stream_through_a_model(500, 10)
    assert max(sizes[5:]) <= 30 and max(held) <= 0.05 + 0.002
    # One batch stalls for a second: the next is large (it held what came meanwhile), and each
    # one after is cut as the model frees up, so they shrink back, never grow (no cascade).
    sizes, _held = stream_through_a_model(500, 10, stall=(5.0, 1.0))
    big = sizes.index(max(sizes))
    assert 450 <= sizes[big] <= 560
    after = sizes[big : big + 6]
    assert after == sorted(after, reverse=True)
    assert max(sizes[big + 6 :]) <= 30


def test_a_backlog_is_scored_in_full_batches_and_a_trickle_is_never_held_past_the_wait() -> None:
    sizes, _held = stream_through_a_model(2000, 5)  # twice what the model scores: a backlog
    assert sizes[-1] == 1024 and sizes.count(1024) >= 3
    sizes, held = stream_through_a_model(20, 10)
    assert max(sizes) <= 2 and max(held) <= 0.05 + 0.001
