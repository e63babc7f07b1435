"""The registry's operations: register a folder, change a version's status, read the list and
the audit trail, and fetch a version's files into a local cache.

Each call is one short connection (these are rare, human-paced calls, or one per swap). Every
change of status is one transaction holding the table lock, the status rows and the audit row;
the consumers hear of it at commit (NOTIFY). Errors a user can cause are :class:`RegistryError`
with a message that says what to do; database failures come out as ``psycopg.Error``.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import structlog

from model.metadata import METADATA_FILE, MetadataError, ModelMetadata
from registry.artifacts import (
    ArtifactError,
    FileEntry,
    digest,
    manifest,
    read_chunks,
    write_folder,
)
from registry.compare import Comparison, compare
from storage import model_registry as sql
from storage.connection import connect
from storage.model_registry import Status

log = structlog.get_logger(__name__)

# The key of a version's metadata that lists its PyTorch checkpoint's blobs.
CHECKPOINT_KEY = "checkpoint"


class RegistryError(RuntimeError):
    """A request the registry refuses (unknown version, wrong status, bad folder): nothing
    changed; the message says why."""


class UnknownVersionError(RegistryError):
    pass


def default_actor() -> str:
    """Who is acting, for the audit trail: the user and host of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class ModelVersion:
    version: str
    sha256: str
    status: Status
    metadata: dict[str, Any]
    note: str
    registered_by: str
    registered_at: datetime
    status_by: str
    status_reason: str
    status_at: datetime
    previous_version: str | None
    shadow_sample: float

    @property
    def offline_metrics(self) -> dict[str, Any] | None:
        metrics = self.metadata.get("metrics")
        return metrics if isinstance(metrics, dict) else None


@dataclass(frozen=True)
class Registered:
    version: ModelVersion
    created: bool  # False: that folder was registered already


