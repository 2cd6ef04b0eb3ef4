"""Extraction, transform and ``cdcompact iati harmonise`` against bare lxml iterparse.

    taskset -c 0 .venv/bin/python benchmarks/harmonise.py --sizes 100 1000 --repeat 3

For each corpus size (MB, built by ``benchmarks/corpus.py`` under
``var/bench/`` from the shared fixtures when it is missing, reused when it
exists: the 1 GB one takes a few minutes to build) it measures, each in a fresh
process so that peak RSS is that mode's own, on the cores the benchmark is
pinned to (``taskset``: every child, and the command the ``harmonise`` mode
starts, inherits them; the header prints them):

* ``iterparse``: bare ``lxml.etree.iterparse`` over every file, clearing each
  element after its end event and dropping read siblings (the parser's own
  limit; one process);
* ``every value``: the least any harmoniser written in Python over lxml does:
  each activity parsed as the harmoniser parses it, then every element's name,
  text and attributes read once into a list, with no other work (one
  process). Its ratio to ``iterparse`` is the ceiling such a harmoniser can
  reach;
* ``extract``: what the pipeline's ``iati_extract`` asset does per dataset
  (``extract_file``: the values every IATI table needs, a Parquet file per
  table with rows), one process, no XML Schema pass;
* ``extract x2``: the same with 2 worker processes (the CLI's and the
  nightly job's process pool);
* ``+ conformance``: one process, extraction with the IATI XML Schema and
  codelist pass the pipeline also runs;
* ``transform``: the DuckDB transform of every extracted file of the corpus
  into the combined harmonised tables (narratives, shares, US dollars, CD
  classification, one activity per identifier), what ``iati_transform`` does
  before the metrics;
* ``harmonise``: ``cdcompact iati harmonise`` end to end over the corpus
  folder into a fresh output folder, run as a command (process start and
  imports included): extraction with the IATI XML Schema and codelist pass
  (``--workers`` = the cores the benchmark may use: one when pinned to one),
  the transform, the metrics and every published table written. It gets the
  reference data of ``+ conformance`` (``--rates`` both IMF files,
  ``--codelists``, ``--schemas`` from the shared fixtures) and keeps its
  DuckDB spill folder in the output folder (``CDCOMPACT_DATA_DIR``).

Printed per mode: median seconds of ``--repeat`` runs, median CPU seconds (user
and system, of the mode's processes: on a machine shared with other work,
about what the mode takes alone on one pinned core), MB/s, activities/s,
transactions/s, peak RSS (the largest process), the share of iterparse's
throughput (iterparse seconds ÷ the mode's) and the time ratio the performance
issue's targets name (the mode's seconds ÷ iterparse's: ≤ 2.5 for the
extractor, ≤ 4.0 for ``harmonise``), then a note (2 processes ÷ 1 for
``extract x2``). Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.child import run_child  # noqa: E402
from benchmarks.corpus import FIXTURES, build_corpus, corpus_files  # noqa: E402

WORK = ROOT / "var" / "bench"
MODES = (
    "iterparse",
    "every value",
    "extract",
    "extract x2",
    "+ conformance",
    "transform",
    "harmonise",
)

_OPTIONS: Any = None
#: What a mode's row says besides its figures.
NOTES = {
    "transform": "DuckDB, all files, not timed: extraction",
    "harmonise": "the command, end to end",
}


#: The reference data of every mode (the schemas only with the XML Schema pass).
RATE_FILES = tuple(
    FIXTURES.parent / "exchange-rates" / name
    for name in ("imf-monthly-subset.csv", "monthly-average-sdr-per-unit.json")
)
CODELISTS = FIXTURES.parent / "codelists"
SCHEMAS = FIXTURES.parent / "iati-schemas"


def _options(conformance: bool) -> Any:
    from assets.iati.codelists import load_codelists
    from assets.iati.conformance import IatiSchemas
    from assets.iati.harmonise import HarmoniseOptions
    from assets.iati.rates import load_exchange_rates
    from assets.settings import load_settings

    return HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates(list(RATE_FILES)),
        codelists=load_codelists(CODELISTS),
        schemas=IatiSchemas.from_dir(SCHEMAS) if conformance else None,
    )


def _init_worker(conformance: bool) -> None:
    global _OPTIONS
    _OPTIONS = _options(conformance)


def _extract_one(job: tuple[str, str]) -> tuple[int, int]:
    from assets.iati.harmonise import prepare_file

    path, out = Path(job[0]), Path(job[1])
    prepared = prepare_file(path, _OPTIONS, out, source_file=path.name, uri=path.name)
    return _counts(prepared.extract)


def _counts(folder: Path | None) -> tuple[int, int]:
    import pyarrow.parquet as pq

    if folder is None:
        return 0, 0
    rows = [  # a table without rows has no file
        pq.read_metadata(path).num_rows if path.exists() else 0
        for path in (folder / "activities.parquet", folder / "transactions.parquet")
    ]
    return rows[0], rows[1]


def _clock() -> tuple[float, float]:
    """Wall seconds, and the CPU seconds (user + system) of this process and of its
    children that have ended: on a machine shared with other work, the CPU seconds of a
    mode pinned to one core are what it would take alone."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


