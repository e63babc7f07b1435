"""``language_minute_counts``: exact posts per UTC minute, language and status (scored, or
unscored: no model reads the language).

:class:`LanguageMinuteCounts` is the write part that keeps them: it adds the rows its batch's
transaction really inserted, so a replay adds nothing. Unscored posts are counted here and only
here: the label counts skip them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg

from storage.minute_counts import minute_of
from storage.sink import InsertedRows
from stream_core.records import SCORED, UNSCORED

UNDETERMINED = "und"
# One statement per batch, in key order (two consumers lock the same rows in the same order).
ADD_LANGUAGE_COUNTS = """
INSERT INTO language_minute_counts AS counts (minute, lang, status, count)
SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::bigint[]) AS batch
ORDER BY 1, 2, 3
ON CONFLICT (minute, lang, status) DO UPDATE SET count = counts.count + EXCLUDED.count
"""


class LanguageMinuteCounts:
    """The :class:`~storage.sink.WritePart` that adds a batch's posts to the per-language
    minute counts (a post without a language counts as ``und``)."""

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None:
        counts = Counter(
            (
                minute_of(post, inserted.scored_at),
                post.lang or UNDETERMINED,
                SCORED if post.label is not None else UNSCORED,
            )
            for post in inserted.posts
        )
        if not counts:
            return  # gold labels only
        keys = sorted(counts)
        minutes, langs, statuses = (list(column) for column in zip(*keys, strict=True))
        cursor.execute(ADD_LANGUAGE_COUNTS, (minutes, langs, statuses, [counts[k] for k in keys]))
