"""``gold_labels``: late gold labels, kept by post id, and applied to ``scored_posts``.

:class:`GoldLabels` is the write part that keeps them, in each batch's transaction:

1. the batch's labels are upserted into ``gold_labels``. The newest label of a post wins: later
   Kafka timestamp, or the same timestamp and a later offset of the same partition. So a
   replayed label message (stored already, or older than the one stored) changes nothing and
   is not returned, and a replay of the labels topic leaves every row as it was;
2. the labels that changed, and any stored label of a post this transaction inserted (its
   label came first), are copied onto the posts' rows (``gold_label``, ``gold_label_at``) and
   marked applied. A label whose post is not stored yet stays in ``gold_labels``, pending.

Both run in the batch's one transaction and the offsets are committed after it, so a label is
applied exactly once whatever crashes. One race remains between replicas: a label and its post
stored at the same moment by two transactions, each not seeing the other's uncommitted row.
:func:`apply_pending` closes it: the monitoring job runs it on a timer, on one replica.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from storage.sink import InsertedRows
from stream_core.records import GoldLabel

# Sorted by post id, so that two transactions upserting the same labels lock them in one order.
UPSERT_LABELS = """
INSERT INTO gold_labels AS g (
    post_id, label, labelled_at, received_at, kafka_topic, kafka_partition, kafka_offset
)
SELECT * FROM unnest(
    %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[], %s::integer[],
    %s::bigint[]
) AS batch ORDER BY 1
ON CONFLICT (post_id) DO UPDATE SET
    label = EXCLUDED.label,
    labelled_at = EXCLUDED.labelled_at,
    received_at = EXCLUDED.received_at,
    kafka_topic = EXCLUDED.kafka_topic,
    kafka_partition = EXCLUDED.kafka_partition,
    kafka_offset = EXCLUDED.kafka_offset,
    applied_at = NULL
WHERE EXCLUDED.received_at > g.received_at
   OR (EXCLUDED.received_at = g.received_at
       AND (EXCLUDED.kafka_topic, EXCLUDED.kafka_partition) = (g.kafka_topic, g.kafka_partition)
       AND EXCLUDED.kafka_offset > g.kafka_offset)
RETURNING post_id
"""

# The stored labels of these post ids onto every row of those posts (looked up by the post id
# index), then the labels that found a post are marked applied.
APPLY_LABELS = """
WITH applied AS (
    UPDATE scored_posts AS s SET gold_label = g.label, gold_label_at = g.received_at
    FROM gold_labels AS g
    WHERE g.post_id = ANY(%(post_ids)s) AND s.post_id = g.post_id
      AND (s.gold_label, s.gold_label_at) IS DISTINCT FROM (g.label, g.received_at)
    RETURNING s.post_id
)
UPDATE gold_labels SET applied_at = %(now)s
WHERE post_id IN (SELECT post_id FROM applied) AND applied_at IS NULL
"""

# The sweep: pending labels whose post is stored by now.
APPLY_PENDING = """
WITH pending AS (
    SELECT post_id FROM gold_labels WHERE applied_at IS NULL ORDER BY post_id
    LIMIT %(limit)s
), found AS (
    SELECT DISTINCT p.post_id FROM pending AS p
    JOIN scored_posts AS s ON s.post_id = p.post_id
)
SELECT array_agg(post_id) FROM found
"""

COUNT_PENDING = "SELECT count(*) FROM gold_labels WHERE applied_at IS NULL"


def _latest_per_post(labels: list[GoldLabel]) -> list[GoldLabel]:
    """One label per post, the newest (as the upsert judges), as one upsert may touch a row
    only once."""
    newest_last = sorted(labels, key=lambda label: (label.received_at, label.offset))
    return list({label.post_id: label for label in newest_last}.values())


class GoldLabels:
    """The :class:`~storage.sink.WritePart` that stores gold labels and applies them."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        changed: set[str] = set()
        if inserted.labels:
            labels = _latest_per_post(list(inserted.labels))
            rows = cursor.execute(
                UPSERT_LABELS,
                (
                    [label.post_id for label in labels],
                    [label.label for label in labels],
                    [label.labelled_at for label in labels],
                    [label.received_at for label in labels],
                    [label.topic for label in labels],
                    [label.partition for label in labels],
                    [label.offset for label in labels],
                ),
            ).fetchall()
            changed = {post_id for (post_id,) in rows}
        post_ids = sorted(changed | {post.post_id for post in inserted.posts})
        if post_ids:
            cursor.execute(APPLY_LABELS, {"post_ids": post_ids, "now": datetime.now(UTC)})


def apply_pending(conn: psycopg.Connection[Any], limit: int = 10_000) -> int:
    """Apply the pending labels whose post is stored by now (in one transaction); returns how
    many labels that was."""
    with conn.transaction():
        row = conn.execute(APPLY_PENDING, {"limit": limit}).fetchone()
        post_ids = sorted(row[0] or []) if row else []
        if post_ids:
            conn.execute(APPLY_LABELS, {"post_ids": post_ids, "now": datetime.now(UTC)})
            # Also those whose rows already had the label (applied by a crossing transaction).
            conn.execute(
                "UPDATE gold_labels SET applied_at = %s "
                "WHERE post_id = ANY(%s) AND applied_at IS NULL",
                (datetime.now(UTC), post_ids),
            )
    return len(post_ids)


def pending_count(conn: psycopg.Connection[Any]) -> int:
    """Gold labels still waiting for their post."""
    row = conn.execute(COUNT_PENDING).fetchone()
    return int(row[0]) if row else 0