def _since(began: tuple[float, float]) -> tuple[float, float]:
    now = _clock()
    return now[0] - began[0], now[1] - began[1]


def _transform(files: list[Path], out: Path) -> tuple[tuple[float, float], int, int]:
    """Extract the corpus (not timed), then time the DuckDB transform of all of it."""
    from assets.harmonise import combine
    from assets.iati.harmonise import prepare_many, transform_connection
    from assets.iati.transform import iati_tables

    _init_worker(True)
    inputs = prepare_many([(p, p.name) for p in files], _OPTIONS, out)
    began = _clock()
    con = transform_connection(_OPTIONS)
    iati_tables(con, inputs, _OPTIONS.transform_options())
    combine.combine_tables(con)
    counts = [
        con.execute(f"SELECT count(*) FROM c_{table}").fetchone()
        for table in ("activities", "transactions")
    ]
    spent = _since(began)
    con.close()
    return spent, int(counts[0][0]), int(counts[1][0])  # type: ignore[index]


def _harmonise(corpus: Path, out: Path) -> tuple[int, int]:
    """``cdcompact iati harmonise`` over the corpus folder into ``out``, as a command."""
    script = Path(sys.executable).parent / "cdcompact"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]
    tables = out / "tables"
    arguments = ["iati", "harmonise", str(corpus), "--out", str(tables), "--quiet"]
    arguments += ["--workers", str(len(os.sched_getaffinity(0)))]
    arguments += [item for path in RATE_FILES for item in ("--rates", str(path))]
    arguments += ["--codelists", str(CODELISTS), "--schemas", str(SCHEMAS)]
    done = subprocess.run(
        [*command, *arguments],
        env={**os.environ, "CDCOMPACT_DATA_DIR": str(out / "data")},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"cdcompact iati harmonise exited {done.returncode}: {done.stderr}")
    return _counts(tables)


def _iterparse(files: list[Path]) -> tuple[int, int]:
    from lxml import etree

    activities = transactions = 0
    for path in files:
        for _, element in etree.iterparse(str(path), events=("end",)):
            tag = element.tag
            if tag == "iati-activity":
                activities += 1
            elif tag == "transaction":
                transactions += 1
            _drop_read(element)
    return activities, transactions


