"""A nightly run killed with SIGKILL at every stage, then run again.

The real ``cdcompact run`` (fetch, extraction steps in processes of their own, combine,
checks, metrics, release) on real files, in its own process group, is killed once during
each stage at a point drawn at random (seeded: the draw is printed, so a failure can
be replayed), then started again. After every kill, what a reader can reach is whole:
the catalogue is valid JSON and the release it names downloads with every checksum
verified. The run after the last kill completes, publishes the same tables as an
uninterrupted harmonising of the same files, and leaves no half-written file in the
release folders.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from assets.iati.codelists import load_codelists
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from publish.download import download_release
from tests.conftest import CODELISTS, IATI_FIXTURES, RATES
from tests.integration.test_pipeline import write_config

CDCOMPACT = Path(sys.executable).parent / "cdcompact"
FILES = [IATI_FIXTURES / "valid" / "who-arg.xml", IATI_FIXTURES / "valid" / "worldbank-sv.xml"]
SEED = int(os.environ.get("CDCOMPACT_KILL_SEED", "20261128"))
#: Where to kill: after the first output line containing one of the markers, a random
#: delay of up to so many seconds (the stage the marker opens takes longer than that).
#: The release follows the transform whether it ran in full or (killed after it had
#: saved its state) reused the tables.
STAGES: list[tuple[str, tuple[str, ...], float]] = [
    ("fetch", ("cdcompact: steps executed by",), 2.0),
    ("extraction steps", ("iati_extract.extract_plan - ",), 2.0),
    ("combine and checks", ("iati_transform - activities:",), 6.0),
    ("release", ("iati_transform stages:", "no input changed since the tables were"), 1.5),
]


def _start(tmp_path: Path, config: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "CDCOMPACT_CONFIG": str(config)}
    process = subprocess.Popen(
        # --verbose: the markers below are Dagster's log lines, shown only then
        [str(CDCOMPACT), "run", "--verbose"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the steps' processes die with it
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return process, lines


def _kill_after(
    process: subprocess.Popen[str],
    lines: queue.Queue[str],
    markers: tuple[str, ...],
    delay: float,
) -> list[str]:
    """Wait for one of ``markers``, then ``delay`` seconds, then SIGKILL the process
    group."""
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert process.poll() is None, f"the run ended before {markers}:\n{''.join(seen)}"
            continue
        seen.append(line)
        if any(marker in line for marker in markers):
            time.sleep(delay)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            return seen
    raise AssertionError(f"none of {markers} within 300 s:\n{''.join(seen)}")


def _reader_sees_a_whole_release(publish: Path, out: Path) -> str | None:
    """The version the catalogue names, downloaded and verified; None before any."""
    catalog = publish / "catalog.json"
    if not catalog.exists():
        assert not (publish / "latest.json").exists()
        return None
    latest = json.loads(catalog.read_text())["latest"]
    downloaded = download_release(str(publish), out)
    assert downloaded.version == latest
    return str(latest)


def test_a_run_killed_at_every_stage_resumes_and_publishes_whole(tmp_path: Path) -> None:
    config = write_config(tmp_path, FILES)
    publish = tmp_path / "publish"
    draw = random.Random(SEED)
    for number, (stage, markers, longest) in enumerate(STAGES):
        delay = round(draw.uniform(0, longest), 2)
        process, lines = _start(tmp_path, config)
        output = _kill_after(process, lines, markers, delay)
        assert process.returncode == -signal.SIGKILL, (stage, "".join(output))
        print(f"killed in {stage}, {delay} s after one of {markers} (seed {SEED})")
        _reader_sees_a_whole_release(publish, tmp_path / f"after-kill-{number}")

    process, lines = _start(tmp_path, config)
    assert process.wait(timeout=600) == 0, "".join(lines.queue)
    version = _reader_sees_a_whole_release(publish, tmp_path / "final")
    assert version is not None

    # The same tables as harmonising the files once, without interruption.
    settings = load_settings(config)
    rate_files = [RATES / "imf-monthly-subset.csv", RATES / "monthly-average-sdr-per-unit.json"]
    options = HarmoniseOptions(
        rules=settings.cd_rules,
        rates=load_exchange_rates(rate_files),
        codelists=load_codelists(CODELISTS),
    )
    _, expected = harmonise_paths(FILES, options)
    released = tmp_path / "final" / version / "data"
    for table in ("activities", "transactions", "budgets", "results", "activity_sectors"):
        got = pq.read_table(released / f"{table}.parquet")
        assert got.num_rows == len(expected[table]), table
        key = "activity_id"
        assert sorted(got.column(key).to_pylist()) == sorted(expected[table][key]), table
    # No half-written temporary file was left in a published release folder.
    assert sorted(p.name for p in (publish / "releases").rglob(".*")) == []
    # Every table the run wrote reads back.
    for path in (tmp_path / "data" / "tables").glob("*.parquet"):
        pq.read_metadata(path)
