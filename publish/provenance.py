"""Provenance of a run: the code version and the reference inputs with their hashes."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from assets.settings import Settings


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """One hash over every file of a folder: relative path and content, in sorted order."""
    lines = [
        f"{path.relative_to(folder).as_posix()} {file_sha256(path)}"
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def code_version(root: Path) -> str:
    """``cdcompact <version>`` plus the git commit when run from a checkout."""
    try:
        version = metadata.version("cdcompact")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"cdcompact {version}" + (f" ({commit})" if commit else "")


def reference_inputs(settings: Settings) -> list[dict[str, Any]]:
    """The reference data a run read, each with a sha256 of its bytes."""
    inputs: list[dict[str, Any]] = [
        {"name": "exchange rates", "path": _shown(settings, path), "sha256": file_sha256(path)}
        for path in settings.exchange_rate_files
        if path.is_file()
    ]
    if settings.codelists_dir and settings.codelists_dir.is_dir():
        inputs.append(
            {
                "name": "IATI codelists",
                "path": _shown(settings, settings.codelists_dir),
                "sha256": folder_sha256(settings.codelists_dir),
            }
        )
    return inputs


def _shown(settings: Settings, path: Path) -> str:
    try:
        return path.relative_to(settings.root).as_posix()
    except ValueError:
        return path.name
