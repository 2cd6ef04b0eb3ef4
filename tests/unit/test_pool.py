"""The process pool that survives a dying worker: real spawned processes, really killed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from assets.pool import DIED, GAVE_UP, WorkerDied, map_in_processes


def work(job: tuple[int, str, str]) -> int:
    """Square the number; ``die`` kills the process, ``die_once`` only the first time
    (the marker file remembers), ``fail`` raises."""
    number, mode, marker = job
    if mode == "die" or (mode == "die_once" and not Path(marker).exists()):
        if mode == "die_once":
            Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "fail":
        raise ValueError(f"job {number} is wrong")
    return number * number


def die_on_start() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_once_costs_nothing(tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    jobs = [(n, "die_once" if n == 3 else "", marker) for n in range(1, 7)]
    restarts: list[int] = []
    results = list(map_in_processes(work, jobs, 2, on_restart=restarts.append))
    assert results == [(i, (i + 1) ** 2) for i in range(6)]
    assert Path(marker).exists()
    assert len(restarts) == 1
    assert 1 <= restarts[0] <= 5


def test_only_the_job_that_kills_its_process_is_lost(tmp_path: Path) -> None:
    jobs = [(n, "die" if n == 2 else "", "") for n in range(1, 6)]
    restarts: list[int] = []
    results = dict(map_in_processes(work, jobs, 2, on_restart=restarts.append))
    assert results == {0: 1, 1: WorkerDied(DIED), 2: 9, 3: 16, 4: 25}
    assert len(restarts) == 2  # a fresh pool, then one process per job left


def test_workers_that_cannot_start_are_given_up_after_three(tmp_path: Path) -> None:
    jobs = [(n, "", "") for n in range(6)]
    results = [r for _, r in map_in_processes(work, jobs, 2, initializer=die_on_start)]
    assert results[:3] == [WorkerDied(DIED)] * 3
    assert results[3:] == [WorkerDied(GAVE_UP.format(n=3))] * 3
    died = results[3]
    assert isinstance(died, WorkerDied)
    assert "3 worker processes in a row stopped abruptly" in died.message


def test_an_exception_in_a_job_is_raised_not_taken_for_a_death() -> None:
    jobs = [(1, "", ""), (2, "fail", "")]
    with pytest.raises(ValueError, match="job 2 is wrong"):
        list(map_in_processes(work, jobs, 2))


def test_no_jobs_no_pool() -> None:
    assert list(map_in_processes(work, [], 4)) == []


def test_a_file_whose_worker_died_is_rejected_and_counted(tmp_path: Path) -> None:
    from assets.iati.harmonise import HarmoniseOptions, died, harmonise_inputs
    from assets.settings import load_settings

    path = tmp_path / "big.xml"
    path.write_bytes(b"<iati-activities/>")
    [result], tables = harmonise_inputs(
        [died(path, "big.xml", DIED)], HarmoniseOptions(rules=load_settings().cd_rules)
    )
    assert tables["sources"]["source_file"].tolist() == ["big.xml"]
    source = result.source
    assert (source["source_file"], source["status"]) == ("big.xml", "rejected")
    assert (source["bytes"], source["reason"]) == (18, DIED)
    quarantine = result.tables["quarantine"]
    assert quarantine["rule"].tolist() == ["worker_died"]
    assert quarantine["message"].iloc[0] == f"file rejected: {DIED}"
