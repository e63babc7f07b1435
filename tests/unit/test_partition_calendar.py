"""The calendar of time partitions: interval starts, the next interval, gaps, the horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from storage.partitions import (
    INTERVALS,
    Partition,
    PartitionPolicy,
    floor,
    following,
    partition_name,
    uncovered,
)
from storage.settings import PartitionInterval as Interval

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(moments, st.sampled_from(INTERVALS))
def test_every_moment_lies_in_the_interval_that_floor_and_following_give(
    moment: datetime, interval: Interval
) -> None:
    start = floor(moment, interval)
    end = following(start, interval)
    assert start <= moment < end
    assert floor(start, interval) == start
    assert floor(end, interval) == end  # intervals tile time: the next one starts at `end`


def test_intervals_are_utc_and_weeks_start_on_monday() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2025, 3, 13, 0, 30, tzinfo=paris)  # Wednesday 23:30 UTC
    assert floor(moment, "hour") == datetime(2025, 3, 12, 23, tzinfo=UTC)
    assert floor(moment, "day") == datetime(2025, 3, 12, tzinfo=UTC)
    assert floor(moment, "week") == datetime(2025, 3, 10, tzinfo=UTC)
    assert floor(moment, "month") == datetime(2025, 3, 1, tzinfo=UTC)
    assert following(datetime(2024, 12, 1, tzinfo=UTC), "month") == datetime(2025, 1, 1, tzinfo=UTC)


def test_partition_names_say_where_they_start() -> None:
    assert partition_name("scored_posts", datetime(2025, 3, 1, tzinfo=UTC)) == (
        "scored_posts_p20250301"
    )
    assert partition_name("post_entities", datetime(2025, 3, 1, 13, tzinfo=UTC)) == (
        "post_entities_p20250301T13"
    )


def test_the_horizon_keeps_at_least_the_retention() -> None:
    policy = PartitionPolicy(interval="day", retention=timedelta(days=30))
    now = datetime(2025, 3, 31, 10, tzinfo=UTC)
    assert policy.horizon(now) == datetime(2025, 3, 1, tzinfo=UTC)
    assert policy.horizon(now) <= now - policy.retention


def day(n: int) -> datetime:
    return datetime(2025, 3, n, tzinfo=UTC)


def test_gaps_are_what_no_partition_covers() -> None:
    wanted = Partition("", day(1), day(10))
    existing = [Partition("a", day(2), day(3)), Partition("b", day(5), day(12))]
    assert list(uncovered(wanted, existing)) == [(day(1), day(2)), (day(3), day(5))]
    assert list(uncovered(Partition("", day(5), day(6)), existing)) == []
    assert list(uncovered(Partition("", day(12), day(13)), existing)) == [(day(12), day(13))]
