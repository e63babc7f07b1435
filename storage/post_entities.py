"""``post_entities``: which watched entities each stored post names, one row per pair.

:class:`PostEntities` is the write part that keeps it, in each batch's transaction, from the rows
that transaction really inserted (so a replay adds nothing). Rows carry the post's Kafka
position and time column, like ``scored_posts``, so they are partitioned and expired with it;
per-entity counts are ``storage.minute_counts``'.
"""

from __future__ import annotations

from typing import Any

import psycopg

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
