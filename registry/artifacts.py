"""A model folder as registry blobs, and back: the manifest, its digest, chunked upload and a
verified, atomic download into a local cache.

The database is the store (no object store): every replica already reaches it, and a version
commits in one transaction with its files. Download checks every chunk's sha256, every file's
size and sha256, and the version's digest before the folder appears under its final name, so a
corrupt or partial copy is never loaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from storage.model_registry import CHUNK_BYTES, Chunk, StoredChunk

COMPLETE_MARKER = ".registry-complete"


class ArtifactError(RuntimeError):
    """A folder cannot be stored, or stored bytes do not match their checksums."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, with forward slashes
    size: int
    sha256: str


def manifest(folder: Path) -> list[FileEntry]:
    """Every regular file under ``folder``, sorted by path (links and hidden files refused or
    left out: a model folder is plain files)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in Path(relative).parts):
            continue
        if path.is_symlink():
            raise ArtifactError(f"{path} is a symbolic link: copy the file into the folder")
        if path.is_file():
            entries.append(FileEntry(relative, path.stat().st_size, file_sha256(path)))
    if not entries:
        raise ArtifactError(f"{folder} holds no files")
    return entries


def digest(entries: Iterable[FileEntry]) -> str:
    """The sha256 of a folder: of its sorted (path, size, sha256) lines."""
    lines = "".join(f"{e.path}\0{e.size}\0{e.sha256}\n" for e in sorted(entries, key=_path))
    return hashlib.sha256(lines.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(CHUNK_BYTES):
            sha.update(block)
    return sha.hexdigest()


def read_chunks(path: Path, entry: FileEntry) -> Iterator[Chunk]:
    """The file's chunks; ArtifactError if its bytes are no longer those of ``entry``."""
    whole = hashlib.sha256()
    with path.open("rb") as file:
        seq = 0
        while block := file.read(CHUNK_BYTES):
            whole.update(block)
            yield Chunk(seq, hashlib.sha256(block).hexdigest(), block)
            seq += 1
    if whole.hexdigest() != entry.sha256:
        raise ArtifactError(f"{path} changed while it was being stored: register it again")


def write_folder(chunks: Iterable[StoredChunk], expected_digest: str, target: Path) -> Path:
    """Write a version's stored chunks to ``target``, verified, atomically.

    The files go to a temporary folder beside ``target``, which is renamed into place only once
    every checksum held; an existing complete ``target`` is reused as it is.
    """
    if (target / COMPLETE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        entries = _write_verified(chunks, staging)
        if digest(entries) != expected_digest:
            raise ArtifactError(
                "the stored files do not add up to the version's sha256 (a file is missing)"
            )
        (staging / COMPLETE_MARKER).write_text(expected_digest + "\n")
        shutil.rmtree(target, ignore_errors=True)  # an incomplete earlier attempt
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class _OpenFile:
    """One file being written back: its bytes and chunks counted, its sha256 computed."""

    def __init__(self, folder: Path, first: StoredChunk) -> None:
        path = folder / first.path
        if not path.resolve().is_relative_to(folder.resolve()):
            raise ArtifactError(f"stored path {first.path!r} leaves the model folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.first = first
        self._out = path.open("wb")
        self._sha = hashlib.sha256()
        self._size = 0
        self._count = 0

    def write(self, chunk: StoredChunk) -> None:
        if chunk.seq is None:
            return  # an empty file has no chunk
        if hashlib.sha256(chunk.data).hexdigest() != chunk.sha256:
            raise ArtifactError(f"{chunk.path}: chunk {chunk.seq} fails its sha256")
        self._out.write(chunk.data)
        self._sha.update(chunk.data)
        self._size += len(chunk.data)
        self._count += 1

    def close(self) -> FileEntry:
        self._out.close()
        first, found = self.first, (self._size, self._count, self._sha.hexdigest())
        if found != (first.blob_size, first.blob_chunks, first.blob_sha256):
            raise ArtifactError(
                f"{first.path}: stored as {first.blob_size} bytes in {first.blob_chunks} chunks"
                f" with sha256 {first.blob_sha256[:12]}..., read back {found[0]} bytes in"
                f" {found[1]} chunks with sha256 {found[2][:12]}...: the upload is corrupt"
            )
        return FileEntry(first.path, self._size, first.blob_sha256)

    def abandon(self) -> None:
        self._out.close()


def _write_verified(chunks: Iterable[StoredChunk], folder: Path) -> list[FileEntry]:
    entries: list[FileEntry] = []
    current: _OpenFile | None = None
    try:
        for chunk in chunks:
            if current is None or chunk.path != current.first.path:
                if current is not None:
                    entries.append(current.close())
                current = _OpenFile(folder, chunk)
            current.write(chunk)
        if current is not None:
            entries.append(current.close())
            current = None
    finally:
        if current is not None:
            current.abandon()
    return entries


def _path(entry: FileEntry) -> str:
    return entry.path
