"""Provenance of a run: the code version and the reference inputs with their hashes."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from assets.fetch.http import is_secret_name, strip_secrets
from assets.hashing import file_sha256
from assets.settings import Settings

#: Shortest secret value the release guard looks for: shorter ones ("testing") turn up
#: in any data by chance. Real keys and tokens are 20 characters or more.
MIN_SECRET_LENGTH = 12


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


def codelists_folder(settings: Settings) -> Path | None:
    """Where the codelists the run read are: the configured folder, or the fetched copy."""
    if settings.codelists_url is None:
        return settings.codelists_dir
    return settings.data_dir / "reference" / "cache" / "codelists"


def reference_inputs(settings: Settings) -> list[dict[str, Any]]:
    """The reference data a run read, each with a sha256 of its bytes (fetched copies too)."""
    cache = settings.data_dir / "reference" / "cache"
    rate_files = [*settings.exchange_rate_files, *sorted(cache.glob("exchange-rates-*.csv"))]
    inputs: list[dict[str, Any]] = [
        {"name": "exchange rates", "path": _shown(settings, path), "sha256": file_sha256(path)}
        for path in rate_files
        if path.is_file()
    ]
    codelists = codelists_folder(settings)
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
    return _local(path, settings.root)


def _local(path: Path, root: Path | None) -> str:
    """A local file as published: its path within ``root``, or its name alone."""
    for base in (root, root.resolve()) if root is not None else ():
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return path.name


def public_uri(uri: str | None, root: Path | None = None) -> str | None:
    """``uri`` as a release may show it: a local file as its path in the project (or its
    name alone), a URL without credentials or secret parameters; others as they are."""
    if not uri:
        return uri
    if uri.startswith("file:"):
        return _local(Path(unquote(urlsplit(uri).path)), root)
    if uri.startswith(("http://", "https://")):
        return strip_secrets(uri)
    return uri


def local_names(uri: str | None, root: Path | None = None) -> list[tuple[str, str]]:
    """How a text may name the local file of ``uri`` (its ``file:`` URI, its path, its
    folder) and what a release shows instead (:func:`public_uri`), longest first; nothing
    for a URI that is not a local file."""
    if not uri or not uri.startswith("file:"):
        return []
    path = Path(unquote(urlsplit(uri).path))
    shown = _local(path, root)
    names = [(uri, shown), (path.as_uri(), shown), (path.as_posix(), shown)]
    folder = path.parent
    if len(folder.parts) > 1:  # not the root folder itself
        inside = _local(folder, root) if _inside(folder, root) else ""
        prefix = f"{inside}/" if inside else ""
        names += [
            (folder.as_uri() + "/", prefix),
            (folder.as_posix() + "/", prefix),
            (folder.as_posix(), inside or folder.name),
        ]
    return sorted(set(names), key=lambda pair: (-len(pair[0]), pair))


def _inside(path: Path, root: Path | None) -> bool:
    return root is not None and any(path.is_relative_to(base) for base in (root, root.resolve()))


def public_text(text: str, names: Sequence[tuple[str, str]]) -> str:
    """``text`` (a reason, a message) with every local name of :func:`local_names` replaced
    by what a release shows instead."""
    for name, shown in names:
        if name in text:
            text = text.replace(name, shown)
    return text


def private_strings(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """What must never appear in a published file, each with how to name it in an error
    (never the value itself): this machine's folders (the local inputs' outside the project
    too) and name, and every environment value whose name says it is a secret (``*_KEY``,
    ``*TOKEN*``, ``*SECRET*``...)."""
    env = dict(os.environ if environ is None else environ)
    found: dict[str, str] = {
        str(settings.root.resolve()): "the project folder's path on this machine",
        str(settings.data_dir.resolve()): "the data folder's path on this machine",
    }
    for source in settings.iati_sources:  # local inputs outside the project
        for path in source.paths:
            folder = path if path.is_dir() else path.parent
            folder = folder.resolve()
            # a folder of a few letters ("/data") would match any text
            if len(folder.parts) > 2 and not _inside(folder, settings.root):
                found.setdefault(str(folder), "a local input folder's path on this machine")
    if env.get("DAGSTER_HOME"):
        found[str(Path(env["DAGSTER_HOME"]).resolve())] = "the Dagster folder's path (DAGSTER_HOME)"
    host = socket.gethostname()
    # Only a name no text would hold by chance ("vm" or "worker" would match any data).
    if len(host) >= 8 and any(c.isdigit() or c in "-." for c in host):
        found[host] = "this machine's host name"
    for name, value in sorted(env.items()):
        if is_secret_name(name) and len(value.strip()) >= MIN_SECRET_LENGTH:
            found[value.strip()] = f"the value of the environment variable {name}"
    return found
