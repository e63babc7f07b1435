"""``post_entities`` and ``sentiment_entity_minute_counts``: which watched entities each stored
post names, and exact per-entity label counts per UTC minute.

Both are fed by write parts (:class:`PostEntities`, :class:`EntityMinuteCounts`) in each
batch's transaction from the rows it really inserted, so a replay adds nothing, like the
global minute counts (``storage.minute_counts``).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg

from storage.minute_counts import minute_of
from storage.sink import InsertedRows

# Rows in key order, so that two consumers writing overlapping rows (a rebalance) lock them in
# the same order and never deadlock. A replay inserts no scored_posts row and so reaches no part;
# DO NOTHING only guards a hand-made duplicate.
ADD_POST_ENTITIES = """
INSERT INTO post_entities (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, entity,
                           label)
SELECT * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::timestamptz[], %s::text[],
                     %s::text[]) AS batch
ORDER BY 1, 2, 3, 5
ON CONFLICT DO NOTHING
"""

ADD_ENTITY_COUNTS = """
INSERT INTO sentiment_entity_minute_counts AS counts (entity, minute, label, count)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::bigint[]) AS batch
ORDER BY 1, 2, 3
ON CONFLICT (entity, minute, label) DO UPDATE SET count = counts.count + EXCLUDED.count
"""

# Whole minutes, like the global window (observability.window_counts).
ENTITY_WINDOW_QUERY = """
SELECT label, COALESCE(SUM(count), 0)::bigint
FROM sentiment_entity_minute_counts
WHERE entity = %(entity)s AND minute >= date_trunc('minute', now() - %(window)s::interval)
GROUP BY label
"""


class PostEntities:
    """The :class:`~storage.sink.WritePart` that records the entities each new post names."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        rows = [
            (post.topic, post.partition, post.offset, post.kafka_timestamp, entity, post.label)
            for post in inserted.posts
            for entity in post.entities
        ]
        if rows:
            cursor.execute(ADD_POST_ENTITIES, [list(column) for column in zip(*rows, strict=True)])


class EntityMinuteCounts:
    """The :class:`~storage.sink.WritePart` that adds new posts to their entities' minutes."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        counts = Counter(
            (entity, minute_of(post, inserted.scored_at), post.label)
            for post in inserted.posts
            if post.label is not None
            for entity in post.entities
        )
        if counts:
            keys = sorted(counts)
            cursor.execute(
                ADD_ENTITY_COUNTS,
                ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                 [counts[k] for k in keys]),
            )  # fmt: skip


def entity_window_counts(
    conn: psycopg.Connection[Any], entity: str, window: timedelta
) -> dict[str, int]:
    """Per label, the posts naming ``entity`` over the last ``window`` (whole minutes)."""
    rows = conn.execute(ENTITY_WINDOW_QUERY, {"entity": entity, "window": window}).fetchall()
    return {str(label): int(count) for label, count in rows}
