"""Timing and memory of the data-quality report over the tables of a finished run.

    .venv/bin/python benchmarks/quality.py [--data var/bench/pipeline-1000/data] [--repeat 3]

Reads the harmonised tables of a run (``<data>/tables/*.parquet``, as
``benchmarks/pipeline.py`` leaves them) and the Great Expectations results it saved
(``<data>/quality/validations.json``), and builds the report's content
(:func:`expectations.quality.build_quality_report`) in a fresh process per run, as the
release does: the tables as DuckDB views with the default ``warehouse`` limits, once
with the schema checks the run saved beside the tables and once checking the tables
here. Prints the median seconds and the largest peak RSS of each. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from assets.warehouse import quote  # noqa: E402
from benchmarks.child import run_child  # noqa: E402

MODES = ("saved checks", "checked here")


def child(data: Path, mode: str) -> None:
    from assets.harmonise.reuse import saved_schema_checks
    from assets.harmonise.store import tables_dir
    from assets.metrics.stage import PUBLISHED_TABLES
    from assets.settings import load_settings
    from assets.warehouse import attach_tables, connection
    from expectations.quality import build_quality_report
    from expectations.store import load_validations, quality_work_dir

    settings = load_settings()
    folder = tables_dir(data)
    with connection(settings) as con:
        attach_tables(con, folder, PUBLISHED_TABLES, row_numbers=True)
        rows = {table: range(_count(con, table)) for table in PUBLISHED_TABLES}
        validations = load_validations(quality_work_dir(data), rows)
        if validations is None:
            raise SystemExit(f"no Great Expectations results for these tables in {data}")
        checks = saved_schema_checks(folder) if mode == MODES[0] else None
        if mode == MODES[0] and checks is None:
            raise SystemExit(f"no saved schema checks beside the tables in {folder}")
        began = time.perf_counter()
        report = build_quality_report(
            con,
            PUBLISHED_TABLES,
            validations=validations,
            as_of=dt.date.today(),
            generated_at=dt.datetime.now(dt.UTC),
            freshness=settings.quality.freshness,
            forward_years=settings.quality.forward_years,
            schema_checks=checks,
        )
        seconds = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_kb / 1024,
                "rows": sum(len(r) for r in rows.values()),
                "files": len(report["files"]),
                "contributors": len(report["contributors"]),
            }
        )
    )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    found = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()
    return int(found[0]) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "var/bench/pipeline-1000/data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.child)
        return
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            runs[mode].append(run_child(__file__, ["--data", str(args.data), "--child", mode]))
    first = runs[MODES[0]][0]
    print(
        f"quality report over {args.data}: {first['rows']:,} rows, {first['files']:,} input "
        f"files, {first['contributors']:,} contributors (median of {args.repeat})"
    )
    for mode, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = max(r["peak_rss_mb"] for r in results)
        print(f"  {mode:<14} {seconds:7.2f} s   peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
