"""Submissions through the nightly job: inbox, checks, harmonised tables, replacement."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import dagster as dg
import openpyxl
import pandas as pd
import pytest
import yaml

from pipelines.nightly import run_nightly
from tests.s3 import S3Bucket, moto_endpoint_fixture, s3_bucket_fixture  # noqa: F401
from tests.submission_samples import (
    DEMO_IATI_ID,
    clean_country_report_ghana,
    clean_partner_submission,
    messy_country_report_kenya,
    zip_bomb,
    zip_traversal,
)

TABLES = Path("data") / "tables"


@pytest.fixture
def inbox_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDCOMPACT_PUBLISH_DIR", str(tmp_path / "publish"))
    monkeypatch.setenv("CDCOMPACT_INBOX_DIR", str(tmp_path / "inbox"))
    (tmp_path / "inbox").mkdir()
    return tmp_path / "inbox"


def test_submissions_are_checked_harmonised_and_published(
    tmp_path: Path, inbox_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ghana = clean_country_report_ghana(inbox_env)
    clean_partner_submission(inbox_env)
    messy_country_report_kenya(inbox_env)
    zip_bomb(inbox_env)
    traversal = zip_traversal(inbox_env)
    instance = dg.DagsterInstance.ephemeral()

    assert run_nightly(instance=instance) == 0
    output = capsys.readouterr().out
    assert "submissions: 5 new in the inbox, 5 to check" in output
    tables = tmp_path / TABLES
    sources = pd.read_parquet(tables / "sources.parquet")
    submissions = sources[sources["source"] != "iati"].set_index("uri")
    assert len(submissions) == 5
    assert submissions.loc[f"inbox:{ghana.name}", "status"] == "ok"
    assert submissions.loc[f"inbox:{ghana.name}", "n_accepted"] == 9  # 3 priorities, 6 results
    kenya = submissions[submissions["reason"].fillna("").str.contains("country or partner")]
    assert len(kenya) == 1  # 'Keyna': no row can be attributed
    assert kenya["status"].iloc[0] == "rejected"
    rejected = submissions[submissions["reason"].fillna("").str.contains("zip", case=False)]
    assert len(rejected) >= 1
    for row in sources.itertuples():
        assert row.n_records == row.n_accepted + row.n_quarantined
    assert not any(".." in str(p) for p in (tmp_path / "data").rglob("*"))
    assert not (tmp_path / "etc").exists()
    assert traversal.name in submissions.index.str.removeprefix("inbox:").tolist()

    priorities = pd.read_parquet(tables / "cd_priorities.parquet")
    assert set(priorities["country_code"]) == {"GH"}
    assert len(priorities) == 3
    assert set(priorities["source"]) == {"country_report"}
    assert priorities["source_ref"].str.startswith("sheet cd_priorities, row ").all()
    declarations = pd.read_parquet(tables / "partner_declarations.parquet")
    assert len(declarations) == 4
    assert set(declarations["partner_org_ref"]) == {"XM-DEMO-9001"}
    activities = pd.read_parquet(tables / "activities.parquet")
    partner = activities[activities["source"] == "partner_submission"]
    assert len(partner) >= 3
    assert (partner["cd_basis"] == "partner_declared").all()
    assert partner["activity_id"].str.startswith("XM-DEMO-9001:").all()
    quarantine = pd.read_parquet(tables / "quarantine.parquet")
    messages = " ".join(quarantine["message"].fillna(""))
    assert "did you mean KE (Kenya)?" in messages
    # The partner's activity that IATI also publishes: IATI describes it, and the
    # partner's disbursement is kept but not counted (IATI reports disbursements).
    assert activities.loc[activities["activity_id"] == DEMO_IATI_ID, "source"].tolist() == ["iati"]
    merged = quarantine[quarantine["rule"] == "activity_also_in_iati"]
    assert merged["value"].tolist() == [DEMO_IATI_ID]
    assert (merged["severity"] == "warning").all()
    transactions = pd.read_parquet(tables / "transactions.parquet")
    partner_tx = transactions[
        (transactions["activity_id"] == DEMO_IATI_ID)
        & (transactions["source"] == "partner_submission")
    ]
    assert partner_tx["value"].tolist() == [600000.0]
    assert not partner_tx["counts_toward_totals"].any()
    assert partner_tx["exclusion_reason"].tolist() == ["also reported in IATI (file xm-demo-1001)"]
    pairs = pd.read_parquet(tables / "duplication_pairs.parquet")
    twice = pairs[(pairs["kind"] == "same_activity_reported_twice")]
    assert DEMO_IATI_ID in set(twice["activity_id_a"])
    assert "published release" in output
    published = sorted((tmp_path / "publish" / "releases").iterdir())[-1]
    assert (published / "data" / "cd_priorities.csv").read_text().count("\n") == 4

    # The same files again: nothing new, nothing published.
    assert run_nightly(instance=instance) == 0
    output = capsys.readouterr().out
    assert "submissions:" not in output
    assert "no change since release" in output

    # Ghana sends a corrected report for the same period: it replaces the first.
    time.sleep(1.1)  # a later receipt time
    workbook = openpyxl.load_workbook(ghana)
    workbook["cd_priorities"]["B2"] = "Public financial management (revised)"
    corrected = inbox_env / "ghana-corrected.xlsx"
    workbook.save(corrected)
    assert run_nightly(instance=instance) == 0
    output = capsys.readouterr().out
    assert "submissions: 1 new in the inbox, 1 to check" in output
    sources = pd.read_parquet(tables / "sources.parquet").set_index("uri")
    assert sources.loc[f"inbox:{ghana.name}", "status"] == "rejected"
    assert "replaced by the newer submission" in sources.loc[f"inbox:{ghana.name}", "reason"]
    assert sources.loc["inbox:ghana-corrected.xlsx", "status"] == "ok"
    priorities = pd.read_parquet(tables / "cd_priorities.parquet")
    assert len(priorities) == 3
    assert "Public financial management (revised)" in set(priorities["title"])
    quarantine = pd.read_parquet(tables / "quarantine.parquet")
    assert "replaced_by_newer_submission" in set(quarantine["rule"])
    shutil.rmtree(inbox_env)


def test_the_inbox_sensor_adds_a_partition_per_new_file(
    tmp_path: Path, inbox_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.storage.targets import LocalTarget
    from pipelines.resources import CompactConfig
    from pipelines.submissions import submissions_sensor

    read: list[str] = []
    original = LocalTarget.read_bytes

    def counted(self: LocalTarget, key: str) -> bytes | None:
        read.append(key)
        return original(self, key)

    monkeypatch.setattr(LocalTarget, "read_bytes", counted)
    ghana = clean_country_report_ghana(inbox_env)
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"compact": CompactConfig()}
        )
        result = submissions_sensor(context)
        assert isinstance(result, dg.SensorResult)
        return result

    first = tick(None)
    assert len(first.run_requests or []) == 1
    key = (first.run_requests or [])[0].partition_key
    assert str(key).startswith("sub-")
    requests = first.dynamic_partitions_requests or []
    assert isinstance(requests[0], dg.AddDynamicPartitionsRequest)
    assert list(requests[0].partition_keys) == [key]
    cursor = json.loads(first.cursor or "{}")
    assert cursor["received"] == 1
    assert list(cursor["objects"]) == [ghana.name]
    assert read == [ghana.name]

    # the same inbox again: nothing new, and no object is read
    again = tick(first.cursor)
    assert not again.run_requests
    assert read == [ghana.name]

    # the file is replaced by a corrected one: only it is read, and it is new
    ghana.write_bytes(ghana.read_bytes() + b"\0")
    changed = tick(again.cursor)
    assert len(changed.run_requests or []) == 1
    assert read == [ghana.name, ghana.name]

    # a cursor written for another index (the data folder was wiped): read everything again
    stale = json.dumps({"received": 99, "objects": json.loads(changed.cursor or "{}")["objects"]})
    assert not tick(stale).run_requests  # the same bytes are the same submissions
    assert read == [ghana.name] * 3


def test_an_s3_inbox(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    from assets.settings import load_settings
    from assets.storage.s3 import S3Target
    from assets.submissions.intake import process, receive

    config = tmp_path / "compact.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"data_dir": str(tmp_path / "data")},
                "submissions": {
                    "target": "s3",
                    "s3": {
                        "bucket": s3_bucket.name,
                        "prefix": "inbox/",
                        "endpoint_url": s3_bucket.endpoint_url,
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    sample = clean_partner_submission(tmp_path)
    S3Target(s3_bucket.name, "inbox/", endpoint_url=s3_bucket.endpoint_url).write_bytes(
        "partners/../../evil name.xlsx".replace("../", ""), sample.read_bytes()
    )
    settings = load_settings(config)
    keys = receive(settings)
    assert len(keys) == 1
    harmonised = process(settings, keys[0], None, None, None)
    assert harmonised.status == "ok"
    assert harmonised.source["uri"] == "inbox:evil name.xlsx"
    assert len(harmonised.tables["partner_declarations"]) == 4
    assert receive(settings) == []


def test_a_folder_of_csv_files_in_the_inbox_is_one_submission(
    tmp_path: Path, inbox_env: Path
) -> None:
    import zipfile

    from assets.settings import load_settings
    from assets.submissions.intake import process, receive
    from tests.submission_samples import partner_csv_zip

    archive = partner_csv_zip(tmp_path)
    folder = inbox_env / "partner csv"
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.namelist():
            (folder / member).parent.mkdir(parents=True, exist_ok=True)
            (folder / member).write_bytes(zipped.read(member))
    settings = load_settings()
    keys = receive(settings)
    assert len(keys) == 1
    harmonised = process(settings, keys[0], None, None, None)
    assert harmonised.source["uri"] == "inbox:partner csv.zip"
    assert harmonised.status in {"ok", "partial"}
    assert len(harmonised.tables["activities"]) > 0
    assert receive(settings) == []  # the same folder again is the same submission


def test_a_failed_submission_run_does_not_stop_the_night(
    tmp_path: Path,
    inbox_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A submission whose run crashes (not a rejected file: a fault of the code) fails
    its run; the IATI night goes on and publishes, and the exit code says 1."""
    import pipelines.submissions as submissions

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(submissions, "process", crash)
    clean_partner_submission(inbox_env)
    instance = dg.DagsterInstance.ephemeral()
    assert run_nightly(instance=instance) == 1
    shown = capsys.readouterr()
    assert "1 submission runs failed: sub-" in shown.err
    assert "the night goes on without them" in shown.err
    assert "published release" in shown.out
    (failed,) = instance.get_runs(filters=dg.RunsFilter(job_name="submission_job"))
    assert failed.status == dg.DagsterRunStatus.FAILURE
    (night,) = instance.get_runs(filters=dg.RunsFilter(job_name="nightly_job"))
    assert night.status == dg.DagsterRunStatus.SUCCESS
    sources = pd.read_parquet(tmp_path / TABLES / "sources.parquet")
    assert set(sources["source"]) == {"iati"}  # the crashed submission is not in it
