"""Where scored posts go: a small :class:`Sink` interface and the PostgreSQL sink.

One batch is one transaction: COPY into a temporary staging table, then one statement that
inserts the new rows into ``scored_posts`` (``ON CONFLICT DO NOTHING`` on the Kafka position
and timestamp; ``storage.partitions`` explains the time partitions) and returns the rows it
really inserted; then the write parts (:class:`WritePart`: the per-minute counts,
``storage.minute_counts``; the gold labels, ``storage.gold_labels``) add what those rows, and
only those, contribute, and store the batch's gold labels. A replayed batch therefore changes
nothing, and the aggregates stay exact.

COPY + INSERT ... SELECT beat a multi-row INSERT ... VALUES here: 8.9k vs 6.6k rows/s for
batches of 64 tweets, 15.7k vs 5.5k for 256 (``python -m benchmarks.pipeline_bench`` prints both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
import structlog

from storage import scored_posts
from storage.urls import libpq_url, redacted
from stream_core.contract import LABELS
from stream_core.records import GoldLabel, ScoredPost

log = structlog.get_logger(__name__)


def _describe(error: Exception) -> str:
    """PostgreSQL's message and detail on one line (``\\u0000 cannot be converted...``)."""
    diag = getattr(error, "diag", None)
    if diag is not None and diag.message_primary:
        detail = f" ({diag.message_detail})" if diag.message_detail else ""
        return f"{diag.message_primary}{detail}"
    return str(error).strip().splitlines()[0]


class StorageUnavailableError(Exception):
    """The database cannot be written right now (down, unreachable, restarting): retry later."""


class SchemaMissingError(Exception):
    """The tables are not there: ``sentiment-stream db upgrade`` has not been run."""


