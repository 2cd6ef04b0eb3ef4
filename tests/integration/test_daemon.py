"""The night as the schedule runs it: the Dagster daemon (run queue, sensors) and the run
launcher, each run in a process of its own, on an instance configured by dagster.yaml."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import PROJECT_ROOT

BIN = Path(sys.executable).parent
#: The demo night takes about 40 s of runs and up to 3 sensor intervals between them.
TIMEOUT = 300


@pytest.fixture
def daemon_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    for name, value in {
        "DAGSTER_HOME": str(home),
        "CDCOMPACT_DATA_DIR": str(tmp_path / "data"),
        "CDCOMPACT_PUBLISH_DIR": str(tmp_path / "publish"),
        "CDCOMPACT_INBOX_DIR": str(tmp_path / "inbox"),
        "CDCOMPACT_HOME": str(PROJECT_ROOT),
    }.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:  # the storage's tables exist before two
        instance.get_runs()  # processes (the daemon, the launch) open it at once
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("wb"),
        start_new_session=True,  # its code server and runs go with it
    )
    try:
        yield home
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def test_the_scheduled_chain_runs_a_night_through_the_daemon(
    daemon_home: Path, tmp_path: Path
) -> None:
    """The fetch run (launched as the schedule launches it) is carried on by the sensors:
    the extraction runs of the night, then its one tables run, all tagged with the night,
    queued by dagster.yaml's run coordinator; the release is published."""
    launch = ["job", "launch", "-m", "pipelines.definitions", "-j", "iati_fetch_job"]
    launched = subprocess.run(
        [str(BIN / "dagster"), *launch],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    deadline = time.monotonic() + TIMEOUT
    with dg.DagsterInstance.get() as instance:
        while True:
            runs = {run.job_name: run for run in instance.get_runs()}
            tables = runs.get("iati_tables_job")
            if tables is not None and tables.is_finished:
                break
            failed = [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE]
            assert not failed, [r.job_name for r in failed]
            if time.monotonic() > deadline:
                log = (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"no tables run finished in {TIMEOUT} s: {sorted(runs)}\n{log}")
            time.sleep(2)
        all_runs = instance.get_runs()
        extracted = instance.get_materialized_partitions(dg.AssetKey("iati_extract"))
    assert {run.status for run in all_runs} == {dg.DagsterRunStatus.SUCCESS}
    by_job: dict[str, list[dg.DagsterRun]] = {}
    for run in all_runs:
        by_job.setdefault(run.job_name, []).append(run)
    (fetch,) = by_job["iati_fetch_job"]
    (tables,) = by_job["iati_tables_job"]
    night = fetch.run_id
    assert tables.tags["cdcompact/night"] == night
    assert tables.tags["dagster/run_key"] == f"tables-{night}"
    assert tables.tags["dagster/sensor_name"] == "iati_tables_sensor"
    assert by_job["iati_extract_job"]
    for run in by_job["iati_extract_job"]:
        assert run.tags["cdcompact/night"] == night
        assert run.tags["cdcompact/stage"] == "extract"  # what the run queue limits
        assert run.tags["dagster/sensor_name"] == "iati_datasets_sensor"
    catalog = json.loads((tmp_path / "publish" / "catalog.json").read_text())
    assert len(catalog["releases"]) == 1
    assert len(extracted) == 4  # the demo's four IATI datasets, each a partition
