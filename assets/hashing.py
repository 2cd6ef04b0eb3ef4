"""The one way files are hashed: sha256 read in chunks, so any size stays cheap in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 hex digest of a file and its size in bytes."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file."""
    return file_digest(path)[0]


def sha256_hex(data: bytes) -> str:
    """The sha256 hex digest of bytes held in memory."""
    return hashlib.sha256(data).hexdigest()
