"""Harmonising in several processes gives exactly what one process gives.

The command line's pool (``cdcompact iati harmonise --workers 2``) on the real
fixtures, and the nightly job's pool of dataset runs on a persistent Dagster
instance (SQLite under a temporary DAGSTER_HOME), each recorded as its own
partition run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.nightly import run_nightly
from tests.conftest import CODELISTS, IATI_FIXTURES, PROJECT_ROOT, RATES

TABLES = ("activities", "transactions", "budgets", "quarantine", "sources", "alignment_metrics")


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(folder / f"{t}.parquet") for t in TABLES}


def _same(one: dict[str, pd.DataFrame], two: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        a, b = one[table], two[table]
        if table == "sources":  # fetched_at / uri differ between runs; the outcome must not
            a = a.drop(columns=["fetched_at", "uri"])
            b = b.drop(columns=["fetched_at", "uri"])
        pd.testing.assert_frame_equal(a, b, obj=table)


def test_the_cli_pool_gives_the_single_process_result(tmp_path: Path) -> None:
    inputs = [str(IATI_FIXTURES / "valid"), str(IATI_FIXTURES / "legacy")]
    common = ["--codelists", str(CODELISTS), "--rates", str(RATES / "imf-monthly-subset.csv")]
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        arguments = ["--out", str(out), "--quiet", "--workers", workers, *common]
        code = main(["iati", "harmonise", *inputs, *arguments])
        assert code == 0
    one, two = _frames(tmp_path / "w1"), _frames(tmp_path / "w2")
    _same(one, two)
    assert len(one["activities"]) == 1434
    assert len(one["sources"]) == 13


def test_the_cli_refuses_zero_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "iati",
            "harmonise",
            str(IATI_FIXTURES / "valid"),
            "--out",
            str(tmp_path),
            "--workers",
            "0",
        ]
    )
    assert code == 2
    assert "--workers must be 1 or more, not 0" in capsys.readouterr().err


def _nightly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, workers: int) -> Path:
    home = tmp_path / name / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / name / "data"))
    monkeypatch.setenv("CDCOMPACT_PUBLISH_DIR", str(tmp_path / name / "publish"))
    monkeypatch.setenv("CDCOMPACT_WORKERS", str(workers))
    assert run_nightly() == 0
    return home


def test_the_nightly_pool_records_each_dataset_run_and_matches_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _nightly(tmp_path, monkeypatch, "parallel", 2)
    output = capsys.readouterr().out
    runs_shown = re.search(r"extracting 4 datasets in (\d) runs, in 2 processes", output)
    assert runs_shown is not None
    assert re.search(r"stages: fetch [\d.]+ s · datasets [\d.]+ s · submissions", output)
    timings = json.loads((tmp_path / "parallel" / "data" / "timings.json").read_text())
    assert [stage for stage in timings if not stage.startswith("release: ")] == [
        "combine",
        "metrics",
        "write",
        "schema checks",
        "great expectations",
        "release",
    ]
    assert {stage for stage in timings if stage.startswith("release: ")} == {
        f"release: {part}"
        for part in (
            "data files",
            "checksums",
            "changelog",
            "verification",
            "quality report",
            "profile pages",
            "index/catalogue",
            "storing",
        )
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="iati_extract_job"))
        # the four datasets shared out by size into runs over ranges of dataset partitions
        assert len(runs) == int(runs_shown.group(1)) >= 2
        ranged = [r for r in runs if "dagster/asset_partition_range_start" in r.tags]
        assert len(ranged) + sum(1 for r in runs if "dagster/partition" in r.tags) == len(runs)
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        materialized = instance.get_materialized_partitions(dg.AssetKey("iati_extract"))
        assert len(materialized) == 4

    _nightly(tmp_path, monkeypatch, "sequential", 1)
    assert "extracting 4 datasets in 1 runs, in this process" in capsys.readouterr().out
    _same(
        _frames(tmp_path / "parallel" / "data" / "tables"),
        _frames(tmp_path / "sequential" / "data" / "tables"),
    )


def _kill_first_worker(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first pool worker (a spawned child of this process) that appears."""
    me = os.getpid()
    while not stop.is_set() and not killed:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = re.search(r"^PPid:\s+(\d+)", status, re.M)
            if parent and int(parent.group(1)) == me and b"spawn_main" in cmdline:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
                return
        time.sleep(0.01)


def test_a_killed_worker_does_not_cost_the_night(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stop, killed = threading.Event(), list[int]()
    watcher = threading.Thread(target=_kill_first_worker, args=(stop, killed), daemon=True)
    watcher.start()
    try:
        home = _nightly(tmp_path, monkeypatch, "killed", 2)
    finally:
        stop.set()
        watcher.join()
    assert len(killed) == 1
    captured = capsys.readouterr()
    assert re.search(
        r"a worker process stopped abruptly; [1-4] unfinished extraction runs run again",
        captured.err,
    )
    assert "run FAILED" not in captured.out
    with dg.DagsterInstance.from_config(str(home)) as instance:
        materialized = instance.get_materialized_partitions(dg.AssetKey("iati_extract"))
        assert sorted(materialized) == [
            "fr-demo-3003",
            "gb-demo-2002",
            "se-demo-4004",
            "xm-demo-1001",
        ]
    _nightly(tmp_path, monkeypatch, "sequential", 1)
    _same(
        _frames(tmp_path / "killed" / "data" / "tables"),
        _frames(tmp_path / "sequential" / "data" / "tables"),
    )
