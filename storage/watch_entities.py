"""``watch_entities``: the watchlist every replica matches, one row per entity.

Rows travel as plain mappings of :data:`COLUMNS` (``watchlist.rules.WatchEntity`` validates
them on both sides). Every change fires a NOTIFY on :data:`CHANNEL` at commit (a trigger, so
plain SQL edits count too); the consumers listen and re-read within a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

CHANNEL = "sentiment_watchlist"  # the migration's trigger notifies on this channel
COLUMNS = ("name", "description", "keywords", "hashtags", "mentions", "regexes", "metrics")
_COLUMN_LIST = ", ".join(COLUMNS)

EntityRow = Mapping[str, Any]
Outcome = Literal["created", "updated", "unchanged"]

_RULES = COLUMNS[1:]  # everything but the name
# xmax = 0 only on a freshly inserted row; no row comes back when nothing changed.
UPSERT = f"""
INSERT INTO watch_entities AS current ({_COLUMN_LIST})
VALUES ({", ".join(f"%({name})s" for name in COLUMNS)})
ON CONFLICT (name) DO UPDATE
SET {", ".join(f"{name} = EXCLUDED.{name}" for name in _RULES)}, updated_at = now()
WHERE ({", ".join(f"current.{name}" for name in _RULES)})
    IS DISTINCT FROM ({", ".join(f"EXCLUDED.{name}" for name in _RULES)})
RETURNING xmax = 0 AS created
"""

# One short hash of the whole list: the listener's periodic re-read loads the rows only when
# it changed.
FINGERPRINT = f"""
SELECT coalesce(md5(string_agg(row({_COLUMN_LIST})::text, ',' ORDER BY name)), '')
FROM watch_entities
"""


@dataclass
class SyncResult:
    """What making the table equal a list did, entity names per outcome."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


def fingerprint(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(FINGERPRINT).fetchone()
    return str(row[0]) if row else ""


def list_entities(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(f"SELECT {_COLUMN_LIST} FROM watch_entities ORDER BY name").fetchall()


def get_entity(conn: psycopg.Connection[Any], name: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        query = f"SELECT {_COLUMN_LIST} FROM watch_entities WHERE name = %s"
        return cursor.execute(query, (name,)).fetchone()


def put_entity(conn: psycopg.Connection[Any], row: EntityRow) -> Outcome:
    """Create or replace one entity; says which (``unchanged`` when it was already so)."""
    returned = conn.execute(UPSERT, {name: row[name] for name in COLUMNS}).fetchone()
    if returned is None:
        return "unchanged"
    return "created" if returned[0] else "updated"


def delete_entity(conn: psycopg.Connection[Any], name: str) -> bool:
    """Remove one entity; False when there was none of that name."""
    return conn.execute("DELETE FROM watch_entities WHERE name = %s", (name,)).rowcount > 0


def sync(conn: psycopg.Connection[Any], rows: Sequence[EntityRow], *, prune: bool) -> SyncResult:
    """Make the table hold ``rows`` (and, with ``prune``, nothing else), in one transaction:
    the consumers see the old list or the new one, never half of the change."""
    result = SyncResult()
    with conn.transaction():
        for row in sorted(rows, key=lambda r: str(r["name"])):
            getattr(result, put_entity(conn, row)).append(row["name"])
        if prune:
            removed = conn.execute(
                "DELETE FROM watch_entities WHERE NOT name = ANY(%s) RETURNING name",
                ([row["name"] for row in rows],),
            ).fetchall()
            result.removed = sorted(name for (name,) in removed)
    return result
