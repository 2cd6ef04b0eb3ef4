"""A benchmark corpus of IATI activity files, built from the shared real fixtures.

    .venv/bin/python benchmarks/corpus.py --size-mb 100 --out var/bench/corpus-100

Every file of ``fixtures/iati/valid`` and ``fixtures/iati/legacy`` (1.01 to
2.03, 13 real publishers' files) is copied round-robin until the corpus holds
the requested number of megabytes. Each copy gets unique activity identifiers:
every identifier of the file (``<iati-identifier>``) is suffixed with
``-c<copy>`` wherever it occurs in an element's text or an attribute (so
``provider-activity-id``, ``related-activity/@ref`` and transaction refs stay
consistent within the copy). The corpus is many files, like IATI itself (one
file per dataset), so parallel runs have something to share out. It is never
committed: anyone rebuilds it from the fixtures with this script; a
``corpus.json`` beside the files records what was built, and a corpus that
already matches is reused.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

FIXTURES = Path("/work/shared/fixtures/iati")
SOURCES = ("valid", "legacy")
_IDENTIFIER = re.compile(rb"<iati-identifier>\s*([^<]+?)\s*</iati-identifier>")
MANIFEST = "corpus.json"


def fixture_files(root: Path = FIXTURES) -> list[Path]:
    return sorted(p for folder in SOURCES for p in (root / folder).glob("*.xml"))


def unique_copy(data: bytes, copy: int) -> bytes:
    """The file's bytes with every activity identifier suffixed ``-c<copy>``."""
    identifiers = sorted(set(_IDENTIFIER.findall(data)), key=len, reverse=True)
    if not identifiers:
        return data
    pattern = re.compile(
        rb'(?<=[>"\'])\s*(' + b"|".join(re.escape(i) for i in identifiers) + rb')\s*(?=[<"\'])'
    )
    suffix = f"-c{copy:05d}".encode()
    return pattern.sub(lambda m: m.group(1) + suffix, data)


def build_corpus(size_mb: float, out: Path, root: Path = FIXTURES) -> list[Path]:
    """Files in ``out`` adding up to at least ``size_mb`` MB (10^6 bytes)."""
    sources = fixture_files(root)
    if not sources:
        raise SystemExit(f"no fixture files under {root}/{{{','.join(SOURCES)}}}")
    wanted = int(size_mb * 1_000_000)
    manifest = out / MANIFEST
    if manifest.exists():
        built = json.loads(manifest.read_text())
        if built.get("size_bytes_wanted") == wanted:
            return [out / name for name in built["files"]]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    contents = [p.read_bytes() for p in sources]
    files: list[str] = []
    total = 0
    copy = 0
    while total < wanted:
        for path, data in zip(sources, contents, strict=True):
            if total >= wanted:
                break
            name = f"{path.stem}-c{copy:05d}.xml"
            body = unique_copy(data, copy)
            (out / name).write_bytes(body)
            files.append(name)
            total += len(body)
        copy += 1
    manifest.write_text(
        json.dumps(
            {
                "size_bytes_wanted": wanted,
                "size_bytes": total,
                "copies": copy,
                "sources": [str(p) for p in sources],
                "files": files,
            },
            indent=1,
        )
    )
    return [out / name for name in files]


def corpus_files(out: Path) -> list[Path]:
    """The files of a corpus :func:`build_corpus` built."""
    built = json.loads((out / MANIFEST).read_text())
    return [out / name for name in built["files"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = build_corpus(args.size_mb, args.out)
    size = sum(p.stat().st_size for p in files)
    print(f"{len(files)} files, {size / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
