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
