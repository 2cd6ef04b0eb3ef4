"""Provenance of a run: the code version and the reference inputs with their hashes."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from assets.hashing import file_sha256
from assets.settings import Settings


def folder_sha256(folder: Path) -> str:
    """One hash over every file of a folder: relative path and content, in sorted order."""
    lines = [
        f"{path.relative_to(folder).as_posix()} {file_sha256(path)}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
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
    """The reference data a run read, each with a sha256 of its bytes (fetched copies too)."""
    cache = settings.data_dir / "reference" / "cache"
    rate_files = [*settings.exchange_rate_files, *sorted(cache.glob("exchange-rates-*.csv"))]
    inputs: list[dict[str, Any]] = [
        {"name": "exchange rates", "path": _shown(settings, path), "sha256": file_sha256(path)}
        for path in rate_files
        if path.is_file()
    ]
    codelists = settings.codelists_dir if settings.codelists_url is None else cache / "codelists"
    if codelists and codelists.is_dir():
        inputs.append(
            {
                "name": "IATI codelists",
                "path": settings.codelists_url or _shown(settings, codelists),
                "sha256": folder_sha256(codelists),
            }
        )
    return inputs


def _shown(settings: Settings, path: Path) -> str:
    try:
        return path.relative_to(settings.root).as_posix()
    except ValueError:
        return path.name