class ModelRegistry:
    """Read and change the registry in the PostgreSQL at ``database_url``."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with connect(self._url, "sentiment-stream registry") as conn:
            yield conn

    # Reading.

    def versions(self) -> list[ModelVersion]:
        with self._connection() as conn:
            return [ModelVersion(**row) for row in sql.list_versions(conn)]

    def get(self, version: str) -> ModelVersion:
        with self._connection() as conn:
            return _existing(conn, version)

    def with_status(self, status: Status) -> ModelVersion | None:
        with self._connection() as conn:
            row = sql.version_with_status(conn, status)
        return ModelVersion(**row) if row else None

    def serving_state(self) -> dict[str, tuple[str, float]]:
        with self._connection() as conn:
            return sql.serving_state(conn)

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._connection() as conn:
            return sql.history(conn, limit)

    def fetch(self, version: str, cache_dir: Path) -> Path:
        """The version's folder under ``cache_dir``, downloaded and verified if not there yet;
        RegistryError when the stored bytes are corrupt or incomplete."""
        with self._connection() as conn:
            found = _existing(conn, version)
            target = cache_dir / f"{found.version}-{found.sha256[:12]}"
            try:
                return write_folder(sql.version_chunks(conn, version), found.sha256, target)
            except ArtifactError as error:
                raise RegistryError(f"version {version} cannot be loaded: {error}") from None

    def fetch_checkpoint(self, version: str, cache_dir: Path) -> Path | None:
        """The version's PyTorch checkpoint folder under ``cache_dir`` (verified like
        :meth:`fetch`), or None when the version was registered without one."""
        with self._connection() as conn:
            found = _existing(conn, version)
            listing = found.metadata.get(CHECKPOINT_KEY)
            if not isinstance(listing, dict):
                return None
            files = {path: entry["sha256"] for path, entry in listing["files"].items()}
            target = cache_dir / f"checkpoint-{listing['sha256'][:16]}"
            try:
                return write_folder(sql.blob_chunks(conn, files), listing["sha256"], target)
            except ArtifactError as error:
                raise RegistryError(
                    f"the checkpoint of {version} cannot be loaded: {error}"
                ) from None

    def compare(self, version: str | None, since: timedelta) -> Comparison:
        """``version`` (default: the shadow version) against what served the same posts."""
        with self._connection() as conn:
            if version is None:
                shadow = _with_status(conn, "shadow")
                if shadow is None:
                    raise RegistryError(
                        "no shadow version: name one, or start one with `model shadow VERSION`"
                    )
                version = shadow.version
            return compare(conn, _existing(conn, version).version, since)

    # Changing.

    def register(
        self,
        folder: Path,
        *,
        note: str = "",
        actor: str | None = None,
        checkpoint: Path | None = None,
    ) -> Registered:
        """Store ``folder`` as a new version named by its metadata.json (one transaction);
        the same folder a second time is a no-op that returns the version it already is.

        ``checkpoint``: the PyTorch checkpoint folder the version was exported from, stored
        as content-addressed blobs too and listed under ``checkpoint`` in the version's
        metadata (what the next retrain starts from; consumers never download it).
        """
        actor = actor or default_actor()
        if not folder.is_dir():
            raise RegistryError(f"{folder} is not a folder")
        try:
            metadata = ModelMetadata.read(folder)
            entries = manifest(folder)
            checkpoint_entries = manifest(checkpoint) if checkpoint is not None else []
        except (MetadataError, ArtifactError) as error:
            raise RegistryError(str(error)) from None
        files = {entry.path: entry for entry in entries}
        onnx = files.get(metadata.onnx_file)
        if onnx is None or onnx.sha256 != metadata.onnx_sha256:
            raise RegistryError(
                f"{folder / metadata.onnx_file} is missing or does not match the sha256 that"
                f" {METADATA_FILE} states: export the model again"
            )
        folder_sha = digest(entries)
        document = json.loads((folder / METADATA_FILE).read_bytes())
        if checkpoint_entries:
            document[CHECKPOINT_KEY] = {
                "sha256": digest(checkpoint_entries),
                "files": {e.path: {"sha256": e.sha256, "size": e.size} for e in checkpoint_entries},
            }
        with self._connection() as conn, conn.transaction():
            sql.lock_versions(conn)
            same = sql.version_by_sha256(conn, folder_sha)
            if same is not None:
                return Registered(ModelVersion(**same), created=False)
            if sql.get_version(conn, metadata.version) is not None:
                raise RegistryError(
                    f"version {metadata.version} is registered already, with other files:"
                    f" give this folder another version in its {METADATA_FILE}"
                )
            _store_blobs(conn, folder, entries)
            if checkpoint is not None:
                _store_blobs(conn, checkpoint, checkpoint_entries)
            sql.insert_version(
                conn,
                version=metadata.version,
                sha256=folder_sha,
                metadata=document,
                note=note,
                actor=actor,
                files={path: entry.sha256 for path, entry in files.items()},
            )
            _audit(conn, "register", metadata.version, (None, "registered"), _Why(actor, note))
            row = sql.get_version(conn, metadata.version)
        assert row is not None
        log.info("model version registered", version=metadata.version, files=len(entries))
        return Registered(ModelVersion(**row), created=True)

    def promote(self, version: str, *, reason: str = "", actor: str | None = None) -> ModelVersion:
        """Make ``version`` the active one; the active one before it becomes registered (and
        is what :meth:`rollback` returns to)."""
        why = _Why(actor or default_actor(), reason)
        with self._connection() as conn, conn.transaction():
            sql.lock_versions(conn)
            return _promote(conn, version, why)

    def adopt(self, folder: Path, *, actor: str | None = None) -> ModelVersion | None:
        """When no version is active: register ``folder`` and make it active (a consumer's
        --model folder on a fresh registry). Returns the version adopted, None when another
        was active already."""
        if self.with_status("active") is not None:
            return None
        why = _Why(actor or default_actor(), "the first consumer's --model folder")
        version = self.register(folder, note=why.reason, actor=why.actor).version.version
        with self._connection() as conn, conn.transaction():
            sql.lock_versions(conn)
            if _with_status(conn, "active") is not None:
                return None  # another replica was quicker
            return _promote(conn, version, why)

    def rollback(
        self, *, reason: str = "", actor: str | None = None, only_if_active: str | None = None
    ) -> ModelVersion:
        """Retire the active version and make active again the one it replaced
        (``only_if_active``: refuse unless that version is still the active one)."""
        actor = actor or default_actor()
        with self._connection() as conn, conn.transaction():
            sql.lock_versions(conn)
            current = _with_status(conn, "active")
            if current is None:
                raise RegistryError("no version is active: nothing to roll back")
            if only_if_active is not None and current.version != only_if_active:
                raise RegistryError(f"version {only_if_active} is not the active one any more")
            previous = current.previous_version
            if previous is None:
                raise RegistryError(
                    f"version {current.version} replaced no other version: nothing to roll back"
                    " to (promote another version instead)"
                )
            before = _existing(conn, previous)
            sql.set_status(conn, current.version, "retired", actor=actor, reason=reason)
            _audit(conn, "rollback", current.version, ("active", "retired"), _Why(actor, reason))
            sql.set_status(conn, previous, "active", actor=actor, reason=reason)
            _audit(conn, "rollback", previous, (before.status, "active"), _Why(actor, reason))
            return _existing(conn, previous)

    def shadow(
        self, version: str, *, sample: float = 1.0, reason: str = "", actor: str | None = None
    ) -> ModelVersion:
        """Score ``sample`` of the active version's posts with ``version`` too, on the side; a
        shadow before it goes back to registered."""
        actor = actor or default_actor()
        if not 0 < sample <= 1:
            raise RegistryError(f"the sample must be in (0, 1], got {sample}")
        with self._connection() as conn, conn.transaction():
            sql.lock_versions(conn)
            target = _existing(conn, version)
            if target.status == "active":
                raise RegistryError(f"version {version} is active: it cannot shadow itself")
            current = _with_status(conn, "shadow")
            if current is not None and current.version != version:
                sql.set_status(conn, current.version, "registered", actor=actor, reason=reason)
                _audit(
                    conn, "unshadow", current.version, ("shadow", "registered"), _Why(actor, reason)
                )
            sql.set_status(
                conn, version, "shadow", actor=actor, reason=reason, shadow_sample=sample
            )
            why = f"sample {sample:g}" + (f": {reason}" if reason else "")
            _audit(conn, "shadow", version, (target.status, "shadow"), _Why(actor, why))
            return _existing(conn, version)

    def retire(self, version: str, *, reason: str = "", actor: str | None = None) -> ModelVersion:
        """Take a version out of use (its files stay; it can be promoted again)."""
        actor = actor or default_actor()
        with self._connection() as conn, conn.transaction():
            sql.lock_versions(conn)
            target = _existing(conn, version)
            if target.status == "active":
                raise RegistryError(
                    f"version {version} is active: promote another version or roll back first"
                )
            if target.status == "retired":
                raise RegistryError(f"version {version} is retired already")
            sql.set_status(conn, version, "retired", actor=actor, reason=reason)
            _audit(conn, "retire", version, (target.status, "retired"), _Why(actor, reason))
            return _existing(conn, version)


def _store_blobs(conn: psycopg.Connection[Any], folder: Path, entries: list[FileEntry]) -> None:
    """The files of ``folder`` the database does not hold yet, as blobs (the caller's
    transaction)."""
    missing = sql.missing_blobs(conn, [e.sha256 for e in entries])
    try:
        for entry in entries:
            if entry.sha256 in missing:
                chunks = read_chunks(folder / entry.path, entry)
                sql.insert_blob(conn, entry.sha256, entry.size, chunks)
                missing.discard(entry.sha256)  # two paths, one content: stored once
    except ArtifactError as error:
        raise RegistryError(str(error)) from None


def _promote(conn: psycopg.Connection[Any], version: str, why: _Why) -> ModelVersion:
    target = _existing(conn, version)
    if target.status == "active":
        raise RegistryError(f"version {version} is the active version already")
    current = _with_status(conn, "active")
    if current is not None:
        sql.set_status(conn, current.version, "registered", actor=why.actor, reason=why.reason)
        _audit(conn, "demote", current.version, ("active", "registered"), why)
    sql.set_status(
        conn,
        version,
        "active",
        actor=why.actor,
        reason=why.reason,
        previous_version=current.version if current else None,
    )
    _audit(conn, "promote", version, (target.status, "active"), why)
    return _existing(conn, version)


def _existing(conn: psycopg.Connection[Any], version: str) -> ModelVersion:
    row = sql.get_version(conn, version)
    if row is None:
        raise UnknownVersionError(
            f"no version {version} in the registry (see `sentiment-stream model list`)"
        )
    return ModelVersion(**row)


def _with_status(conn: psycopg.Connection[Any], status: Status) -> ModelVersion | None:
    row = sql.version_with_status(conn, status)
    return ModelVersion(**row) if row else None


@dataclass(frozen=True)
class _Why:
    actor: str
    reason: str


def _audit(
    conn: psycopg.Connection[Any],
    action: str,
    version: str,
    transition: tuple[str | None, str | None],
    why: _Why,
) -> None:
    sql.add_audit(
        conn,
        action=action,
        version=version,
        from_status=transition[0],
        to_status=transition[1],
        actor=why.actor,
        reason=why.reason,
    )
