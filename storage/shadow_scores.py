"""``shadow_scores``: what the shadow version said of posts the active version scored, and the
comparison of the two read back (agreement and their confusion).

Rows are keyed like ``scored_posts`` plus the shadow version, so a replayed batch adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

# In key order: two replicas writing overlapping rows (a rebalance) lock them in one order.
ADD_SHADOW_SCORES = """
INSERT INTO shadow_scores (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, post_id,
                           model_version, label, prob_negative, prob_neutral, prob_positive,
                           active_version, active_label)
SELECT * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::timestamptz[], %s::text[],
                     %s::text[], %s::text[], %s::real[], %s::real[], %s::real[], %s::text[],
                     %s::text[]) AS batch
ORDER BY 1, 2, 3, 4
ON CONFLICT DO NOTHING
"""

CONFUSION = """
SELECT active_version, active_label, label, count(*)
FROM shadow_scores
WHERE model_version = %s AND scored_at >= %s
GROUP BY 1, 2, 3
"""


# Stored posts a version has not scored yet, in key order after a position (keyset paging: a
# page costs the same at the start and the end, and a rerun resumes where one stopped). The
# time bound prunes the partitions; posts without a Kafka timestamp are not rescored, nor the
# unscored ones (label NULL), nor those in a language the version does not read (lang NULL:
# not identified, read by the default model).
NOT_YET_SHADOWED = """
SELECT p.kafka_timestamp, p.kafka_topic, p.kafka_partition, p.kafka_offset, p.post_id, p.text,
       p.label, p.model_version
FROM scored_posts p
WHERE p.kafka_timestamp >= %(since)s AND p.label IS NOT NULL
  AND (p.lang IS NULL OR p.lang = ANY(%(languages)s))
  AND (p.kafka_timestamp, p.kafka_topic, p.kafka_partition, p.kafka_offset)
      > (%(at)s, %(topic)s, %(partition)s, %(offset)s)
  AND NOT EXISTS (
      SELECT 1 FROM shadow_scores s
      WHERE s.model_version = %(version)s AND s.kafka_topic = p.kafka_topic
        AND s.kafka_partition = p.kafka_partition AND s.kafka_offset = p.kafka_offset
        AND s.kafka_timestamp = p.kafka_timestamp)
ORDER BY 1, 2, 3, 4
LIMIT %(limit)s
"""

COUNT_NOT_YET_SHADOWED = """
SELECT count(*) FROM scored_posts p
WHERE p.kafka_timestamp >= %(since)s AND p.label IS NOT NULL
  AND (p.lang IS NULL OR p.lang = ANY(%(languages)s))
  AND NOT EXISTS (
      SELECT 1 FROM shadow_scores s
      WHERE s.model_version = %(version)s AND s.kafka_topic = p.kafka_topic
        AND s.kafka_partition = p.kafka_partition AND s.kafka_offset = p.kafka_offset
        AND s.kafka_timestamp = p.kafka_timestamp)
"""

# Where a page ends: (kafka_timestamp, topic, partition, offset) of its last post.
PageKey = tuple[datetime, str, int, int]


@dataclass(frozen=True)
class ShadowRow:
    topic: str
    partition: int
    offset: int
    kafka_timestamp: datetime | None
    post_id: str
    model_version: str
    label: str
    probabilities: tuple[float, float, float]  # negative, neutral, positive
    active_version: str
    active_label: str


def add_shadow_scores(conn: psycopg.Connection[Any], rows: Sequence[ShadowRow]) -> int:
    """Insert ``rows`` (one transaction); returns how many were new."""
    if not rows:
        return 0
    columns = [
        [row.topic for row in rows],
        [row.partition for row in rows],
        [row.offset for row in rows],
        [row.kafka_timestamp for row in rows],
        [row.post_id for row in rows],
        [row.model_version for row in rows],
        [row.label for row in rows],
        *([row.probabilities[i] for row in rows] for i in range(3)),
        [row.active_version for row in rows],
        [row.active_label for row in rows],
    ]
    with conn.transaction():
        return conn.execute(ADD_SHADOW_SCORES, columns).rowcount


def shadow_confusion(
    conn: psycopg.Connection[Any], shadow_version: str, since: datetime
) -> dict[tuple[str, str, str], int]:
    """(active version, active label, shadow label) -> posts, for ``shadow_version``'s rows
    scored since ``since``."""
    rows = conn.execute(CONFUSION, (shadow_version, since)).fetchall()
    return {(active, a, s): int(n) for active, a, s, n in rows}


def not_yet_shadowed(
    conn: psycopg.Connection[Any],
    version: str,
    since: datetime,
    after: PageKey,
    limit: int,
    *,
    languages: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` stored posts in ``languages`` after ``after`` that ``version`` has no
    row for: (kafka_timestamp, topic, partition, offset, post_id, text, label, model_version)."""
    at, topic, partition, offset = after
    params = {
        "since": since,
        "version": version,
        "languages": list(languages),
        "at": at,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "limit": limit,
    }
    return conn.execute(NOT_YET_SHADOWED, params).fetchall()


def count_not_yet_shadowed(
    conn: psycopg.Connection[Any], version: str, languages: Sequence[str], since: datetime
) -> int:
    params = {"since": since, "version": version, "languages": list(languages)}
    row = conn.execute(COUNT_NOT_YET_SHADOWED, params).fetchone()
    return int(row[0]) if row else 0
