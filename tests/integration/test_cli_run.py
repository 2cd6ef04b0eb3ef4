"""``cdcompact run`` as a user runs it (issue 24): the installed script, on a cdcompact
home without DAGSTER_HOME, the demo night; what the console shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT

CDCOMPACT = Path(sys.executable).parent / "cdcompact"
#: What the checkout holds that a cdcompact home must not share with it: what runs write.
NOT_SHARED = {".dagster_home", "var", ".venv", ".git"}
#: A line of Dagster's console logger: "<time> - dagster - INFO - nightly_job - <run id> - ...".
DAGSTER_LINE = re.compile(r" - dagster - (DEBUG|INFO) - nightly_job - [0-9a-f-]{36} - ")


def cdcompact_home(folder: Path) -> Path:
    """A cdcompact home of its own: the checkout's files, linked, without its instance or
    data folders (written by the runs)."""
    folder.mkdir()
    for entry in PROJECT_ROOT.iterdir():
        if entry.name not in NOT_SHARED:
            (folder / entry.name).symlink_to(entry)
    return folder


def cdcompact(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    environ["CDCOMPACT_HOME"] = str(home)
    environ["CDCOMPACT_DATA_DIR"] = str(home / "var" / "data")
    environ["CDCOMPACT_PUBLISH_DIR"] = str(home / "var" / "publish")
    environ["CDCOMPACT_INBOX_DIR"] = str(home / "var" / "inbox")
    return subprocess.run(
        [str(CDCOMPACT), *argv],
        cwd=home.parent,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_run_without_dagster_home_shows_progress_and_dagster_only_when_verbose(
    tmp_path: Path,
) -> None:
    home = cdcompact_home(tmp_path / "home")
    instance = home / ".dagster_home"

    night = cdcompact(home, "run")
    assert night.returncode == 0, night.stderr[-3000:]
    lines = night.stdout.splitlines()
    assert lines[0] == (
        f"cdcompact: Dagster instance {instance} (DAGSTER_HOME is not set: the default of "
        f"the cdcompact home; {home / 'dagster.yaml'} copied in)"
    )
    assert sum("Dagster instance" in line for line in lines) == 1  # said once
    assert (instance / "dagster.yaml").read_text() == (PROJECT_ROOT / "dagster.yaml").read_text()
    assert (instance / "history" / "runs.db").is_file()  # the runs are recorded there
    # a line when each step starts and ends, numbered, with its stage
    for step, stage in (
        ("iati_fetch", "fetch"),
        ("iati_transform", "tables and checks"),
        ("data_release", "release"),
    ):
        started = [
            line
            for line in lines
            if re.fullmatch(rf"  \[\d+/\d+\] {step} \({stage}\) \.\.\.", line)
        ]
        done = [
            line
            for line in lines
            if re.fullmatch(rf"  \[\d+/\d+\] {step} \({stage}\) done in \d+\.\d s", line)
        ]
        assert (len(started), len(done)) == (1, 1), (step, night.stdout)
        assert lines.index(started[0]) < lines.index(done[0])
    counts = {re.match(r"  \[\d+/(\d+)\]", line) for line in lines}
    totals = {int(m[1]) for m in counts if m}
    steps = [line for line in lines if re.match(r"  \[\d+/\d+\] .* done in ", line)]
    assert max(totals) == len(steps)  # every step known ended, and is counted
    assert "published release " in night.stdout
    shown = night.stdout + night.stderr
    assert not DAGSTER_LINE.search(shown), shown[:3000]
    assert "RUN_START" not in shown

    again = cdcompact(home, "run", "--verbose")  # nothing changed: nothing published
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines()[0] == (
        f"cdcompact: Dagster instance {instance} (DAGSTER_HOME is not set: the default of "
        "the cdcompact home)"
    )
    shown = again.stdout + again.stderr
    assert DAGSTER_LINE.search(shown), shown[:3000]
    assert "RUN_START" in shown
    assert re.search(r"  \[\d+/\d+\] data_release \(release\) done in ", again.stdout)
    assert "no change since release " in again.stdout
