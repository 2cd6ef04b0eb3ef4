"""The night on Dagster's own executors: the run queue of dagster.yaml, the night as one
run whose steps run in processes of their own (a step whose process is killed is run
again), and the same night on Celery workers over RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.jobs import STAGE_TAG, nightly_job
from pipelines.nightly import run_nightly
from tests.conftest import PROJECT_ROOT

BIN = Path(sys.executable).parent
DATASETS = ["fr-demo-3003", "gb-demo-2002", "se-demo-4004", "xm-demo-1001"]
#: What a release's tables must hold alike however the night was executed.
TABLES = ("activities", "transactions", "budgets", "quarantine", "sources", "alignment_metrics")


def test_the_instance_queues_runs_within_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dagster.yaml (what `make run` copies into $DAGSTER_HOME) queues runs: at most 4 at
    once, and one night at a time (the night's runs carry the tag it limits)."""
    (tmp_path / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        queue = coordinator.get_run_queue_config()  # type: ignore[attr-defined]
    assert queue.max_concurrent_runs == 4
    assert queue.tag_concurrency_limits == [{"key": STAGE_TAG, "value": "night", "limit": 1}]
    assert nightly_job.tags == {STAGE_TAG: "night"}


def _night(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, **env: str
) -> dg.DagsterInstance:
    """The demo night on a fresh SQLite instance of its own."""
    home = tmp_path / name / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / name / "data"))
    monkeypatch.setenv("CDCOMPACT_PUBLISH_DIR", str(tmp_path / name / "publish"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the storage's tables
        instance.get_runs()  # exist before the night and a watcher open it at once
    (home / "ready").touch()
    assert run_nightly() == 0
    return dg.DagsterInstance.from_config(str(home))


def _in_memory_night(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "memory" / "data"))
    monkeypatch.setenv("CDCOMPACT_PUBLISH_DIR", str(tmp_path / "memory" / "publish"))
    assert run_nightly(instance=dg.DagsterInstance.ephemeral()) == 0
    return tmp_path / "memory" / "data" / "tables"


def _same_tables(one: Path, two: Path) -> None:
    for table in TABLES:
        a, b = pd.read_parquet(one / f"{table}.parquet"), pd.read_parquet(two / f"{table}.parquet")
        if table == "sources":  # when and from where each file was fetched differ
            when = ["fetched_at", "checked_at", "uri"]
            a, b = a.drop(columns=when), b.drop(columns=when)
        pd.testing.assert_frame_equal(a, b, obj=table)


def _step_events(
    instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType
) -> list[dg.EventLogEntry]:
    return [e for e in instance.all_logs(run_id, of_type=kind) if e.dagster_event]


def test_the_night_is_one_run_whose_steps_run_in_processes_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _night(tmp_path, monkeypatch, "multiprocess", CDCOMPACT_WORKERS="2") as instance:
        (run,) = instance.get_runs()
        assert (run.job_name, run.status) == ("nightly_job", dg.DagsterRunStatus.SUCCESS)
        starts = _step_events(instance, run.run_id, dg.DagsterEventType.STEP_START)
        batches = [e for e in starts if "extract_batch[" in (e.step_key or "")]
        pids = {e.dagster_event.pid for e in starts if e.dagster_event}
        # the four datasets shared out by size for the two processes, a step per batch
        assert len(batches) >= 2
        assert os.getpid() not in pids
        assert len(pids) == len(starts)  # a process a step
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("iati_dataset"))) == (
            DATASETS
        )
        assert sorted(instance.get_dynamic_partitions("iati_datasets")) == DATASETS
    output = capsys.readouterr().out
    assert "steps executed by up to 2 processes (multiprocess executor)" in output
    assert f"extracting 4 datasets in {len(batches)} steps" in output
    _same_tables(
        tmp_path / "multiprocess" / "data" / "tables", _in_memory_night(tmp_path, monkeypatch)
    )


