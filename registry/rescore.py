"""``model rescore``: a registered version scores posts already stored, into
``shadow_scores``, so it can be compared on yesterday's traffic before it sees live traffic.

Pages of ``page`` posts in key order, each committed on its own: an interrupted run loses at
most a page, and a rerun resumes (it reads only the posts the version has no row for). A pause
between pages bounds the load on the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from language.identify import UNDETERMINED
from model.scorer import Scorer
from registry.shadow import shadow_rows
from storage.connection import connect
from storage.shadow_scores import (
    PageKey,
    add_shadow_scores,
    count_not_yet_shadowed,
    not_yet_shadowed,
)
from stream_core.records import ScoredPost

START: PageKey = (datetime.min.replace(tzinfo=UTC), "", -1, -1)


def languages_of(scorer: Scorer) -> list[str]:
    """The post languages ``scorer`` reads: those its metadata declares, and ``und`` (what the
    default route scores)."""
    return [*scorer.metadata.languages, UNDETERMINED]


def to_rescore(database_url: str, scorer: Scorer, since: datetime) -> int:
    with connect(database_url, "sentiment-stream rescore") as conn:
        return count_not_yet_shadowed(conn, scorer.version, languages_of(scorer), since)


def rescore(
    database_url: str,
    scorer: Scorer,
    since: datetime,
    *,
    page: int = 512,
    pause_s: float = 0.0,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Score every stored post since ``since`` that ``scorer``'s version has no row for, in
    the languages it reads (never an unscored one); returns how many rows were written.
    ``progress(n)`` after each page."""
    written, after = 0, START
    with connect(database_url, "sentiment-stream rescore") as conn:
        languages = languages_of(scorer)
        while rows := not_yet_shadowed(
            conn, scorer.version, since, after, page, languages=languages
        ):
            posts = [
                ScoredPost(
                    post_id=post_id,
                    text=text,
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    kafka_timestamp=at,
                    label=label,
                    model_version=version,
                )
                for at, topic, partition, offset, post_id, text, label, version in rows
            ]
            written += add_shadow_scores(conn, shadow_rows(scorer, posts))
            after = rows[-1][:4]
            progress(len(rows))
            if pause_s:
                time.sleep(pause_s)
    return written
