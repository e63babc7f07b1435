"""Labelled posts for retraining: stored posts that a late gold label reached (``gold_label``,
set by ``storage.gold_labels``), read in time order for ``model retrain``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

# Every row of a post carries its label (a replayed message is another row of the same post id:
# the data set keeps one example per id). Posts whose language no model of the caller reads are
# left out; a post with no language known counts as readable, as the score step does.
LABELLED_SINCE = """
SELECT post_id, text, gold_label, kafka_timestamp, lang
FROM scored_posts
WHERE gold_label IS NOT NULL
  AND kafka_timestamp >= %(since)s
  AND (lang IS NULL OR lang = ANY(%(languages)s))
ORDER BY kafka_timestamp, kafka_topic, kafka_partition, kafka_offset
"""


@dataclass(frozen=True)
class LabelledPost:
    post_id: str
    text: str
    label: str
    at: datetime  # the post's Kafka timestamp: what the time split orders by
    lang: str | None = None


def labelled_since(
    conn: psycopg.Connection[Any], since: datetime, languages: Sequence[str]
) -> list[LabelledPost]:
    """Every labelled post since ``since`` in ``languages``, oldest first."""
    params = {"since": since, "languages": list(languages)}
    return [LabelledPost(*row) for row in conn.execute(LABELLED_SINCE, params).fetchall()]
