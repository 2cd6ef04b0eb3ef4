"""The Dagster code location on real files: materialize, the nightly chain, the schedule."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from assets.harmonise.store import tables_dir
from assets.iati.extract import extract_dir
from assets.iati.fetching import iati_dir, last_run
from assets.metrics.alignment import METRICS
from assets.settings import load_settings
from pipelines.definitions import build_definitions, defs
from pipelines.iati import (
    iati_codelists,
    iati_exchange_rates,
    iati_extract,
    iati_fetch,
    iati_schemas,
    iati_transform,
)
from pipelines.nightly import run_nightly
from pipelines.resources import resources as definitions_resources
from pipelines.schedules import iati_datasets_sensor
from tests.conftest import CODELISTS, IATI_FIXTURES, PROJECT_ROOT, RATES


def write_config(tmp_path: Path, paths: list[Path], cron: str = "0 2 * * *") -> Path:
    config = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "publish": {"local_dir": str(tmp_path / "publish")},
        "schedule": {"cron": cron, "timezone": "UTC"},
        "iati": {
            "sources": [{"name": "fixtures", "kind": "local", "paths": [str(p) for p in paths]}]
        },
        "reference": {
            "codelists": str(CODELISTS),
            "exchange_rates": [
                str(RATES / "imf-monthly-subset.csv"),
                str(RATES / "monthly-average-sdr-per-unit.json"),
            ],
        },
    }
    path = tmp_path / "compact.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_code_location_loads_with_schedule_sensors_and_jobs() -> None:
    definitions = defs()  # what `dagster dev -m pipelines.definitions` loads
    assert isinstance(definitions, dg.Definitions)
    repository = definitions.get_repository_def()
    assert {j.name for j in repository.get_all_jobs()} >= {"nightly_job", "submission_job"}
    schedule = repository.get_schedule_def("nightly")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "nightly_job"
    assert {s.name for s in repository.sensor_defs} == {
        "iati_datasets_sensor",
        "submissions_sensor",
        "run_failure_alert",
        "stale_datasets_alert",
    }
    keys = {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()}
    assert keys >= {
        "submission",
        "cd_priorities",
        "partner_declarations",
        "iati_exchange_rates",
        "iati_codelists",
        "iati_extract",
        "iati_dataset",
        "activities",
        "transactions",
        "sources",
        "quarantine",
    }


def test_schedule_cron_comes_from_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, [IATI_FIXTURES / "valid" / "who-arg.xml"], cron="30 3 * * 1")
    definitions = build_definitions(load_settings(config))
    schedule = definitions.get_repository_def().get_schedule_def("nightly")
    assert schedule.cron_schedule == "30 3 * * 1"


def test_materialize_iati_assets_on_fixture_files(tmp_path: Path) -> None:
    files = [
        IATI_FIXTURES / "valid" / "who-arg.xml",
        IATI_FIXTURES / "legacy" / "dfid-AF-1.01.xml",
        IATI_FIXTURES / "invalid" / "organisation-file-not-activities.xml",
    ]
    config = write_config(tmp_path, files)
    settings = load_settings(config)
    resources = definitions_resources(settings)
    instance = dg.DagsterInstance.ephemeral()
    reference = dg.materialize(
        [iati_exchange_rates, iati_codelists, iati_fetch], resources=resources, instance=instance
    )
    assert reference.success
    keys = [r["key"] for r in last_run(settings.data_dir)]
    # the fetch registers nothing itself: iati_datasets_sensor adds a partition per dataset
    assert instance.get_dynamic_partitions("iati_datasets") == []
    compact = resources["compact"]
    sensed = iati_datasets_sensor(
        dg.build_sensor_context(instance=instance, resources={"compact": compact})
    )
    assert isinstance(sensed, dg.SensorResult)
    (request,) = sensed.dynamic_partitions_requests or []
    assert isinstance(request, dg.AddDynamicPartitionsRequest)
    assert sorted(request.partition_keys) == sorted(keys)
    instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    again = iati_datasets_sensor(  # the same fetch again: nothing to do
        dg.build_sensor_context(
            instance=instance, cursor=sensed.cursor, resources={"compact": compact}
        )
    )
    assert isinstance(again, dg.SkipReason)
    fetch_meta = reference.asset_materializations_for_node("iati_fetch")[0].metadata
    assert fetch_meta["fetch/updated"].value == 3
    rates_meta = reference.asset_materializations_for_node("iati_exchange_rates")[0].metadata
    currencies = rates_meta["currencies"].value
    assert isinstance(currencies, int)
    assert currencies > 60

    extracted = dg.materialize([iati_schemas, iati_extract], resources=resources, instance=instance)
    assert extracted.success
    (summary,) = (
        m.metadata
        for m in extracted.asset_materializations_for_node("iati_extract")
        if m.asset_key == dg.AssetKey("iati_extract")
    )
    assert (summary["extracted"].value, summary["rejected"].value) == (2, 1)
    records = instance.fetch_materializations(dg.AssetKey("iati_dataset"), limit=10).records
    per_dataset = {
        str(r.asset_materialization.partition): r.asset_materialization.metadata
        for r in records
        if r.asset_materialization is not None
    }
    assert sorted(per_dataset) == sorted(keys)
    statuses = {}
    for key, metadata in per_dataset.items():
        statuses[key] = metadata["status"].value
        sha256 = next(r["sha256"] for r in last_run(settings.data_dir) if r["key"] == key)
        folder = extract_dir(iati_dir(settings.data_dir) / "extract", sha256)
        assert metadata["sha256"].value == sha256
        assert (folder / "file.parquet").exists()
        # a rejected file's tables are empty, and an empty table has no file
        extracted_file = metadata["status"].value == "extracted"
        assert (folder / "activities.parquet").exists() == extracted_file
        assert (metadata["rows/activities"].value != 0) == extracted_file
    assert statuses == {
        "who-arg": "extracted",
        "dfid-AF-1.01": "extracted",
        "organisation-file-not-activities": "rejected",
    }

    combined = dg.materialize([iati_transform], resources=resources, instance=instance)
    assert combined.success
    counts = {
        m.asset_key.to_user_string(): m.metadata["dagster/row_count"].value
        for m in combined.asset_materializations_for_node("iati_transform")
    }
    assert counts["activities"] == 157 + 247
    assert counts["transactions"] == 871 + 396
    assert counts["sources"] == 3
    checks = combined.get_asset_check_evaluations()
    assert sorted(c.asset_key.to_user_string() for c in checks) == sorted(2 * list(counts))
    assert {c.check_name for c in checks} == {"schema_conformance", "expectations"}
    assert all(c.passed for c in checks), [c.metadata for c in checks if not c.passed]
    out = tables_dir(settings.data_dir)
    sources = pd.read_parquet(out / "sources.parquet")
    rejected = sources[sources["status"] == "rejected"]
    assert rejected["source_file"].tolist() == ["organisation-file-not-activities"]
    assert "organisation file" in rejected["reason"].iloc[0]
    activities = pd.read_parquet(out / "activities.parquet")
    assert activities["activity_id"].is_unique
    assert set(activities["source_file"]) == {"who-arg", "dfid-AF-1.01"}


def test_nightly_run_on_the_default_demo_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make run`'s command on a fresh SQLite instance, with the offline demo set: the IATI
    files, and the country reports and partner submissions copied into the empty inbox."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDCOMPACT_PUBLISH_DIR", str(tmp_path / "publish"))
    monkeypatch.setenv("CDCOMPACT_INBOX_DIR", str(tmp_path / "inbox"))
    monkeypatch.delenv("CDCOMPACT_SUBMISSIONS_SEED")  # the configuration's: demo/submissions
    assert run_nightly() == 0
    output = capsys.readouterr().out
    assert (
        f"cdcompact: first run: the 5 submissions of {PROJECT_ROOT / 'demo' / 'submissions'} "
        "copied into the empty inbox (submissions.seed)"
    ) in output
    assert "cdcompact: submissions: 5 new in the inbox, 5 to check" in output
    for name, rows in (
        ("ghana-country-report-2025", 12),
        ("kenya-country-report-2025", 6),
        ("nepal-country-report-2025", 6),
        ("demo-development-agency-2025", 9),
        ("demo-skills-trust-2025", 11),
    ):
        assert re.search(rf"  sub-[0-9a-f]{{16}}-{name}\.zip: ok: {rows} of {rows} rows", output)
    assert "4 IATI datasets" in output
    assert "activities         17   capacity development: 13" in output  # + the PFM academy
    assert "transactions       60" in output  # + its 2025 disbursement
    assert (
        "priorities         10   from 3 countries · 7 partner declarations from 2 partners · "
        "16 alignment links"
    ) in output
    assert "(12 of 12 metrics measured)" in output
    today = dt.datetime.now(dt.UTC).strftime("%Y.%m.%d")
    assert f"published release {today}" in output
    catalog = json.loads((tmp_path / "publish" / "catalog.json").read_text())
    assert catalog["latest"] == today
    release = tmp_path / "publish" / "releases" / today
    assert (release / "datapackage.json").is_file()

    # what the compact is about: priorities, declarations, alignment, overlapping effort
    tables = tmp_path / "data" / "tables"
    priorities = pd.read_parquet(tables / "cd_priorities.parquet")
    assert priorities.groupby("country_code").size().to_dict() == {"GH": 4, "KE": 3, "NP": 3}
    declarations = pd.read_parquet(tables / "partner_declarations.parquet")
    assert declarations.groupby("partner_org_ref").size().to_dict() == {
        "GB-DEMO-2002": 4,
        "XM-DEMO-1001": 3,
    }
    metrics = pd.read_parquet(tables / "alignment_metrics.parquet")
    measured = metrics[metrics["value"].notna()]
    assert set(measured["metric"]) == set(METRICS)  # each for at least one country
    pairs = pd.read_parquet(tables / "duplication_pairs.parquet")
    overlapping = pairs[pairs["kind"] == "overlapping_effort"]
    academy = "GB-DEMO-2002:GH-PFM-ACADEMY"
    assert academy in set(overlapping["activity_id_a"]) | set(overlapping["activity_id_b"])
    pair = overlapping[overlapping["activity_id_a"] == academy].iloc[0]
    assert (pair["activity_id_b"], pair["country_code"]) == ("XM-DEMO-1001-GH-PFM-01", "GH")
    ghana = (release / "countries" / "GH.html").read_text(encoding="utf-8")
    assert "This country has reported no CD priorities" not in ghana
    assert "Public financial management: programme-based budgeting" in ghana
    assert academy in ghana

    assert run_nightly() == 0  # nothing changed: nothing published, nothing copied again
    output = capsys.readouterr().out
    assert f"no change since release {today}: nothing published" in output
    assert "first run" not in output
    assert "submissions:" not in output
    assert len(json.loads((tmp_path / "publish" / "catalog.json").read_text())["releases"]) == 1
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        # one run a night, and one run per submission
        assert sorted(run.job_name for run in runs) == 2 * ["nightly_job"] + 5 * ["submission_job"]
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        nights = [run for run in runs if run.job_name == "nightly_job"]
        assert all(run.tags["cdcompact/stage"] == "night" for run in nights)
        assert len(instance.get_materialized_partitions(dg.AssetKey("iati_dataset"))) == 4
        assert sorted(instance.get_dynamic_partitions("iati_datasets")) == [
            "fr-demo-3003",
            "gb-demo-2002",
            "se-demo-4004",
            "xm-demo-1001",
        ]
    assert (home / "history" / "runs.db").exists()  # SQLite storage under DAGSTER_HOME
    transactions = pd.read_parquet(tables / "transactions.parquet")
    gbp = transactions[transactions["currency"] == "GBP"].iloc[0]
    assert gbp["usd_rate_period"] == "2024-02"  # the demo rates skip GBP 2024-03
    assert round(gbp["value_usd"], 2) == 149625.94

    # as the README says: a corrected copy of a report in the inbox replaces the older one,
    # and the next release's CHANGELOG names the one figure that changed
    corrected = tmp_path / "inbox" / "ghana-country-report-2025" / "results.csv"
    text = corrected.read_text(encoding="utf-8")
    assert text.count(",2025-12-31,340,") == 1
    corrected.write_text(text.replace(",2025-12-31,340,", ",2025-12-31,352,"), encoding="utf-8")
    assert run_nightly() == 0
    output = capsys.readouterr().out
    assert "cdcompact: submissions: 1 new in the inbox, 1 to check" in output
    assert f"published release {today}.2" in output
    changelog = (tmp_path / "publish" / "releases" / f"{today}.2" / "CHANGELOG.md").read_text()
    assert "| results | 0 | 0 | 1 | 7 |" in changelog  # 1 changed, 7 from the new file
    assert "| cd_priorities | 0 | 0 | 0 | 4 |" in changelog
    assert re.search(r"- results changed: `[0-9a-f]{20}` actual_value: 340(\.0)? → 352", changelog)
    assert re.search(
        r"- `sub-[0-9a-f]{16}-ghana-country-report-2025\.zip`: rejected: replaced by the newer "
        r"submission sub-[0-9a-f]{16}-ghana-country-report-2025\.zip",
        changelog,
    )


def test_a_datastore_source_without_a_key_fails_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IATI_API_KEY", raising=False)
    config = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "publish": {"local_dir": str(tmp_path / "publish")},
        "iati": {
            "sources": [
                {"name": "demo", "kind": "local", "paths": [str(PROJECT_ROOT / "demo" / "iati")]},
                {"name": "datastore", "kind": "datastore", "api_key_env": "IATI_API_KEY"},
            ]
        },
    }
    path = tmp_path / "compact.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert run_nightly(path, instance=dg.DagsterInstance.ephemeral()) == 0
    output = capsys.readouterr().out
    assert "5 IATI datasets: 4 updated, 0 unchanged, 1 failed" in output
    assert "failed  datastore-listing:" in output
    assert "IATI_API_KEY" in output
    sources = pd.read_parquet(tmp_path / "data" / "tables" / "sources.parquet")
    listing = sources[sources["source_file"] == "datastore-listing"].iloc[0]
    assert listing["status"] == "rejected"
    assert "IATI_API_KEY" in listing["reason"]
    assert (sources["status"] == "ok").sum() == 4


def test_two_datasets_with_the_same_bytes_publish_one_copy(tmp_path: Path) -> None:
    """Two datasets with the same bytes share one extracted folder: the night keeps one
    copy of each activity (its transactions and budgets once) and quarantines the other,
    instead of doubling the rows and failing the blocking checks."""
    source = tmp_path / "iati"
    source.mkdir()
    data = (IATI_FIXTURES / "valid" / "acfspain-ph.xml").read_bytes()
    (source / "first.xml").write_bytes(data)
    (source / "second.xml").write_bytes(data)
    config = write_config(tmp_path, [source])
    assert run_nightly(config, instance=dg.DagsterInstance.ephemeral()) == 0
    tables = tables_dir(tmp_path / "data")
    budgets = pd.read_parquet(tables / "budgets.parquet")
    assert budgets.groupby("source_file").size().to_dict() == {"first": 6}
    assert not budgets["budget_id"].duplicated().any()
    quarantine = pd.read_parquet(tables / "quarantine.parquet")
    dropped = quarantine[quarantine["rule"] == "duplicate_activity_across_files"]
    assert set(dropped["source_file"]) == {"second"}
    assert len(dropped) == pd.read_parquet(tables / "activities.parquet").shape[0]
