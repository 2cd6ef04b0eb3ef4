"""The release stage alone, part by part: the pandas release against the DuckDB one, same run.

    .venv/bin/python benchmarks/release.py --tables var/bench/pipeline-1000/data/tables

It takes the harmonised tables of a finished pipeline run (``--tables``; the
Great Expectations results beside them, ``../quality/``, are reused when they
are there) and, for each scenario, first publishes a previous release of the
same tables with every 1000th row dropped or changed (in every table, in
``transactions`` only, or in none), so that the timed release has something to
compare with and, in the second scenario, unchanged tables to reuse; in the
third the data equals the previous release's (a night with no change; the
tables' digest record is not there yet). Then it runs
``publish_tables`` (what ``cdcompact publish`` and the ``data_release`` asset
run) once with the code of ``--old`` (default: commit 7ca04e4, the last pandas
release, exported with ``git archive``) and once with this checkout's, each in
a fresh process on a fresh copy of the tables and of the previous release.

Printed per part: seconds (exclusive of the parts it calls) and the peak RSS
sampled while it ran, old and new side by side; the whole release's seconds
and peak RSS; the ratio. Parts: reading tables into pandas, data files,
checksums, changelog, verification, quality report, profile pages,
index/catalogue, storing (the DuckDB release's data files and checksums are
split by its own timings), other. Not a test; the machine's other work shows
in the figures, so compare old and new within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline import write_config  # noqa: E402

WORK = ROOT / "var" / "bench" / "release"
#: Which tables the previous release had different (None: all of them).
SCENARIOS: dict[str, list[str] | None] = {
    "every table changed": None,
    "one table changed": ["transactions"],
    "nothing changed": [],
}
PARTS = [
    "reading tables into pandas",
    "data files",
    "checksums",
    "data files and checksums",
    "changelog",
    "verification",
    "quality report",
    "profile pages",
    "index/catalogue",
    "storing",
    "other",
]


def old_code(revision: str) -> Path:
    """The project as it was at ``revision`` (exported once)."""
    folder = WORK / f"code-{revision}"
    if not (folder / "publish" / "release.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", revision],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def working_copy() -> Path:
    """This checkout's files as they are now (tracked, and new ones git does not ignore), so
    that editing the code while the benchmark runs changes nothing."""
    folder = WORK / "code-working"
    shutil.rmtree(folder, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


def child(code: Path, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "release_child.py"), str(code), *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({code}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def data_folder(tables: Path, folder: Path) -> Path:
    """A data folder holding a copy of the tables (no digest record) and their GX results."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "tables").mkdir(parents=True)
    for path in tables.glob("*.parquet"):
        shutil.copyfile(path, folder / "tables" / path.name)
    quality = tables.parent / "quality"
    if quality.is_dir():
        shutil.copytree(quality, folder / "quality")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--tables", type=Path, default=ROOT / "var" / "bench" / "pipeline-1000" / "data" / "tables"
    )
    parser.add_argument("--old", default="7ca04e4", help="the commit whose release is 'old'")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    args = parser.parse_args()
    tables = args.tables.resolve()
    if not (tables / "transactions.parquet").exists():
        raise SystemExit(f"no tables in {tables}: run benchmarks/pipeline.py --sizes 1000 first")
    WORK.mkdir(parents=True, exist_ok=True)
    codes = {"old": old_code(args.old), "new": working_copy()}
    config = write_config(tables, WORK)
    rows = sum(1 for _ in tables.glob("*.parquet"))
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M} release benchmark, {os.cpu_count()} CPUs")
    print(f"tables: {tables} ({rows} files); old = {args.old}, new = this checkout")
    for scenario in args.scenarios:
        folder = WORK / scenario.replace(" ", "-")
        shutil.rmtree(folder, ignore_errors=True)
        names = SCENARIOS[scenario]
        if names is None:
            names = sorted(p.stem for p in tables.glob("*.parquet"))
        new = codes["new"]
        child(new, ["perturb", str(tables), str(folder / "previous" / "tables"), *names], {})
        base = folder / "publish-base"
        env = {"CDCOMPACT_CONFIG": str(config), "CDCOMPACT_PUBLISH_DIR": str(base)}
        child(new, ["previous"], {**env, "CDCOMPACT_DATA_DIR": str(folder / "previous")})
        results = {}
        for name, code in codes.items():
            publish = folder / f"publish-{name}"
            shutil.copytree(base, publish)
            data = data_folder(tables, folder / f"data-{name}")
            env = {
                "CDCOMPACT_CONFIG": str(config),
                "CDCOMPACT_PUBLISH_DIR": str(publish),
                "CDCOMPACT_DATA_DIR": str(data),
            }
            results[name] = child(code, ["publish"], env)
        show(scenario, results)


def show(scenario: str, results: dict[str, dict[str, Any]]) -> None:
    old, new = results["old"], results["new"]
    for result in (old, new):
        timings = result.get("timings") or {}
        if "data files and checksums" in result["parts"] and timings:
            # the DuckDB release's own split of its data-file and checksum time
            total = result["parts"].pop("data files and checksums")
            rendered = timings.get("data files", 0.0)
            result["parts"]["data files"] = rendered
            result["parts"]["checksums"] = max(total - rendered, 0.0)
            peak = result["peak_mb"].pop("data files and checksums", 0.0)
            result["peak_mb"]["data files"] = result["peak_mb"]["checksums"] = peak
    print(f"\n{scenario}: status old {old['status']}, new {new['status']}")
    print(f"  {'part':<28} {'old s':>8} {'new s':>8} {'old MB':>8} {'new MB':>8}")
    for part in PARTS:
        cells = [r["parts"].get(part) for r in (old, new)]
        peaks = [r["peak_mb"].get(part) for r in (old, new)]
        if all(c is None for c in cells):
            continue
        shown = ["" if c is None else f"{c:.1f}" for c in cells]
        mb = ["" if p is None else f"{p:.0f}" for p in peaks]
        print(f"  {part:<28} {shown[0]:>8} {shown[1]:>8} {mb[0]:>8} {mb[1]:>8}")
    print(
        f"  {'(RSS before the release)':<28} {'':>8} {'':>8} "
        f"{old['baseline_mb']:>8.0f} {new['baseline_mb']:>8.0f}"
    )
    print(
        f"  {'whole release':<28} {old['seconds']:>8.1f} {new['seconds']:>8.1f} "
        f"{old['peak_rss_mb']:>8.0f} {new['peak_rss_mb']:>8.0f}"
        f"  (new: {new['seconds'] / old['seconds']:.0%} of the time, "
        f"{new['peak_rss_mb'] / old['peak_rss_mb']:.0%} of the memory)"
    )


if __name__ == "__main__":
    main()