@dataclass(frozen=True)
class WriteResult:
    """What a batch write did: rows inserted (replays excluded) and rows the store refused."""

    inserted: int
    rejected: list[tuple[ScoredPost, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InsertedRows:
    """The rows one transaction really inserted into ``scored_posts`` (replays excluded), and
    the gold labels its batch carries (all of them: a part makes storing them idempotent)."""

    posts: Sequence[ScoredPost]
    scored_at: datetime  # their ``scored_at``: the transaction's time, the same for every row
    labels: Sequence[GoldLabel] = ()


class WritePart(Protocol):
    """Writes what a batch adds beside its rows, in the batch's transaction.

    ``write`` gets the transaction's cursor and the rows really inserted, and runs (at most)
    one statement: a replay inserts no row, so it adds nothing, and a failure rolls the whole
    batch back. Parts run in the order ``consumer.build.write_parts`` lists them, and only
    when the transaction inserted at least one row or the batch carries gold labels.
    """

    def write(self, cursor: psycopg.Cursor[Any], inserted: InsertedRows) -> None: ...


def inserted_rows(
    posts: Sequence[ScoredPost],
    returned: Sequence[tuple[Any, ...]],
    labels: Sequence[GoldLabel] = (),
) -> InsertedRows | None:
    """The posts named by the RETURNING rows of ``scored_posts.INSERT_NEW_ROWS``, with
    ``labels`` (None when there is neither)."""
    if not returned and not labels:
        return None
    keys = {(topic, partition, offset) for topic, partition, offset, _ in returned}
    return InsertedRows(
        posts=[post for post in posts if (post.topic, post.partition, post.offset) in keys],
        scored_at=returned[0][3] if returned else datetime.now(UTC),
        labels=labels,
    )


class Sink(Protocol):
    """Writes whole batches, idempotently; raises StorageUnavailableError for transient failures."""

    def write_batch(
        self, posts: Sequence[ScoredPost], labels: Sequence[GoldLabel] = ()
    ) -> WriteResult: ...

    def close(self) -> None: ...


class PostgresSink:
    """The PostgreSQL sink: one transaction per batch, with its write parts; bad rows isolated
    by bisection."""

    def __init__(
        self,
        database_url: str,
        *,
        labels: Sequence[str],
        parts: Sequence[WritePart] = (),
        connect_timeout_s: int = 5,
    ) -> None:
        self._url = database_url
        self._parts = tuple(parts)
        self._connect_timeout_s = connect_timeout_s
        # Probabilities come in the model's label order; the columns are in LABELS order.
        self._column_order = [list(labels).index(name) for name in LABELS]
        self._conn: psycopg.Connection[Any] | None = None

    def row(self, post: ScoredPost) -> tuple[Any, ...]:
        """The values of ``storage.scored_posts.COLUMNS`` for one post."""
        return scored_posts.row(post, self._column_order)

    def connection(self) -> psycopg.Connection[Any]:
        """The open connection, (re)connecting first; StorageUnavailableError when that fails."""
        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(
                    libpq_url(self._url),
                    autocommit=True,
                    connect_timeout=self._connect_timeout_s,
                    application_name="sentiment-stream",
                )
            except psycopg.OperationalError as error:
                reason = " ".join(str(error).split())  # libpq's hint on its second line
                raise StorageUnavailableError(
                    f"cannot connect to {redacted(self._url)}: {reason}"
                ) from error
            try:
                # Minute buckets are UTC minutes, whatever the server's default time zone.
                conn.execute("SET TIME ZONE 'UTC'")
                if not scored_posts.table_exists(conn):
                    raise SchemaMissingError(
                        f"no scored_posts table in {redacted(self._url)}: "
                        "run `sentiment-stream db upgrade` first"
                    )
                if not scored_posts.is_partitioned(conn):
                    raise SchemaMissingError(
                        f"the schema in {redacted(self._url)} is older than this release "
                        "(scored_posts is not partitioned yet): run `sentiment-stream db upgrade`"
                    )
                conn.execute(scored_posts.STAGING_DDL)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def write_batch(
        self, posts: Sequence[ScoredPost], labels: Sequence[GoldLabel] = ()
    ) -> WriteResult:
        """Write every post that PostgreSQL accepts, and the gold labels; refused rows come back
        in ``rejected``."""
        if not posts and not labels:
            return WriteResult(inserted=0)
        try:
            return self._write_isolating_bad_rows(posts, labels)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            self.close()  # a fresh connection for the retry
            raise StorageUnavailableError(str(error).strip()) from error

    def _write_isolating_bad_rows(
        self, posts: Sequence[ScoredPost], labels: Sequence[GoldLabel] = ()
    ) -> WriteResult:
        try:
            return WriteResult(inserted=self._write_transaction(posts, labels))
        except (psycopg.DataError, psycopg.IntegrityError, UnicodeEncodeError) as error:
            if labels:
                # Labels were validated when read, so a post is to blame: store the labels on
                # their own (a failure there is a bug, and stops the consumer), then isolate it.
                self._write_transaction((), labels)
                return self._write_isolating_bad_rows(posts)
            # Some row cannot be stored (a NUL character, say). Bisect: the good halves land,
            # each bad row ends up alone and is refused; log2(n) extra transactions per bad row.
            if len(posts) == 1:
                message = _describe(error)
                log.warning("row refused by PostgreSQL", offset=posts[0].offset, error=message)
                return WriteResult(inserted=0, rejected=[(posts[0], message)])
            middle = len(posts) // 2
            first = self._write_isolating_bad_rows(posts[:middle])
            second = self._write_isolating_bad_rows(posts[middle:])
            return WriteResult(
                inserted=first.inserted + second.inserted,
                rejected=first.rejected + second.rejected,
            )

    def _write_transaction(
        self, posts: Sequence[ScoredPost], labels: Sequence[GoldLabel] = ()
    ) -> int:
        conn = self.connection()
        with conn.transaction(), conn.cursor() as cursor:
            if posts:
                with cursor.copy(scored_posts.COPY_TO_STAGING) as copy:
                    for post in posts:
                        copy.write_row(self.row(post))
            return self.insert(cursor, scored_posts.FROM_STAGING, posts, labels=labels)

    def insert(
        self,
        cursor: psycopg.Cursor[Any],
        statement: str,
        posts: Sequence[ScoredPost],
        params: Sequence[Any] | None = None,
        labels: Sequence[GoldLabel] = (),
    ) -> int:
        """Run ``statement`` (``scored_posts.INSERT_NEW_ROWS`` from some source) for ``posts``,
        then the write parts on the rows it really inserted and on ``labels``; returns how many
        rows that was."""
        returned = cursor.execute(statement, params).fetchall() if posts else []
        inserted = inserted_rows(posts, returned, labels)
        if inserted is None:
            return 0
        for part in self._parts:
            part.write(cursor, inserted)
        return len(inserted.posts)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
