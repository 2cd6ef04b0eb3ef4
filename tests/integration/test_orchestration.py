"""What the daemon's side of the night does: the run queue, and the sensor that fans in
from a night's extraction runs to its one tables run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dagster as dg
import pytest

from pipelines.jobs import STAGE_TAG, iati_extract_job, iati_tables_job
from pipelines.schedules import NIGHT_TAG, iati_tables_sensor
from tests.conftest import PROJECT_ROOT

S = dg.DagsterRunStatus


def test_the_instance_queues_runs_within_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dagster.yaml (what `make run` copies into $DAGSTER_HOME) queues runs: at most 4 at
    once, and at most 2 extraction runs, which carry the tag it limits."""
    (tmp_path / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        queue = coordinator.get_run_queue_config()  # type: ignore[attr-defined]
    assert queue.max_concurrent_runs == 4
    assert queue.tag_concurrency_limits == [{"key": STAGE_TAG, "value": "extract", "limit": 2}]
    assert iati_extract_job.tags == {STAGE_TAG: "extract"}


def _run(instance: dg.DagsterInstance, night: str, status: dg.DagsterRunStatus) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name=iati_extract_job.name, run_id=run_id, status=status, tags={NIGHT_TAG: night}
        )
    )
    return run_id


def _tick(
    instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[dg.RunRequest], str | None, str | None]:
    result = iati_tables_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, dg.SensorResult)
    reason = result.skip_reason.skip_message if result.skip_reason else None
    return list(result.run_requests or []), result.cursor, reason


def test_one_tables_run_per_night_once_every_extraction_run_has_finished() -> None:
    instance = dg.DagsterInstance.ephemeral()
    _run(instance, "night-1", S.SUCCESS)
    _run(instance, "night-1", S.SUCCESS)
    _run(instance, "night-2", S.SUCCESS)
    running = _run(instance, "night-2", S.STARTED)
    requests, cursor, _ = _tick(instance, None)
    # night 2 has a run still going: only night 1's tables are asked for
    assert [(r.job_name, r.run_key, r.tags) for r in requests] == [
        (iati_tables_job.name, "tables-night-1", {NIGHT_TAG: "night-1"})
    ]
    assert json.loads(cursor or "[]") == ["night-1"]
    assert _tick(instance, cursor)[0] == []  # asked once: nothing more for night 1

    # the last extraction run of night 2 fails: no tables, and the tick says why
    run = instance.get_run_by_id(running)
    assert run is not None
    instance.report_run_failed(run, "the extraction run died")
    requests, cursor, reason = _tick(instance, cursor)
    assert requests == []
    assert reason == (
        f"night night-2: 1 of 2 extraction runs did not succeed ({running}): the tables "
        "are not combined and nothing is published"
    )
    assert json.loads(cursor or "[]") == ["night-1", "night-2"]
    assert _tick(instance, cursor) == ([], cursor, None)
