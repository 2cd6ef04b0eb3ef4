"""Storage faults while publishing: S3 failing mid-release, a full disk, a read-only target.

Whatever fails, the error names the place, the object and the cause; ``catalog.json``
and ``latest.json`` still describe the last complete release, which still downloads
and verifies; and the next run, storage healed, clears the unfinished folder and
publishes the release in full. S3 faults come from a proxy in front of the moto
server (``tests.s3.FaultyS3``); the disk is a size-capped tmpfs, mounted for the
test (root only: CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from assets.storage.s3 import S3Target
from assets.storage.targets import LocalTarget, TargetError
from publish.download import download_release
from publish.release import publish_release
from tests.s3 import (  # noqa: F401
    FaultyS3,
    S3Bucket,
    faulty_s3_fixture,
    moto_endpoint_fixture,
    s3_bucket_fixture,
)
from tests.unit.test_release import NOW, OPTIONS, demo_tables, files_under, stored

FIRST, SECOND = "2026.11.28", "2026.11.28.2"


def changed_tables() -> dict[str, pd.DataFrame]:
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = "Changed while storage failed"
    return tables


# -- S3 -------------------------------------------------------------------------------------


def test_s3_failing_mid_publish_keeps_the_last_release_and_the_next_run_completes(
    s3_bucket: S3Bucket, faulty_s3: FaultyS3, tmp_path: Path, tables_dir: Path
) -> None:
    direct = S3Target(s3_bucket.name, "open-data/", endpoint_url=s3_bucket.endpoint_url)
    publish_release(stored(demo_tables(), tables_dir), direct, OPTIONS, now=NOW)
    catalog, latest = direct.read_bytes("catalog.json"), direct.read_bytes("latest.json")

    through = S3Target(s3_bucket.name, "open-data/", endpoint_url=faulty_s3.endpoint_url)
    faulty_s3.fail_puts_after(4)
    with pytest.raises(TargetError) as failure:
        publish_release(stored(changed_tables(), tables_dir), through, OPTIONS, now=NOW)
    message = str(failure.value)
    assert message.startswith(f"s3://{s3_bucket.name}/open-data: cannot write releases/{SECOND}/")
    assert "InternalError" in message
    assert faulty_s3.puts == 4
    assert faulty_s3.failed >= 5  # the client tried again and again, then gave up
    # Nothing a reader follows has changed; the old release is whole.
    assert direct.read_bytes("catalog.json") == catalog
    assert direct.read_bytes("latest.json") == latest
    assert len(list(direct.list_keys(f"releases/{SECOND}/"))) == 4
    before = download_release(
        f"s3://{s3_bucket.name}/open-data/",
        tmp_path / "before",
        endpoint_url=s3_bucket.endpoint_url,
    )
    assert before.version == FIRST

    faulty_s3.heal()
    outcome = publish_release(stored(changed_tables(), tables_dir), through, OPTIONS, now=NOW)
    assert (outcome.status, outcome.version, outcome.cleared_leftovers) == ("published", SECOND, 4)
    after = download_release(
        f"s3://{s3_bucket.name}/open-data/", tmp_path / "after", endpoint_url=s3_bucket.endpoint_url
    )
    assert after.version == SECOND


def test_transient_s3_errors_are_retried_and_the_release_is_whole(
    s3_bucket: S3Bucket, faulty_s3: FaultyS3, tmp_path: Path, tables_dir: Path
) -> None:
    target = S3Target(s3_bucket.name, "", endpoint_url=faulty_s3.endpoint_url)
    faulty_s3.fail_first_puts_once(3, "SlowDown", 503)
    outcome = publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
    assert outcome.status == "published"
    assert faulty_s3.failed == 3
    assert faulty_s3.puts > outcome.files  # every file of the release, then the catalogue
    got = download_release(
        f"s3://{s3_bucket.name}/", tmp_path / "got", endpoint_url=s3_bucket.endpoint_url
    )
    assert got.version == FIRST


# -- a small disk ---------------------------------------------------------------------------


@dataclass
class Disk:
    """A tmpfs mounted for one test."""

    path: Path

    def remount(self, *options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(self.path)], check=True)


@pytest.fixture(name="disk")
def disk_fixture(tmp_path: Path) -> Iterator[Disk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a size-capped tmpfs needs root (CI runs as root)")
    path = tmp_path / "disk"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Disk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _used(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_a_full_disk_mid_publish_keeps_the_last_release_and_the_next_run_completes(
    disk: Disk, tmp_path: Path, tables_dir: Path
) -> None:
    root = disk.path / "publish"
    publish_release(stored(demo_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    catalog, latest = (root / "catalog.json").read_bytes(), (root / "latest.json").read_bytes()
    release = _used(root / "releases" / FIRST)
    # Room for about half of another release.
    disk.remount(f"size={_used(root) + release // 2}")
    with pytest.raises(TargetError) as failure:
        publish_release(stored(changed_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    message = str(failure.value)
    assert message.startswith(f"{root}: cannot write releases/{SECOND}/")
    assert message.endswith("No space left on device")
    assert (root / "catalog.json").read_bytes() == catalog
    assert (root / "latest.json").read_bytes() == latest
    assert _hidden(root) == []  # no half-written temporary file left behind
    assert download_release(str(root), tmp_path / "before").version == FIRST

    disk.remount("size=64m")
    first = files_under(root / "releases" / FIRST)
    outcome = publish_release(
        stored(changed_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW
    )
    assert (outcome.status, outcome.version) == ("published", SECOND)
    assert outcome.cleared_leftovers > 0
    assert files_under(root / "releases" / FIRST) == first
    assert download_release(str(root), tmp_path / "after").version == SECOND


def test_a_read_only_target_is_a_clear_error_and_nothing_changes(
    disk: Disk, tmp_path: Path, tables_dir: Path
) -> None:
    root = disk.path / "publish"
    publish_release(stored(demo_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    everything = files_under(root)
    disk.remount("ro")
    with pytest.raises(TargetError) as failure:
        publish_release(stored(changed_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    assert str(failure.value) == (
        f"{root}: cannot write releases/{SECOND}/CHANGELOG.md: Read-only file system"
    )
    assert files_under(root) == everything

    disk.remount("rw")
    outcome = publish_release(
        stored(changed_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW
    )
    assert (outcome.status, outcome.version, outcome.cleared_leftovers) == ("published", SECOND, 0)
    assert download_release(str(root), tmp_path / "after").version == SECOND
