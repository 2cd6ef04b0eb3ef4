"""The nightly job publishes: first release, no change, a changed input — locally and on S3."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from assets.storage.s3 import S3Target
from assets.storage.targets import LocalTarget, Target
from pipelines.nightly import run_nightly
from publish.download import download_release
from tests.conftest import PROJECT_ROOT
from tests.s3 import S3Bucket, moto_endpoint_fixture, s3_bucket_fixture  # noqa: F401

CHANGED_ID = "XM-DEMO-1001-GH-PFM-01"


def _config(tmp_path: Path, publish: dict[str, Any]) -> Path:
    demo = tmp_path / "iati"
    shutil.copytree(PROJECT_ROOT / "demo" / "iati", demo)
    config = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "iati": {"sources": [{"name": "demo copy", "kind": "local", "paths": [str(demo)]}]},
        "publish": publish,
    }
    path = tmp_path / "compact.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _change_a_title(tmp_path: Path) -> None:
    path = tmp_path / "iati" / "xm-demo-1001.xml"
    text = path.read_text(encoding="utf-8")
    marker = f"<iati-identifier>{CHANGED_ID}</iati-identifier>"
    head, tail = text.split(marker, 1)
    start = tail.index("<narrative")
    end = tail.index("</narrative>", start)
    opening = tail[start : tail.index(">", start) + 1]
    path.write_text(
        head + marker + tail[:start] + opening + "Renamed by the test" + tail[end:],
        encoding="utf-8",
    )


def _nightly_three_times(tmp_path: Path, config: Path, target: Target) -> None:
    today = dt.datetime.now(dt.UTC).strftime("%Y.%m.%d")
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_nightly(config, instance=instance) == 0
        catalog = json.loads(target.read_bytes("catalog.json") or b"{}")
        assert [r["version"] for r in catalog["releases"]] == [today]
        first_keys = set(target.list_keys(f"releases/{today}/"))
        prefix = f"releases/{today}/"
        # 17 tables and the 8 that name their codes (countries, ..., organisations)
        assert len([k for k in first_keys if k.startswith(prefix + "data/")]) == 50
        for name in ("cdcompact.duckdb", "data-dictionary.md", "CITATION.cff"):
            assert prefix + name in first_keys, name
        listed = (target.read_bytes(prefix + "SHA256SUMS") or b"").decode().splitlines()
        assert len(first_keys) == len(listed) + 1
        for name in ("quality/index.html", "quality/report.json", "quality/data-docs/index.html"):
            assert prefix + name in first_keys, name
        # the latest run's report, at the root, with the GX Data Docs beside it
        assert {"quality/index.html", "quality/data-docs/index.html"} <= set(
            target.list_keys("quality/")
        )

        assert run_nightly(config, instance=instance) == 0
        catalog = json.loads(target.read_bytes("catalog.json") or b"{}")
        assert len(catalog["releases"]) == 1

        _change_a_title(tmp_path)
        assert run_nightly(config, instance=instance) == 0
    catalog = json.loads(target.read_bytes("catalog.json") or b"{}")
    assert [r["version"] for r in catalog["releases"]] == [f"{today}.2", today]
    # the other 4 activities of the edited file now cite its new sha256: re-sourced
    assert catalog["releases"][0]["changes"]["activities"] == {
        "added": 0,
        "removed": 0,
        "changed": 1,
        "resourced": 4,
    }
    changelog = (target.read_bytes(f"releases/{today}.2/CHANGELOG.md") or b"").decode()
    assert f"activities changed: `{CHANGED_ID}`" in changelog
    latest = json.loads(target.read_bytes("latest.json") or b"{}")
    assert latest["version"] == f"{today}.2"
    assert set(target.list_keys(f"releases/{today}/")) == first_keys


def test_nightly_publishes_to_the_local_folder(tmp_path: Path) -> None:
    publish_dir = tmp_path / "publish"
    config = _config(tmp_path, {"target": "local", "local_dir": str(publish_dir)})
    _nightly_three_times(tmp_path, config, LocalTarget(publish_dir))
    got = download_release(str(publish_dir), tmp_path / "downloaded")
    listed = (got.folder / "SHA256SUMS").read_text().splitlines()
    assert got.files == len(listed) + 1


def test_nightly_publishes_to_s3(
    tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(
        tmp_path,
        {
            "target": "s3",
            "s3": {
                "bucket": s3_bucket.name,
                "prefix": "compact/",
                "endpoint_url": s3_bucket.endpoint_url,
            },
        },
    )
    target = S3Target(s3_bucket.name, "compact/", endpoint_url=s3_bucket.endpoint_url)
    _nightly_three_times(tmp_path, config, target)
    assert not (tmp_path / "publish").exists()


def test_a_broken_table_stops_publishing_through_a_blocking_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.iati as iati_assets

    publish_dir = tmp_path / "publish"
    config = _config(tmp_path, {"target": "local", "local_dir": str(publish_dir)})
    instance = dg.DagsterInstance.ephemeral()
    assert run_nightly(config, instance=instance) == 0
    catalog_before = (publish_dir / "catalog.json").read_bytes()

    real = iati_assets.transform

    def broken(con: Any, settings: Any) -> None:
        real(con, settings)
        # the first activity twice: a duplicate primary key
        con.execute(
            "INSERT INTO c_activities SELECT * FROM c_activities ORDER BY activity_id LIMIT 1"
        )

    monkeypatch.setattr(iati_assets, "transform", broken)
    _change_a_title(tmp_path)  # new data, so a release would otherwise be published
    assert run_nightly(config, instance=instance) == 1
    assert (publish_dir / "catalog.json").read_bytes() == catalog_before
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="nightly_job"), limit=1)
    assert runs[0].status == dg.DagsterRunStatus.FAILURE
    release = instance.get_latest_materialization_event(dg.AssetKey("data_release"))
    assert release is not None
    assert release.run_id != runs[0].run_id  # the first night's release only
    messages = " ".join(
        f"{e.dagster_event.message} {e.dagster_event.event_specific_data!r}"
        for e in instance.all_logs(runs[0].run_id)
        if e.dagster_event is not None
    )
    assert "blocking asset checks failed with ERROR severity" in messages
    release_steps = [
        e.dagster_event_type.value
        for e in instance.all_logs(runs[0].run_id)
        if e.dagster_event_type is not None and e.step_key == "data_release"
    ]
    assert "STEP_SUCCESS" not in release_steps