def _drop_read(element: Any) -> None:
    """Free an element that has been read, and every earlier sibling."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _every_value(files: list[Path]) -> tuple[int, int]:
    from lxml import etree

    from assets.iati.xml import SAFE_PARSE_OPTIONS

    values: list[tuple[Any, Any, Any]] = []
    keep = values.append
    activities = transactions = 0
    for path in files:
        for _, activity in etree.iterparse(
            str(path), events=("end",), tag="{*}iati-activity", **SAFE_PARSE_OPTIONS
        ):
            activities += 1
            for element in activity.iter():
                keep((element.tag, element.text, element.attrib.items()))
                if element.tag == "transaction":
                    transactions += 1
            _drop_read(activity)
        values.clear()
    return activities, transactions


def run_mode(mode: str, files: list[Path], corpus: Path | None = None) -> dict[str, Any]:
    """One mode over the corpus (``files``, in the folder ``corpus``), in this process (and
    its workers, or the command it starts)."""
    out = Path(tempfile.mkdtemp(prefix="cdcompact-bench-", dir=WORK))
    try:
        jobs = [(str(p), str(out)) for p in files]
        if mode == "iterparse":
            began = _clock()
            activities, transactions = _iterparse(files)
        elif mode == "every value":
            began = _clock()
            activities, transactions = _every_value(files)
        elif mode == "extract x2":
            began = _clock()
            spawn = multiprocessing.get_context("spawn")  # as prepare_many and the nightly pool
            with ProcessPoolExecutor(
                2, mp_context=spawn, initializer=_init_worker, initargs=(False,)
            ) as pool:
                counts = list(pool.map(_extract_one, jobs, chunksize=1))
            activities, transactions = map(sum, zip(*counts, strict=True))
        elif mode == "transform":
            spent, activities, transactions = _transform(files, out)
            now = _clock()
            began = (now[0] - spent[0], now[1] - spent[1])
        elif mode == "harmonise":
            assert corpus is not None
            began = _clock()
            activities, transactions = _harmonise(corpus, out)
        else:
            _init_worker(mode == "+ conformance")
            began = _clock()
            counts = [_extract_one(job) for job in jobs]
            activities, transactions = map(sum, zip(*counts, strict=True))
        seconds, cpu = _since(began)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "mode": mode,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "activities": activities,
        "transactions": transactions,
        "peak_rss_mb": max(own, children) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[100.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.one:
        files = corpus_files(args.corpus) if args.corpus else []
        print(json.dumps(run_mode(args.one, files, args.corpus)))
        return
    cores = sorted(os.sched_getaffinity(0))
    print(
        f"{dt.datetime.now():%Y-%m-%d %H:%M} harmonise benchmark, {os.cpu_count()} CPUs, "
        f"on core{'s' if len(cores) > 1 else ''} {','.join(map(str, cores))}, "
        f"median of {args.repeat} runs"
    )
    for size in args.sizes:
        corpus = WORK / f"corpus-{size:g}"
        files = build_corpus(size, corpus)
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        print(f"\ncorpus: {len(files)} files, {megabytes:.1f} MB ({corpus})")
        print(
            f"{'mode':<14} {'median s':>9} {'cpu s':>7} {'MB/s':>7} {'act/s':>8} {'tx/s':>9} "
            f"{'peak MB':>8} {'vs iterparse':>32}  note"
        )
        medians: dict[str, float] = {}
        for mode in args.modes:
            runs = [_child(mode, corpus) for _ in range(max(1, args.repeat))]
            seconds = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu_seconds"] for r in runs)
            medians[mode] = seconds
            r = runs[0]
            ratio = ""
            if "iterparse" in medians:
                base = medians["iterparse"]
                ratio = f"{base / seconds:.0%} of iterparse · time ratio {seconds / base:.2f}"
            note = NOTES.get(mode, "")
            if mode == "extract x2" and "extract" in medians:
                note = f"{medians['extract'] / seconds:.2f}x one process"
            print(
                f"{mode:<14} {seconds:>9.2f} {cpu:>7.2f} {megabytes / seconds:>7.1f} "
                f"{r['activities'] / seconds:>8,.0f} {r['transactions'] / seconds:>9,.0f} "
                f"{max(x['peak_rss_mb'] for x in runs):>8.0f} {ratio:>32}  {note}",
                flush=True,
            )


def _child(mode: str, corpus: Path) -> dict[str, Any]:
    return run_child(__file__, ["--one", mode, "--corpus", str(corpus)])


if __name__ == "__main__":
    main()
