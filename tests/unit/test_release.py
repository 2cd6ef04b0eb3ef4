"""Releases: versioned, deterministic, verified, atomic — on a local folder and on S3."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import frictionless
import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets.harmonise.schema import schema_version
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from publish.download import download_release
from publish.release import ReleaseError, ReleaseOptions, publish_release
from publish.s3 import S3Target
from publish.targets import LocalTarget, Target, TargetError
from tests.conftest import PROJECT_ROOT
from tests.s3 import S3Bucket, moto_endpoint_fixture, s3_bucket_fixture  # noqa: F401

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
OPTIONS = ReleaseOptions(
    title="Test compact open data",
    description="Releases built by the tests.",
    schema_version=schema_version(),
    run_id="test-run",
    code_version="cdcompact test",
    credits=("Exchange rates: illustrative demo values (not IMF data)",),
    dictionary=PROJECT_ROOT / "docs" / "data-dictionary.md",
)


@cache
def _demo_tables() -> dict[str, pd.DataFrame]:
    settings = load_settings()
    options = HarmoniseOptions(
        rules=settings.cd_rules, rates=load_exchange_rates(list(settings.exchange_rate_files))
    )
    _, tables = harmonise_paths([PROJECT_ROOT / "demo" / "iati"], options)
    return tables


def demo_tables() -> dict[str, pd.DataFrame]:
    return {name: frame.copy() for name, frame in _demo_tables().items()}


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_first_release_holds_a_valid_verified_package(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "publish")
    outcome = publish_release(demo_tables(), target, OPTIONS, now=NOW)
    assert outcome.status == "published"
    assert outcome.version == "2026.11.28"
    release = tmp_path / "publish" / "releases" / "2026.11.28"
    for name in (
        "datapackage.json",
        "README.md",
        "CHANGELOG.md",
        "SHA256SUMS",
        "quality/report.md",
        "quality/report.json",
        "quality/index.html",
        "quality/history.json",
        "data/activities.csv",
        "data/activities.parquet",
        "data/quarantine.csv",
    ):
        assert (release / name).is_file(), name
    report = frictionless.validate(str(release / "datapackage.json"))
    assert report.valid, report.flatten(["taskName", "type", "note"])[:5]

    package = json.loads((release / "datapackage.json").read_text())
    assert package["version"] == "2026.11.28"
    assert package["schema_version"] == "1.2.0"
    resources = {r["name"]: r for r in package["resources"]}
    assert resources["activities"]["rows"] == 16
    assert resources["transactions"]["rows"] == 59
    assert resources["activities"]["schema"]["primaryKey"] == ["activity_id"]
    csv = (release / "data" / "activities.csv").read_bytes()
    assert resources["activities"]["hash"] == "sha256:" + hashlib.sha256(csv).hexdigest()
    assert resources["activities"]["bytes"] == len(csv)
    titles = [s["title"] for s in package["sources"]]
    assert any("XM-DEMO-1001" in t for t in titles)
    assert "Exchange rates: illustrative demo values (not IMF data)" in titles
    assert package["provenance"]["run_id"] == "test-run"
    assert {i["name"] for i in package["provenance"]["inputs"]} == {
        "fr-demo-3003.xml",
        "gb-demo-2002.xml",
        "se-demo-4004.xml",
        "xm-demo-1001.xml",
    }
    assert all(len(i["sha256"]) == 64 for i in package["provenance"]["inputs"])

    sums = (release / "SHA256SUMS").read_text().splitlines()
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((release / name).read_bytes()).hexdigest() == digest
    catalog = json.loads((tmp_path / "publish" / "catalog.json").read_text())
    assert catalog["latest"] == "2026.11.28"
    assert [r["version"] for r in catalog["releases"]] == ["2026.11.28"]
    assert catalog["releases"][0]["row_counts"]["activities"] == 16
    latest = json.loads((tmp_path / "publish" / "latest.json").read_text())
    assert latest["datapackage"] == "releases/2026.11.28/datapackage.json"
    for name in ("index.html", "dcat.jsonld", "data-dictionary.md"):
        assert (tmp_path / "publish" / name).is_file()
    assert "First release" in (release / "CHANGELOG.md").read_text()


def test_release_loads_in_pandas_through_frictionless_and_with_pyarrow(tmp_path: Path) -> None:
    publish_release(demo_tables(), LocalTarget(tmp_path), OPTIONS, now=NOW)
    release = tmp_path / "releases" / "2026.11.28"
    package = frictionless.Package(str(release / "datapackage.json"))
    resource: Any = package.get_resource("activities")  # to_pandas comes from a plugin
    activities = resource.to_pandas()
    assert len(activities) == 16
    assert int(activities["is_cd"].sum()) == 12
    table = pq.read_table(release / "data" / "transactions.parquet")
    assert table.num_rows == 59
    assert str(table.schema.field("value_usd").type) == "double"
    assert str(table.schema.field("transaction_date").type) == "date32[day]"


def test_unchanged_data_publishes_nothing(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    first = publish_release(demo_tables(), target, OPTIONS, now=NOW)
    before = files_under(tmp_path)
    again = publish_release(demo_tables(), target, OPTIONS, now=NOW + dt.timedelta(hours=1))
    assert again.status == "no_change"
    assert again.version == first.version
    after = files_under(tmp_path)

    def published(files: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in files.items() if not k.startswith("quality/")}

    # Nothing published changes; only the latest run's quality report moves on.
    assert published(after) == published(before)
    trend = json.loads(after["quality/history.json"])
    assert [entry["generated_at"] for entry in trend] == [
        "2026-11-28T02:00:00+00:00",
        "2026-11-28T03:00:00+00:00",
    ]
    assert {entry["release"] for entry in trend} == {first.version}
    report = json.loads(after["quality/report.json"])
    assert report["release"] == first.version
    frozen = json.loads(after[f"releases/{first.version}/quality/report.json"])
    assert frozen["generated_at"] == "2026-11-28T02:00:00+00:00"


def test_same_inputs_give_byte_identical_data_files(tmp_path: Path) -> None:
    publish_release(demo_tables(), LocalTarget(tmp_path / "a"), OPTIONS, now=NOW)
    later = NOW + dt.timedelta(days=400)
    other = publish_release(
        demo_tables(),
        LocalTarget(tmp_path / "b"),
        ReleaseOptions(**{**OPTIONS.__dict__, "run_id": "other"}),
        now=later,
    )
    assert other.version == "2028.01.02"
    a = files_under(tmp_path / "a" / "releases" / "2026.11.28" / "data")
    b = files_under(tmp_path / "b" / "releases" / "2028.01.02" / "data")
    assert len(a) == 24  # 12 tables, CSV and Parquet
    assert a == b


def test_changed_input_publishes_a_new_version_whose_changelog_names_it(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    publish_release(demo_tables(), target, OPTIONS, now=NOW)
    tables = demo_tables()
    activities = tables["activities"]
    dropped = "SE-DEMO-4004-NP-SCHOOL-03"
    assert dropped in set(activities["activity_id"])
    tables["activities"] = activities[activities["activity_id"] != dropped]
    for name in (
        "activity_countries",
        "activity_sectors",
        "participating_orgs",
        "budgets",
        "transactions",
        "results",
    ):
        frame = tables[name]
        tables[name] = frame[frame["activity_id"] != dropped]
    retitled = "XM-DEMO-1001-GH-PFM-01"
    tables["activities"].loc[tables["activities"]["activity_id"] == retitled, "title"] = "New"
    outcome = publish_release(tables, target, OPTIONS, now=NOW + dt.timedelta(hours=3))
    assert outcome.status == "published"
    assert outcome.version == "2026.11.28.2"
    changelog = (tmp_path / "releases" / "2026.11.28.2" / "CHANGELOG.md").read_text()
    assert "Compared with release 2026.11.28." in changelog
    assert "| activities | 0 | 1 | 1 | 0 |" in changelog
    assert f"activities removed: `{dropped}`" in changelog
    assert f"activities changed: `{retitled}`" in changelog
    assert "| activities | 16 | 15 |" in changelog  # the headline figure that moved
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    assert [r["version"] for r in catalog["releases"]] == ["2026.11.28.2", "2026.11.28"]
    assert json.loads((tmp_path / "latest.json").read_text())["version"] == "2026.11.28.2"


def test_formula_cells_are_made_safe_in_csv_only(tmp_path: Path) -> None:
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = '=HYPERLINK("http://example.org","x")'
    publish_release(tables, LocalTarget(tmp_path), OPTIONS, now=NOW)
    release = tmp_path / "releases" / "2026.11.28"
    csv = pd.read_csv(release / "data" / "activities.csv", dtype=str)
    assert '\'=HYPERLINK("http://example.org","x")' in set(csv["title"])
    parquet = pd.read_parquet(release / "data" / "activities.parquet")
    assert '=HYPERLINK("http://example.org","x")' in set(parquet["title"])
    raw = (release / "data" / "activities.csv").read_bytes()
    assert b"\r\n" in raw
    assert not raw.startswith(b"\xef\xbb\xbf")


class FailingTarget(LocalTarget):
    """A local target whose n-th write fails, as a full disk or a dropped connection would."""

    def __init__(self, root: Path, fail_at: int) -> None:
        super().__init__(root)
        self.fail_at = fail_at
        self.writes = 0

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise TargetError(f"injected failure writing {key}")
        super().write_bytes(key, data, content_type)


def test_a_failure_half_way_leaves_no_visible_release_and_the_next_run_redoes_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "publish"
    publish_release(demo_tables(), LocalTarget(root), OPTIONS, now=NOW)
    catalog_before = (root / "catalog.json").read_bytes()
    latest_before = (root / "latest.json").read_bytes()
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = "Changed"
    with pytest.raises(TargetError, match="injected failure"):
        publish_release(tables, FailingTarget(root, fail_at=10), OPTIONS, now=NOW)
    assert (root / "catalog.json").read_bytes() == catalog_before
    assert (root / "latest.json").read_bytes() == latest_before
    assert (root / "releases" / "2026.11.28.2").exists()  # written, but listed nowhere
    first_release = files_under(root / "releases" / "2026.11.28")

    outcome = publish_release(tables, LocalTarget(root), OPTIONS, now=NOW)
    assert outcome.status == "published"
    assert outcome.version == "2026.11.28.2"
    assert outcome.cleared_leftovers == 9
    assert files_under(root / "releases" / "2026.11.28") == first_release  # never modified
    catalog = json.loads((root / "catalog.json").read_text())
    assert [r["version"] for r in catalog["releases"]] == ["2026.11.28.2", "2026.11.28"]


def test_a_run_that_stopped_after_the_catalogue_is_completed_next_time(tmp_path: Path) -> None:
    root = tmp_path / "publish"
    scratch = tmp_path / "scratch"
    publish_release(demo_tables(), LocalTarget(scratch), OPTIONS, now=NOW)
    n_files = sum(1 for p in (scratch / "releases").rglob("*") if p.is_file())
    # writes: the release's files, then catalog.json, then latest.json (which fails)
    with pytest.raises(TargetError):
        publish_release(demo_tables(), FailingTarget(root, fail_at=n_files + 2), OPTIONS, now=NOW)
    assert json.loads((root / "catalog.json").read_text())["latest"] == "2026.11.28"
    assert not (root / "latest.json").exists()
    outcome = publish_release(demo_tables(), LocalTarget(root), OPTIONS, now=NOW)
    assert outcome.status == "no_change"
    assert json.loads((root / "latest.json").read_text())["version"] == "2026.11.28"
    assert (root / "index.html").is_file()


def test_a_corrupt_catalogue_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(ReleaseError, match=r"catalog\.json is not valid JSON"):
        publish_release(demo_tables(), LocalTarget(tmp_path), OPTIONS, now=NOW)


def test_publish_and_download_on_s3(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    target: Target = S3Target(s3_bucket.name, "open-data/", endpoint_url=s3_bucket.endpoint_url)
    first = publish_release(demo_tables(), target, OPTIONS, now=NOW)
    assert first.status == "published"
    assert publish_release(demo_tables(), target, OPTIONS, now=NOW).status == "no_change"
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = "Changed on S3"
    second = publish_release(tables, target, OPTIONS, now=NOW)
    assert second.version == "2026.11.28.2"
    keys = set(target.list_keys())
    assert {"catalog.json", "latest.json", "index.html", "dcat.jsonld"} <= keys
    assert "releases/2026.11.28.2/data/activities.parquet" in keys
    changelog = target.read_bytes("releases/2026.11.28.2/CHANGELOG.md")
    assert changelog is not None
    assert b"| activities | 0 | 0 | 1 | 0 |" in changelog

    downloaded = download_release(
        f"s3://{s3_bucket.name}/open-data/", tmp_path / "got", endpoint_url=s3_bucket.endpoint_url
    )
    assert downloaded.version == "2026.11.28.2"
    data = (tmp_path / "got" / "2026.11.28.2" / "data" / "activities.parquet").read_bytes()
    assert len(pq.read_table(io.BytesIO(data))) == 16


def test_download_from_the_local_folder_verifies_every_file(tmp_path: Path) -> None:
    publish_release(demo_tables(), LocalTarget(tmp_path / "publish"), OPTIONS, now=NOW)
    got = download_release(str(tmp_path / "publish"), tmp_path / "out")
    assert got.version == "2026.11.28"
    listed = (tmp_path / "publish" / "releases" / "2026.11.28" / "SHA256SUMS").read_text()
    assert got.files == len(listed.splitlines()) + 1  # every file it lists, and itself
    assert files_under(tmp_path / "out" / "2026.11.28") == files_under(
        tmp_path / "publish" / "releases" / "2026.11.28"
    )


def test_a_night_that_only_rechecked_its_files_publishes_nothing(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    publish_release(demo_tables(), target, OPTIONS, now=NOW)
    tables = demo_tables()
    sources = tables["sources"]
    sources["status"] = "unchanged"
    sources["reason"] = "fetch failed: HTTP 503; last good copy used"
    sources["http_etag"] = '"abc"'
    again = publish_release(tables, target, OPTIONS, now=NOW)
    assert again.status == "no_change"
    tables["sources"].loc[0, "sha256"] = "f" * 64  # a file whose bytes changed is news
    assert publish_release(tables, target, OPTIONS, now=NOW).status == "published"


def test_the_catalogue_keeps_each_countrys_latest_overall_metrics(tmp_path: Path) -> None:
    """The release has every row; catalog.json (and index.html) only what the page shows."""
    from assets.harmonise.schema import table_frame

    rows = [
        {
            "country_code": country,
            "partner_org_ref": partner,
            "year": year,
            "metric": "cd_share",
            "numerator": 1.0,
            "denominator": 2.0,
            "value": 0.5,
            "n_activities": 1,
            "method_version": "1",
        }
        for country in ("KE", "GH")
        for partner in (None, "GB-1")
        for year in (2023, 2024)
    ]
    tables = {**demo_tables(), "alignment_metrics": table_frame("alignment_metrics", rows)}
    publish_release(tables, LocalTarget(tmp_path), OPTIONS, now=NOW)
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    shown = catalog["releases"][0]["alignment"]
    assert sorted((r["country_code"], r["year"], r["partner_org_ref"]) for r in shown) == [
        ("GH", 2024, None),
        ("KE", 2024, None),
    ]
    published = pd.read_csv(tmp_path / "releases" / "2026.11.28" / "data" / "alignment_metrics.csv")
    assert len(published) == 8


def test_content_hash_reuses_recorded_digests_of_unchanged_parquet_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import publish.release as release
    from assets.harmonise.store import read_tables, write_tables

    tables = demo_tables()
    write_tables(tables, tmp_path)
    stored = read_tables(tmp_path, tuple(tables))
    plain = release.content_hash(stored)
    assert release.content_hash(stored, tmp_path) == plain  # computes and records
    assert (tmp_path / release.CONTENT_DIGESTS).exists()

    written: list[str] = []
    real_csv = release.csv_bytes

    def counting(table: str, frame: pd.DataFrame) -> bytes:
        written.append(table)
        return real_csv(table, frame)

    monkeypatch.setattr(release, "csv_bytes", counting)
    assert release.content_hash(stored, tmp_path) == plain
    assert written == ["sources"]  # every other table's digest came from the record

    # a table whose Parquet file changed is digested again, and the hash moves
    changed = dict(stored)
    changed["activities"] = stored["activities"].iloc[1:].reset_index(drop=True)
    write_tables({"activities": changed["activities"]}, tmp_path)
    written.clear()
    assert release.content_hash(changed, tmp_path) == release.content_hash(changed)
    assert release.content_hash(changed, tmp_path) != plain
    assert "activities" in written
