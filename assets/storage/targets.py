"""Where releases are published: a local folder (default) or S3 (boto3).

A target stores bytes under ``/``-separated keys relative to its root
(``catalog.json``, ``releases/2026.11.28/data/activities.csv``). Each single
write is atomic: a reader sees the old object or the new one, never half of
it. Release-level atomicity (nothing visible until the catalogue points to
it) is built on top of this by :mod:`publish.release`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from assets.hashing import CHUNK_BYTES

#: Content types of published files, by suffix ("" = anything else).
CONTENT_TYPES = {
    ".csv": "text/csv; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".jsonld": "application/ld+json",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    "": "text/plain; charset=utf-8",
}


def content_type(key: str) -> str:
    """The content type a published object gets, from its key's suffix."""
    return CONTENT_TYPES.get(Path(key).suffix, CONTENT_TYPES[""])


class TargetError(RuntimeError):
    """A publishing target cannot be read or written; the message names it and the key."""


def check_key(key: str) -> str:
    """Refuse keys that could escape the target's root (``..``, absolute, backslashes)."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in {"", ".", ".."} for p in parts):
        raise TargetError(f"refusing unsafe key {key!r}")
    return key


class Target(ABC):
    """A place to publish to: keys are relative, ``/``-separated paths."""

    #: Shown in messages and metadata: the folder or ``s3://bucket/prefix``.
    location: str

    @abstractmethod
    def read_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store the object (atomically replacing any previous one)."""

    @abstractmethod
    def write_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Store a local file's bytes as the object (atomically, without holding them all)."""

    @abstractmethod
    def copy(self, source: str, key: str, content_type: str | None = None) -> None:
        """Store a copy of the object ``source`` as ``key`` (within the target, atomically)."""

    @abstractmethod
    def fetch(self, key: str, scratch: Path) -> Path | None:
        """A local file holding the object's bytes (the object itself on a local target, else
        a copy streamed into the folder ``scratch``); None when there is no such object."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix``, in no particular order."""

    def list_versions(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        """``(key, version)`` of every object under ``prefix``, without reading any: the
        version changes whenever the object's bytes may have (empty: unknown, so always
        read again). Targets that can tell override this."""
        for key in self.list_keys(prefix):
            yield key, ""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    def url(self, key: str) -> str:
        """Where a reader finds the object (used in the catalogue and DCAT)."""
        return f"{self.location.rstrip('/')}/{key}"

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list_keys(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)


class LocalTarget(Target):
    """A folder on disk; writes go to a temporary file renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TargetError(f"{self.location}: cannot read {key}: {exc.strerror}") from exc

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._store(key, lambda stream: stream.write(data))

    def write_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        self._store(key, _copier(path))

    def copy(self, source: str, key: str, content_type: str | None = None) -> None:
        self._store(key, _copier(self._path(source)))

    def fetch(self, key: str, scratch: Path) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def _store(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        """Write the object through a hidden temporary file renamed into place."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as stream:
                    write(stream)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TargetError(f"{self.location}: cannot write {key}: {exc.strerror}") from exc

    def delete_prefix(self, prefix: str) -> int:
        """Remove the keys under ``prefix`` and any temporary file a killed write left
        there (hidden, never listed); the count is of keys."""
        removed = super().delete_prefix(prefix)
        base = self.root / check_key(prefix.rstrip("/")) if prefix.strip("/") else None
        if base is not None and base.is_dir():
            for leftover in base.rglob(".*"):
                if leftover.is_file():
                    leftover.unlink(missing_ok=True)
        return removed

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def list_versions(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        """A file's version: its size and modification time in nanoseconds."""
        for key in self.list_keys(prefix):
            try:
                stat = (self.root / key).stat()
            except OSError:  # removed while listed
                continue
            yield key, f"{stat.st_size}:{stat.st_mtime_ns}"

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return (self.root / key).as_uri()


def _copier(path: Path) -> Callable[[BinaryIO], None]:
    """What writes a file's bytes into a stream, a chunk at a time."""

    def copy(stream: BinaryIO) -> None:
        with path.open("rb") as source:
            shutil.copyfileobj(source, stream, CHUNK_BYTES)

    return copy
