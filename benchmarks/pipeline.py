"""The whole nightly job on corpora of two sizes: each stage's seconds, throughput, the
peak RSS of every process, a night with no change, a night where only the
exchange rates gained a month and one where every rate was revised.

    .venv/bin/python benchmarks/pipeline.py --sizes 1000 10000

For each size (MB) it builds the corpus (``benchmarks/corpus.py``, reused),
writes a configuration that reads it as a local IATI source with the shared
fixtures' codelists, exchange rates (the IMF CSV copied beside the run, so the
benchmark can change it) and IATI schemas, and runs ``cdcompact run`` four
times in a fresh process on a fresh SQLite instance (or, with ``--postgres``, a
fresh PostgreSQL database):

1. a full night (every file extracted, transformed, checked, released);
2. a night where no source changed;
3. a night where only the exchange rates gained a month: every currency of the
   IMF CSV gains the month after its last one (no file is extracted again; the
   money is converted again, and where no figure moves, as with this corpus's
   dates, the tables and checks of the last night stand);
4. a night where every rate was revised (each 1% higher): every value not in US
   dollars moves, so the metrics, the checks of the batches that changed and the
   release of the tables that changed run again.

It prints the seconds of each stage (fetch, dataset runs, submissions, then
inside the combining step: combine, metrics, write, schema checks, Great
Expectations, or reuse on a night with no change; then the release and its
parts) for the three nights side by side, the whole night's MB/s, the peak RSS
of every process of the night (sampled from ``/proc``: the main process and
each kind of child, e.g. the extraction workers), each night's share of the
full night, and the growth of each stage between the two sizes (the stages
after extraction should grow about as the input does). Not a test.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import FIXTURES, build_corpus  # noqa: E402

WORK = ROOT / "var" / "bench"
RATES = "imf-monthly-subset.csv"
_STAGES = re.compile(r"^cdcompact: stages: (.*)$", re.MULTILINE)
NIGHTS = ("full", "no change", "rates only", "rates revised")


def write_config(corpus: Path, folder: Path) -> Path:
    config = yaml.safe_load((ROOT / "config" / "compact.yaml").read_text())
    config["iati"]["sources"] = [{"name": "bench", "kind": "local", "paths": [str(corpus)]}]
    shared = FIXTURES.parent
    rates = folder / RATES
    shutil.copy(shared / "exchange-rates" / RATES, rates)
    config["reference"]["codelists"] = str(shared / "codelists")
    config["reference"]["exchange_rates"] = [
        str(rates),
        str(shared / "exchange-rates" / "monthly-average-sdr-per-unit.json"),
    ]
    config["reference"]["iati_schemas"] = str(shared / "iati-schemas")
    path = folder / "compact.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def add_a_month(rates: Path) -> int:
    """Every currency of an IMF monthly CSV gains the month after its last one (its last
    rate again): the rates change, no IATI file does. The number of rows added."""
    with rates.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    last: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["Currency"] not in last or row["Date"] > last[row["Currency"]]["Date"]:
            last[row["Currency"]] = row
    added = []
    for row in last.values():
        day = dt.date.fromisoformat(row["Date"])
        following = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        end = (following + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        added.append({**row, "Date": end.isoformat()})
    with rates.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writerows(added)
    return len(added)


def revise_rates(rates: Path, factor: float = 1.01) -> int:
    """Every rate of an IMF CSV multiplied by ``factor`` (a revision of the whole series:
    every value converted from another currency moves). The number of rates revised."""
    with rates.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["Rate"] = repr(float(row["Rate"]) * factor)
    with rates.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


class ProcessTree(threading.Thread):
    """Samples the peak RSS (``VmHWM``) of a process and all its descendants from
    ``/proc`` until stopped: each process's own peak, whatever runs it."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def sample(self) -> None:
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
        stack = [self.root]  # the process tree, walked depth first
        while stack:
            pid = stack.pop()
            stack.extend(parents.get(pid, []))
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if found:
                self.peaks[pid] = max(self.peaks.get(pid, 0), int(found.group(1)))
                self.names.setdefault(pid, _kind(pid == self.root, command))

    def by_kind(self) -> dict[str, tuple[int, float]]:
        """For each kind of process: how many ran and the largest peak RSS (MB)."""
        kinds: dict[str, tuple[int, float]] = {}
        for pid, peak in self.peaks.items():
            count, largest = kinds.get(self.names[pid], (0, 0.0))
            kinds[self.names[pid]] = (count + 1, max(largest, peak / 1024))
        return kinds


