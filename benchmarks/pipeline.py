"""The whole nightly job on corpora of two sizes: the time of each stage, and a run with no change.

    .venv/bin/python benchmarks/pipeline.py --sizes 100 1000

For each size (MB) it builds the corpus (``benchmarks/corpus.py``, reused),
writes a configuration that reads it as a local IATI source with the shared
fixtures' codelists, exchange rates and IATI schemas, and runs ``cdcompact
run`` twice in a fresh process on a fresh SQLite instance (or, with
``--postgres``, a fresh PostgreSQL database): a full run, then a run where no
source changed. It prints the seconds of each stage (fetch,
dataset runs, submissions, then inside the combining step: combine, metrics,
write, schema checks, Great Expectations; or reuse on a night with no change;
then the release and its parts: data files, checksums, changelog, quality
report, profile pages, index/catalogue, storing, verification; see
``benchmarks/release.py`` for the release alone, old code against new), for
both runs side by side, the peak RSS,
and the ratio between the two sizes per stage (2 sizes ten times apart: a
linear stage shows about 10). Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import FIXTURES, build_corpus  # noqa: E402

WORK = ROOT / "var" / "bench"
_STAGES = re.compile(r"^cdcompact: stages: (.*)$", re.MULTILINE)


def write_config(corpus: Path, folder: Path) -> Path:
    config = yaml.safe_load((ROOT / "config" / "compact.yaml").read_text())
    config["iati"]["sources"] = [{"name": "bench", "kind": "local", "paths": [str(corpus)]}]
    shared = FIXTURES.parent
    config["reference"]["codelists"] = str(shared / "codelists")
    config["reference"]["exchange_rates"] = [
        str(shared / "exchange-rates" / "imf-monthly-subset.csv"),
        str(shared / "exchange-rates" / "monthly-average-sdr-per-unit.json"),
    ]
    config["reference"]["iati_schemas"] = str(shared / "iati-schemas")
    path = folder / "compact.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def fresh_database(server: str, size: float) -> dict[str, Any]:
    """An empty PostgreSQL database for one size's Dagster instance (dropped first)."""
    import psycopg2

    host, port, user = server.split(":")
    name = f"cdcompact_bench_{size:g}".replace(".", "_")
    admin = psycopg2.connect(host=host, port=int(port), user=user, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return {"hostname": host, "port": int(port), "username": user, "password": "", "db_name": name}


def run_once(folder: Path, config: Path) -> dict[str, Any]:
    """``cdcompact run`` in a child process; its stage times and peak RSS."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "CDCOMPACT_CONFIG": str(config),
        "CDCOMPACT_DATA_DIR": str(folder / "data"),
        "CDCOMPACT_PUBLISH_DIR": str(folder / "publish"),
        "CDCOMPACT_INBOX_DIR": str(folder / "inbox"),
    }
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"cdcompact run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    stages: dict[str, float] = {}
    found = _STAGES.search(done.stdout)
    if found:
        for part in found.group(1).split(" · "):
            name, value, _ = part.rsplit(" ", 2)
            stages[name] = float(value)
    timings = folder / "data" / "timings.json"
    inner = json.loads(timings.read_text()) if timings.exists() else {}
    return {
        "seconds": seconds,
        "stages": stages,
        "combining": inner,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--workers", type=int, default=0, help="run.workers (0 = one per CPU)")
    parser.add_argument(
        "--postgres",
        metavar="HOST:PORT:USER",
        help="Dagster storage on PostgreSQL (a fresh database per size; trust auth) "
        "instead of SQLite, e.g. 127.0.0.1:5432:postgres",
    )
    args = parser.parse_args()
    os.environ["CDCOMPACT_WORKERS"] = str(args.workers)
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M} whole-pipeline benchmark, {os.cpu_count()} CPUs")
    results: dict[float, dict[str, Any]] = {}
    for size in args.sizes:
        corpus = build_corpus(size, WORK / f"corpus-{size:g}")
        megabytes = sum(p.stat().st_size for p in corpus) / 1e6
        folder = WORK / f"pipeline-{size:g}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "dagster_home").mkdir()
        instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())
        if args.postgres:
            instance["storage"] = {"postgres": {"postgres_db": fresh_database(args.postgres, size)}}
        (folder / "dagster_home" / "dagster.yaml").write_text(yaml.safe_dump(instance))
        config = write_config(WORK / f"corpus-{size:g}", folder)
        full = run_once(folder, config)
        again = run_once(folder, config)
        results[size] = full
        print(f"\ncorpus: {len(corpus)} files, {megabytes:.1f} MB")
        print(f"  {'seconds':<32} {'full run':>9} {'no change':>10}")
        names = [*full["stages"], *(f"  {n}" for n in {**full["combining"], **again["combining"]})]
        for name in names:
            cells = [
                run["stages"].get(name, run["combining"].get(name.strip())) for run in (full, again)
            ]
            shown = ["" if c is None else f"{c:.1f}" for c in cells]
            print(f"  {name:<32} {shown[0]:>9} {shown[1]:>10}")
        share = again["seconds"] / full["seconds"]
        print(
            f"  {'whole run (process)':<32} {full['seconds']:>9.1f} {again['seconds']:>10.1f}"
            f"  (no change: {share:.0%} of the full run)"
        )
        print(f"  {'peak RSS (largest process), MB':<32} {full['peak_rss_mb']:>9.0f}")
    if len(results) >= 2:
        small, large = sorted(results)[0], sorted(results)[-1]
        print(f"\ngrowth from {small:g} MB to {large:g} MB (input x{large / small:g}):")
        a, b = results[small], results[large]
        names = [*a["stages"], *a["combining"]]
        for name in names:
            x = a["stages"].get(name, a["combining"].get(name))
            y = b["stages"].get(name, b["combining"].get(name))
            if x and y:
                print(f"  {name:<32} x{y / x:>6.1f}")
        print(f"  {'whole run':<32} x{b['seconds'] / a['seconds']:>6.1f}")


if __name__ == "__main__":
    main()
