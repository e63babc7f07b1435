"""``sentiment_second_counts``: fleet-wide negative and total posts per second of commit time,
for the whole stream (entity ``''``) and per watched entity.

Every replica adds its batches through the :class:`SecondCounts` write part, in the batch's
transaction; the one elected spike detector reads the last seconds back on a timer
(:func:`read_since`) and prunes what it no longer needs (:func:`prune`). Commit time, not post
time: the detector judges what arrives now, as it did when it ran inside each replica.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import psycopg

from storage.sink import InsertedRows

ALL_POSTS = ""  # the entity column's value for the whole stream
NEGATIVE = "negative"

# A handful of rows per batch (the stream, and each entity named), in key order: writers lock
# the same rows in the same order and never deadlock.
ADD_SECOND_COUNTS = """
INSERT INTO sentiment_second_counts AS counts (second, entity, negative, total)
SELECT %s, entity, negative, total
FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS batch(entity, negative, total)
ORDER BY entity
ON CONFLICT (second, entity) DO UPDATE
SET negative = counts.negative + EXCLUDED.negative, total = counts.total + EXCLUDED.total
"""

READ_SINCE = """
SELECT second, entity, negative, total FROM sentiment_second_counts
WHERE second >= %s ORDER BY second, entity
"""


class SecondCount(NamedTuple):
    second: datetime
    entity: str
    negative: int
    total: int


class SecondCounts:
    """The :class:`~storage.sink.WritePart` that adds a batch to its second's fleet counts."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        negative: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for post in inserted.posts:
            if post.label is None:
                continue  # not scored (an unsupported language, say): nothing to judge
            is_negative = post.label == NEGATIVE
            for entity in (ALL_POSTS, *post.entities):
                total[entity] += 1
                negative[entity] += is_negative
        if not total:
            return  # gold labels only, or nothing scored
        entities = sorted(total)
        cursor.execute(
            ADD_SECOND_COUNTS,
            (
                inserted.scored_at.replace(microsecond=0),
                entities,
                [negative[e] for e in entities],
                [total[e] for e in entities],
            ),
        )


def database_now(conn: psycopg.Connection[Any]) -> datetime:
    """The database's clock: the one commit times are read on."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def read_since(conn: psycopg.Connection[Any], since: datetime) -> list[SecondCount]:
    """Every count from the second holding ``since`` on, in time order."""
    rows = conn.execute(READ_SINCE, (since.replace(microsecond=0),)).fetchall()
    return [SecondCount(*row) for row in rows]


def prune(conn: psycopg.Connection[Any], keep: timedelta) -> int:
    """Delete counts older than ``keep``; how many rows went."""
    deleted = conn.execute(
        "DELETE FROM sentiment_second_counts WHERE second < now() - %s::interval", (keep,)
    )
    return deleted.rowcount
