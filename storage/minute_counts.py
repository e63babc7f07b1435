"""Exact label counts per UTC minute, the tables dashboards read: ``sentiment_minute_counts``
for the whole stream and ``sentiment_entity_minute_counts`` per watched entity.

:class:`MinuteCounts` and :class:`EntityMinuteCounts` are the write parts that keep them: in each
batch's transaction they add the rows that transaction really inserted, so a replay adds
nothing. A post counts in the minute it was created, else in the minute of its Kafka timestamp,
else in the minute it was stored. The API and the demo read them through the functions at the
end.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import psycopg

from storage.sink import InsertedRows
from stream_core.records import ScoredPost

# One statement for the whole batch; in (minute, label) order, so that two consumers adding to
# the same minutes lock them in the same order and never deadlock.
ADD_COUNTS = """
INSERT INTO sentiment_minute_counts AS counts (minute, label, count)
SELECT minute, label, count
FROM unnest(%s::timestamptz[], %s::text[], %s::bigint[]) AS batch(minute, label, count)
ORDER BY minute, label
ON CONFLICT (minute, label) DO UPDATE SET count = counts.count + EXCLUDED.count
"""
ADD_ENTITY_COUNTS = """
INSERT INTO sentiment_entity_minute_counts AS counts (entity, minute, label, count)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::bigint[]) AS batch
ORDER BY 1, 2, 3
ON CONFLICT (entity, minute, label) DO UPDATE SET count = counts.count + EXCLUDED.count
"""


def minute_of(post: ScoredPost, scored_at: datetime) -> datetime:
    """The UTC minute ``post`` counts in."""
    moment = post.created_at or post.kafka_timestamp or scored_at
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


class MinuteCounts:
    """The :class:`~storage.sink.WritePart` that adds a batch's posts to the per-minute counts."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        counts = Counter(
            (minute_of(post, inserted.scored_at), post.label)
            for post in inserted.posts
            if post.label is not None
        )
        if not counts:
            return  # gold labels only
        keys = sorted(counts)
        minutes, labels = [minute for minute, _ in keys], [label for _, label in keys]
        cursor.execute(ADD_COUNTS, (minutes, labels, [counts[key] for key in keys]))


class EntityMinuteCounts:
    """The :class:`~storage.sink.WritePart` that adds a batch's posts to the minutes of the
    watched entities each one names (``ScoredPost.entities``)."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        counts = Counter(
            (entity, minute_of(post, inserted.scored_at), post.label)
            for post in inserted.posts
            if post.label is not None
            for entity in post.entities
        )
        if not counts:
            return  # no post names a watched entity
        keys = sorted(counts)
        cursor.execute(
            ADD_ENTITY_COUNTS,
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
             [counts[k] for k in keys]),
        )  # fmt: skip


def minute_series(conn: psycopg.Connection[Any]) -> list[tuple[datetime, str, int]]:
    """Every (minute, label, count), as dashboards chart them."""
    return conn.execute("SELECT minute, label, count FROM sentiment_minute_counts").fetchall()


def entity_totals(conn: psycopg.Connection[Any]) -> list[tuple[str, str, int]]:
    """(entity, label, posts) over every minute kept, per watched entity."""
    return conn.execute(
        "SELECT entity, label, sum(count)::bigint FROM sentiment_entity_minute_counts"
        " GROUP BY entity, label ORDER BY entity, label"
    ).fetchall()
