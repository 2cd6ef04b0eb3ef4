"""Write ``requirements.lock``: every package of the environment pinned, with hashes.

    .venv/bin/python tools/lock.py

To change a dependency: edit ``pyproject.toml``, install the new release into
``.venv`` (``.venv/bin/pip install 'name==x.y'``; every ``dagster-*`` package
at the release matching ``dagster``), run the tests, then run this script. It
pins every distribution installed in the interpreter that runs it (except
``pip`` and the project itself) at its installed version, and lists after each
pin the sha256 of every file PyPI publishes for that release (all platforms'
wheels and the source archive), taken from PyPI's JSON simple index. ``make
venv`` installs with ``--require-hashes``: a file whose hash is not listed is
refused, whichever index or mirror it came from.

Needs the package registry (``--index`` to use another one that serves the
JSON simple API). Exits non-zero, writing nothing, when a pinned release has
no file on the index.
"""

from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import requests
from packaging.requirements import Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
INDEX = "https://pypi.org/simple"
SKIP = {"pip", "cdcompact"}
HEADER = """\
# Every package of the project's environment (runtime and development), pinned,
# with the sha256 of every file PyPI publishes for the release. Written by
# tools/lock.py from the packages installed in .venv; do not edit by hand.
# `make venv` installs it with --require-hashes.
"""
_HASH = re.compile(r"^[0-9a-f]{64}$")


def installed() -> dict[str, str]:
    """Canonical name → version of every distribution in this interpreter."""
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or canonicalize_name(name) in SKIP:
            continue
        pins[name] = dist.version
    return dict(sorted(pins.items(), key=lambda item: canonicalize_name(item[0])))


def project_requirements() -> list[Requirement]:
    """The project's own dependencies, development ones included."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        listed.extend(extra)
    return [Requirement(line) for line in listed]


def requested_extras(pins: dict[str, str]) -> dict[str, set[str]]:
    """Canonical name → the extras asked of it by the project or an installed package.

    ``--require-hashes`` refuses ``gql[requests]`` asked by a dependency unless
    the lock pins ``gql[requests]==...``: the extras are followed from the
    project's requirements through each package's own, as a resolver does.
    """
    installed_names = {canonicalize_name(name) for name in pins}
    extras: dict[str, set[str]] = {}
    queue: list[Requirement] = project_requirements()
    seen: set[tuple[str, str]] = set()
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name not in installed_names:
            continue
        asked = extras.setdefault(name, set())
        asked.update(requirement.extras)
        for extra in ["", *sorted(asked)]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in metadata.requires(name) or []:
                child = Requirement(line)
                environment: dict[str, Any] = {"extra": extra}
                if child.marker is None or child.marker.evaluate(environment):
                    queue.append(child)
    return {name: asked for name, asked in extras.items() if asked}


def _release_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def release_hashes(session: requests.Session, index: str, name: str, version: str) -> list[str]:
    """The sha256 of every file of ``name`` ``version`` on the index, sorted."""
    url = f"{index.rstrip('/')}/{canonicalize_name(name)}/"
    response = session.get(
        url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=60
    )
    response.raise_for_status()
    wanted = Version(version)
    hashes = {
        entry["hashes"]["sha256"]
        for entry in response.json().get("files", [])
        if _release_of(entry.get("filename", "")) == wanted
        and _HASH.match(entry.get("hashes", {}).get("sha256", ""))
    }
    return sorted(hashes)


def render(pins: dict[str, str], hashes: dict[str, list[str]], extras: dict[str, set[str]]) -> str:
    lines = [HEADER]
    for name, version in pins.items():
        asked = sorted(extras.get(canonicalize_name(name), ()))
        pinned = f"{name}[{','.join(asked)}]" if asked else name
        lines.append(
            f"{pinned}=={version}" + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes[name])
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", default=INDEX, help="a simple index with the JSON API")
    parser.add_argument("--out", type=Path, default=LOCK)
    args = parser.parse_args()
    pins = installed()
    with requests.Session() as session, ThreadPoolExecutor(8) as pool:
        found = dict(
            zip(
                pins,
                pool.map(lambda item: release_hashes(session, args.index, *item), pins.items()),
                strict=True,
            )
        )
    missing = [f"{name}=={pins[name]}" for name, got in found.items() if not got]
    if missing:
        print(f"no file on {args.index} for: {', '.join(missing)}", file=sys.stderr)
        return 1
    args.out.write_text(render(pins, found, requested_extras(pins)))
    print(f"{args.out.name}: {len(pins)} packages, {sum(map(len, found.values()))} hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
