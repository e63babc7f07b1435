"""``scored_posts``: one row per message, and every statement on it.

The sink (``storage.sink``) loads a batch with ``COPY_TO_STAGING`` and ``FROM_STAGING``; the
demo reads through the functions at the end. A per-post field that is stored gets its column
in ``COLUMNS``, ``row`` and ``STAGING_DDL`` (and a migration).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from storage.partitions import kept_from
from stream_core.records import ScoredPost

COLUMNS = (
    "post_id",
    "text",
    "author",
    "lang",
    "created_at",
    "label",
    "prob_negative",
    "prob_neutral",
    "prob_positive",
    "model_version",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "gold_label",
    "gold_label_at",
    "extra",
    "lang_source",
    "lang_confidence",
    "status",
    "unscored_reason",
)
COLUMN_LIST = ", ".join(COLUMNS)

STAGING_DDL = """
CREATE TEMPORARY TABLE IF NOT EXISTS scored_posts_staging (
    post_id text, text text, author text, lang text, created_at timestamptz, label text,
    prob_negative real, prob_neutral real, prob_positive real, model_version text,
    kafka_topic text, kafka_partition integer, kafka_offset bigint, kafka_timestamp timestamptz,
    gold_label text, gold_label_at timestamptz, extra jsonb,
    lang_source text, lang_confidence real, status text, unscored_reason text
) ON COMMIT DELETE ROWS
"""

# Rows are inserted in key order (and the write parts keep an order of their own), so that two
# consumers writing overlapping rows (during a rebalance) lock them in the same order and never
# deadlock. RETURNING names the rows really inserted: a replayed one is not among them. The key
# holds the partition column (kafka_timestamp, the same on every replay); its NULLS NOT
# DISTINCT makes a message without a timestamp a replay too.
INSERT_NEW_ROWS = f"""
INSERT INTO scored_posts ({COLUMN_LIST})
{{source}}
ON CONFLICT (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp) DO NOTHING
RETURNING kafka_topic, kafka_partition, kafka_offset, scored_at
"""
# Rows older than the partitions `db maintain` keeps are not stored: their first write may
# have been dropped with its partition, so storing (and counting) them again could count a
# post twice. They are reported like replays.
FROM_STAGING = INSERT_NEW_ROWS.format(
    source=f"SELECT {COLUMN_LIST} FROM scored_posts_staging "
    f"WHERE kafka_timestamp IS NULL OR kafka_timestamp >= {kept_from('scored_posts')} "
    "ORDER BY kafka_topic, kafka_partition, kafka_offset"
)
COPY_TO_STAGING = f"COPY scored_posts_staging ({COLUMN_LIST}) FROM STDIN"


def row(post: ScoredPost, column_order: Sequence[int]) -> tuple[Any, ...]:
    """The values of ``COLUMNS`` for one post; ``column_order`` picks the probability of each of
    negative, neutral and positive from the model's order."""
    return (
        post.post_id,
        post.text,
        post.author,
        post.lang,
        post.created_at,
        post.label,
        # An unscored post (no model reads its language) has no probabilities.
        *(post.probabilities[i] if post.probabilities else None for i in column_order),
        post.model_version,
        post.topic,
        post.partition,
        post.offset,
        post.kafka_timestamp,
        post.gold_label,
        post.gold_label_at,
        Jsonb(post.extra) if post.extra is not None else None,
        post.lang_source,
        post.lang_confidence,
        post.status,
        post.unscored_reason,
    )


def table_exists(conn: psycopg.Connection[Any]) -> bool:
    """False before ``sentiment-stream db upgrade`` created the schema."""
    found = conn.execute("SELECT to_regclass('scored_posts') IS NOT NULL").fetchone()
    return bool(found and found[0])


def is_partitioned(conn: psycopg.Connection[Any]) -> bool:
    """False in a schema older than the time partitions (revision 0004)."""
    found = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_partitioned_table"
        " WHERE partrelid = to_regclass('scored_posts'))"
    ).fetchone()
    return bool(found and found[0])


def count(conn: psycopg.Connection[Any]) -> int:
    found = conn.execute("SELECT count(*) FROM scored_posts").fetchone()
    return int(found[0]) if found else 0


def rows_by_version(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, datetime, datetime]]:
    """Per model version: the rows it scored, the first and the last one's ``scored_at``."""
    found = conn.execute(
        "SELECT model_version, count(*), min(scored_at), max(scored_at) FROM scored_posts"
        " WHERE model_version IS NOT NULL GROUP BY 1"
    ).fetchall()
    return {version: (int(n), first, last) for version, n, first, last in found}


def scoring_span_s(conn: psycopg.Connection[Any]) -> float:
    """Seconds between the first and the last row stored."""
    found = conn.execute(
        "SELECT extract(epoch FROM max(scored_at) - min(scored_at)) FROM scored_posts"
    ).fetchone()
    return float(found[0] or 0.0) if found else 0.0


def label_counts_every(
    conn: psycopg.Connection[Any], seconds: int
) -> list[tuple[datetime, str, int]]:
    """(bucket start, label, posts) in buckets of ``seconds``, by when posted (else stored):
    finer than the per-minute counts, for short runs."""
    return conn.execute(
        "SELECT date_bin(make_interval(secs => %s), coalesce(created_at, scored_at),"
        " timestamptz '2000-01-01'), label, count(*) FROM scored_posts"
        " WHERE label IS NOT NULL GROUP BY 1, 2",
        (seconds,),
    ).fetchall()