def _kill_a_batch_step(home: Path, stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the process of the first extraction step, once it has started."""
    while not stop.is_set() and not (home / "ready").exists():
        time.sleep(0.02)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while not stop.is_set() and not killed:
            for run in instance.get_runs():
                for entry in _step_events(instance, run.run_id, dg.DagsterEventType.STEP_START):
                    event = entry.dagster_event
                    if event and event.pid and "extract_batch[" in (event.step_key or ""):
                        os.kill(event.pid, signal.SIGKILL)
                        killed.append(event.pid)
                        return
            time.sleep(0.01)


def test_a_step_whose_process_is_killed_is_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process, one batch of the four datasets: killed while it extracts, it is run
    again (the extract step's retry policy) and the night goes on."""
    home = tmp_path / "killed" / "dagster_home"
    stop, killed = threading.Event(), list[int]()
    watcher = threading.Thread(target=_kill_a_batch_step, args=(home, stop, killed), daemon=True)
    watcher.start()
    try:
        instance = _night(tmp_path, monkeypatch, "killed", CDCOMPACT_WORKERS="1")
    finally:
        stop.set()
        watcher.join()
    assert len(killed) == 1
    with instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        retried = _step_events(instance, run.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)
        assert [e.dagster_event.step_key for e in retried if e.dagster_event] == [
            "iati_extract.extract_batch[batch_1]"
        ]
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("iati_dataset"))) == (
            DATASETS
        )
    _same_tables(tmp_path / "killed" / "data" / "tables", _in_memory_night(tmp_path, monkeypatch))


@pytest.fixture
def celery_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Two `cdcompact worker` processes on the RabbitMQ of this machine (127.0.0.1:5672),
    reading a queue of their own (another test session may share the broker)."""
    queue = f"cdcompact-test-{uuid.uuid4().hex[:8]}"
    env = {  # the workers open the run's instance and read the night's configuration
        "DAGSTER_HOME": str(tmp_path / "celery" / "dagster_home"),
        "CDCOMPACT_EXECUTOR": "celery",
        "CDCOMPACT_CELERY_QUEUE": queue,
        "CDCOMPACT_DATA_DIR": str(tmp_path / "celery" / "data"),
        "CDCOMPACT_PUBLISH_DIR": str(tmp_path / "celery" / "publish"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    names = ["w1", "w2"]
    workers = [
        subprocess.Popen(
            [str(BIN / "cdcompact"), "worker", "--name", name],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{name}.log").open("wb"),
            start_new_session=True,
        )
        for name in names
    ]
    try:
        deadline = time.monotonic() + 60
        while not all("ready" in (tmp_path / f"{n}.log").read_text() for n in names):
            assert all(w.poll() is None for w in workers), (tmp_path / "w1.log").read_text()
            assert time.monotonic() < deadline, "the Celery workers did not start in 60 s"
            time.sleep(0.2)
        yield names
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def _celery_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """The worker each step ran on, from the Celery executor's engine events."""
    found = {}
    for entry in _step_events(instance, run_id, dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        worker = data.metadata.get("Celery worker") if data else None
        if event and event.step_key and worker is not None:
            found[event.step_key] = str(getattr(worker, "value", worker))
    return found


def test_a_night_on_two_celery_workers_publishes_what_one_process_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    celery_workers: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _night(tmp_path, monkeypatch, "celery") as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        steps = [
            e.dagster_event.step_key
            for e in _step_events(instance, run.run_id, dg.DagsterEventType.STEP_SUCCESS)
            if e.dagster_event
        ]
        assert "data_release" in steps
        assert "iati_extract.extract_batch[batch_1]" in steps
        workers = _celery_workers(instance, run.run_id)
        assert set(workers) == set(steps)  # every step ran on a worker
        assert {name.split("@")[0] for name in workers.values()} <= set(celery_workers)
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("iati_dataset"))) == (
            DATASETS
        )
    output = capsys.readouterr().out
    assert "steps executed by Celery workers (pyamqp://guest:***@127.0.0.1:5672//)" in output
    published = sorted((tmp_path / "celery" / "publish" / "releases").iterdir())
    assert len(published) == 1
    monkeypatch.delenv("CDCOMPACT_EXECUTOR")
    _same_tables(tmp_path / "celery" / "data" / "tables", _in_memory_night(tmp_path, monkeypatch))