def _kind(root: bool, command: bytes) -> str:
    if root:
        return "cdcompact run (main process)"
    text = command.replace(b"\0", b" ").decode(errors="replace")
    if "watch_orphans" in text or "poll_compute_logs" in text or text.startswith("tail "):
        return "Dagster compute-log tails"
    if "multiprocessing" in text or "pipelines.cli" in text:
        return "worker processes"
    return "other: " + text[:40]


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
    """``cdcompact run`` in a child process; its stage times and every process's peak RSS."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "CDCOMPACT_CONFIG": str(config),
        "CDCOMPACT_DATA_DIR": str(folder / "data"),
        "CDCOMPACT_PUBLISH_DIR": str(folder / "publish"),
        "CDCOMPACT_INBOX_DIR": str(folder / "inbox"),
    }
    began = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        tree = ProcessTree(process.pid)
        tree.start()
        stdout, stderr = process.communicate()
        tree.stop()
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"cdcompact run failed ({process.returncode}):\n{stderr[-3000:]}")
    stages: dict[str, float] = {}
    found = _STAGES.search(stdout)
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
        "processes": tree.by_kind(),
        "peak_rss_mb": max((mb for _, mb in tree.by_kind().values()), default=0.0),
    }


def after_extraction(run: dict[str, Any]) -> float:
    """Seconds of the stages after the extraction (tables, checks, release)."""
    return sum(
        v for name, v in run["stages"].items() if name not in ("submissions", "fetch", "extraction")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1000.0, 10000.0])
    parser.add_argument("--workers", type=int, default=0, help="run.workers (0 = one per CPU)")
    parser.add_argument(
        "--postgres",
        metavar="HOST:PORT:USER",
        help="Dagster storage on PostgreSQL (a fresh database per size; trust auth) "
        "instead of SQLite, e.g. 127.0.0.1:5432:postgres",
    )
    parser.add_argument(
        "--nights",
        nargs="+",
        choices=NIGHTS,
        default=list(NIGHTS),
        help="the nights to run, in this order (the full night always runs first)",
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
        nights: dict[str, dict[str, Any]] = {}
        for night in [n for n in NIGHTS if n == "full" or n in args.nights]:
            if night == "rates only":
                add_a_month(folder / RATES)
            if night == "rates revised":
                revise_rates(folder / RATES)
            nights[night] = run = run_once(folder, config)
            # as each night ends (a 10 GB night is long): its stages so far
            stages = " · ".join(f"{k} {v:.1f} s" for k, v in run["stages"].items())
            print(
                f"  {size:g} MB, {night} night: {run['seconds']:.1f} s ({stages}), "
                f"largest process {run['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
        results[size] = nights["full"]
        _report(len(corpus), megabytes, nights)
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
        print(f"  {'after extraction':<32} x{after_extraction(b) / after_extraction(a):>6.1f}")
        print(f"  {'whole night':<32} x{b['seconds'] / a['seconds']:>6.1f}")


def _report(files: int, megabytes: float, nights: dict[str, dict[str, Any]]) -> None:
    full = nights["full"]
    print(f"\ncorpus: {files} files, {megabytes:.1f} MB")
    print(f"  {'seconds':<32}" + "".join(f" {name:>11}" for name in nights))
    names = [*full["stages"]]
    for run in nights.values():
        names += [f"  {n}" for n in run["combining"] if f"  {n}" not in names]
    for name in names:
        cells = [
            run["stages"].get(name, run["combining"].get(name.strip())) for run in nights.values()
        ]
        print(f"  {name:<32}" + "".join(f" {'' if c is None else f'{c:.1f}':>11}" for c in cells))
    print(
        f"  {'whole night (process)':<32}"
        + "".join(f" {r['seconds']:>11.1f}" for r in nights.values())
    )
    print(
        f"  {'share of the full night':<32}"
        + "".join(f" {r['seconds'] / full['seconds']:>11.0%}" for r in nights.values())
    )
    print(f"  whole-night throughput: {megabytes / full['seconds']:.1f} MB/s")
    print("  peak RSS, MB (processes of that kind)")
    kinds: list[str] = []
    for run in nights.values():
        kinds += [k for k in run["processes"] if k not in kinds]
    for kind in kinds:
        cells = [run["processes"].get(kind) for run in nights.values()]
        shown = ["" if c is None else f"{c[1]:.0f} ({c[0]})" for c in cells]
        print(f"    {kind:<30}" + "".join(f" {c:>11}" for c in shown))


if __name__ == "__main__":
    main()
