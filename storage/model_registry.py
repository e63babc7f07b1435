"""The model registry's tables: ``model_versions``, ``model_files``, ``model_blobs`` with
``model_blob_chunks``, and ``model_audit`` (migration 0009).

A version's files are content-addressed blobs cut into chunks of at most :data:`CHUNK_BYTES`,
each with its own sha256; a file stored by several versions is stored once. A version, its file
list and any new blobs are inserted in one transaction, so a failed upload leaves nothing. Every
change of status is one transaction with its audit row; the trigger of migration 0009 NOTIFYs
:data:`CHANNEL` at commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

CHANNEL = "sentiment_models"  # the migration's trigger notifies on this channel
CHUNK_BYTES = 1 << 20

Status = Literal["registered", "shadow", "active", "retired"]
STATUSES: tuple[Status, ...] = ("registered", "shadow", "active", "retired")

VERSION_COLUMNS = (
    "version, sha256, status, metadata, note, registered_by, registered_at, status_by,"
    " status_reason, status_at, previous_version, shadow_sample"
)


@dataclass(frozen=True)
class Chunk:
    seq: int
    sha256: str
    data: bytes


@dataclass(frozen=True)
class StoredChunk:
    """One chunk of one file of a version, as read back (in path, then seq order)."""

    path: str
    blob_sha256: str
    blob_size: int
    blob_chunks: int
    seq: int | None  # None (and no data): an empty file, stored with no chunk
    sha256: str | None
    data: bytes


def lock_versions(conn: psycopg.Connection[Any]) -> None:
    """Serialise changes of status (inside the caller's transaction): two promotions at once
    cannot both read the same active version."""
    conn.execute("LOCK TABLE model_versions IN SHARE ROW EXCLUSIVE MODE")


def get_version(conn: psycopg.Connection[Any], version: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        query = f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE version = %s"
        return cursor.execute(query, (version,)).fetchone()


def version_by_sha256(conn: psycopg.Connection[Any], sha256: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        query = f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE sha256 = %s"
        return cursor.execute(query, (sha256,)).fetchone()


def version_with_status(conn: psycopg.Connection[Any], status: Status) -> dict[str, Any] | None:
    """The active or the shadow version (at most one each), or None."""
    with conn.cursor(row_factory=dict_row) as cursor:
        query = f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE status = %s"
        return cursor.execute(query, (status,)).fetchone()


def list_versions(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        query = f"SELECT {VERSION_COLUMNS} FROM model_versions ORDER BY registered_at, version"
        return cursor.execute(query).fetchall()


def serving_state(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, float]]:
    """What the replicas follow, in one cheap query: status -> (version, shadow sample) for the
    active and the shadow version."""
    rows = conn.execute(
        "SELECT status, version, shadow_sample FROM model_versions"
        " WHERE status IN ('active', 'shadow')"
    ).fetchall()
    return {status: (version, float(sample)) for status, version, sample in rows}


def missing_blobs(conn: psycopg.Connection[Any], sha256s: Sequence[str]) -> set[str]:
    """Which of these blobs the database does not hold yet."""
    rows = conn.execute(
        "SELECT s FROM unnest(%s::text[]) AS s WHERE NOT EXISTS"
        " (SELECT 1 FROM model_blobs WHERE sha256 = s)",
        (list(sha256s),),
    ).fetchall()
    return {sha for (sha,) in rows}


def insert_blob(
    conn: psycopg.Connection[Any], sha256: str, size: int, chunks: Iterable[Chunk]
) -> None:
    """Store one file's bytes, chunk by chunk (the caller's transaction; the caller checked
    ``sha256`` against the bytes)."""
    count = 0
    conn.execute(
        "INSERT INTO model_blobs (sha256, size, chunks) VALUES (%s, %s, 0)", (sha256, size)
    )
    with conn.cursor() as cursor:
        for chunk in chunks:
            cursor.execute(
                "INSERT INTO model_blob_chunks (blob_sha256, seq, sha256, data)"
                " VALUES (%s, %s, %s, %s)",
                (sha256, chunk.seq, chunk.sha256, chunk.data),
            )
            count += 1
    conn.execute("UPDATE model_blobs SET chunks = %s WHERE sha256 = %s", (count, sha256))


def insert_version(
    conn: psycopg.Connection[Any],
    *,
    version: str,
    sha256: str,
    metadata: dict[str, Any],
    note: str,
    actor: str,
    files: dict[str, str],
) -> None:
    """A new registered version and its files (path -> blob sha256), in the caller's
    transaction."""
    conn.execute(
        "INSERT INTO model_versions (version, sha256, metadata, note, registered_by, status_by)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (version, sha256, Jsonb(metadata), note, actor, actor),
    )
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO model_files (version, path, blob_sha256) VALUES (%s, %s, %s)",
            [(version, path, blob) for path, blob in sorted(files.items())],
        )


def set_status(
    conn: psycopg.Connection[Any],
    version: str,
    status: Status,
    *,
    actor: str,
    reason: str,
    previous_version: str | None = None,
    shadow_sample: float | None = None,
) -> None:
    """Change one version's status (the caller's transaction; see :func:`add_audit`)."""
    conn.execute(
        "UPDATE model_versions SET status = %s, status_by = %s, status_reason = %s,"
        " status_at = now(), previous_version = coalesce(%s, previous_version),"
        " shadow_sample = coalesce(%s, shadow_sample) WHERE version = %s",
        (status, actor, reason, previous_version, shadow_sample, version),
    )


def add_audit(
    conn: psycopg.Connection[Any],
    *,
    action: str,
    version: str,
    from_status: str | None,
    to_status: str | None,
    actor: str,
    reason: str,
) -> None:
    conn.execute(
        "INSERT INTO model_audit (action, version, from_status, to_status, actor, reason)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (action, version, from_status, to_status, actor, reason),
    )


def history(conn: psycopg.Connection[Any], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` audit rows, newest first."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            "SELECT id, at, action, version, from_status, to_status, actor, reason"
            " FROM model_audit ORDER BY id DESC LIMIT %s",
            (limit,),
        ).fetchall()


def version_chunks(conn: psycopg.Connection[Any], version: str) -> Iterator[StoredChunk]:
    """Every chunk of every file of ``version``, by path then seq, streamed (a server-side
    cursor: a large model is never held in memory whole)."""
    query = (
        "SELECT f.path, b.sha256, b.size, b.chunks, c.seq, c.sha256, c.data"
        " FROM model_files f JOIN model_blobs b ON b.sha256 = f.blob_sha256"
        " LEFT JOIN model_blob_chunks c ON c.blob_sha256 = b.sha256"
        " WHERE f.version = %s ORDER BY f.path, c.seq"
    )
    return _streamed(conn, f"chunks-{version}", query, (version,))


def blob_chunks(conn: psycopg.Connection[Any], files: dict[str, str]) -> Iterator[StoredChunk]:
    """Every chunk of the blobs ``files`` names (path -> blob sha256), by path then seq,
    streamed: the files of a version's checkpoint, blobs outside ``model_files``."""
    paths = sorted(files)
    query = (
        "SELECT f.path, b.sha256, b.size, b.chunks, c.seq, c.sha256, c.data"
        " FROM unnest(%s::text[], %s::text[]) AS f (path, blob_sha256)"
        " JOIN model_blobs b ON b.sha256 = f.blob_sha256"
        " LEFT JOIN model_blob_chunks c ON c.blob_sha256 = b.sha256"
        " ORDER BY f.path, c.seq"
    )
    return _streamed(conn, "checkpoint-chunks", query, (paths, [files[p] for p in paths]))


def _streamed(
    conn: psycopg.Connection[Any], name: str, query: str, params: tuple[Any, ...]
) -> Iterator[StoredChunk]:
    with conn.transaction(), conn.cursor(name=name) as cursor:
        cursor.itersize = 4
        cursor.execute(query, params)
        for path, blob, size, chunks, seq, sha, data in cursor:
            yield StoredChunk(path, blob, size, chunks, seq, sha, bytes(data or b""))
