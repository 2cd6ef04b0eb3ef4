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
#: The demo night takes about 20 s, and the datasets sensor runs every 30 s.
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


def test_the_scheduled_night_runs_through_the_daemon(daemon_home: Path, tmp_path: Path) -> None:
    """The night's job launched as the schedule launches it: queued by dagster.yaml's run
    coordinator, dequeued by the daemon, run in a process of its own whose executor runs
    each step in a process of its own; the release is published, and the daemon's
    iati_datasets_sensor registers a partition for each dataset."""
    launch = ["job", "launch", "-m", "pipelines.definitions", "-j", "nightly_job"]
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
            runs = instance.get_runs()
            registered = instance.get_dynamic_partitions("iati_datasets")
            if runs and runs[0].is_finished and len(registered) == 4:
                break
            if time.monotonic() > deadline:
                log = (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
                shown = [(r.job_name, r.status.value) for r in runs]
                pytest.fail(f"no night finished in {TIMEOUT} s: {shown} {registered}\n{log}")
            time.sleep(2)
        (night,) = runs
        queued = instance.all_logs(night.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED)
        starts = instance.all_logs(night.run_id, of_type=dg.DagsterEventType.STEP_START)
        extracted = instance.get_materialized_partitions(dg.AssetKey("iati_dataset"))
    assert night.job_name == "nightly_job"
    assert night.status == dg.DagsterRunStatus.SUCCESS
    assert night.tags["cdcompact/stage"] == "night"  # what the run queue limits
    assert queued  # through the queue, not started by the launch command
    pids = {entry.dagster_event.pid for entry in starts if entry.dagster_event}
    assert len(pids) == len(starts) >= 9  # every step in a process of its own
    catalog = json.loads((tmp_path / "publish" / "catalog.json").read_text())
    assert len(catalog["releases"]) == 1
    assert sorted(extracted) == sorted(registered)  # the demo's four IATI datasets
