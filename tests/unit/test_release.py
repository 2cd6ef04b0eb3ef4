"""Releases: versioned, deterministic, verified, atomic — on a local folder and on S3."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import frictionless
import lxml.html
import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets.harmonise.schema import NAME_TABLES, schema_version
from assets.harmonise.store import write_tables
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from assets.storage.s3 import S3Target
from assets.storage.targets import LocalTarget, Target, TargetError
from publish.download import download_release
from publish.release import ReleaseError, ReleaseOptions, publish_release
from publish.tables import StoredTables
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


#: The demo's content hash (every table's CSV sha256, the run fields of sources aside), since
#: schema 4.0.0 (``sources`` got the run fields ``checked_at`` and ``download``: its CSV
#: header changed; before it was 1089dbbbd34b9df3...); from schema 3.0.0 (transaction ids
#: by ref or position, ``participating_orgs.position``; the
#: name tables, here without codelists: every code ``in_codelist`` false; IATI results with
#: their activity's only country; alignment metrics only where measured); before issue 23 it
#: was fd5e3320a6ecfe3f..., and the hash the pandas release of 7ca04e4 gave 50c813604f5ab439...
DEMO_CONTENT_HASH = "7b790b17f2ffaa81884a6d958af542e2c5e6f180e1294259bf036489c7147b47"


def harmonise_folder(folder: Path) -> dict[str, pd.DataFrame]:
    """The harmonised tables of the IATI files in ``folder``, with the project's settings."""
    settings = load_settings()
    options = HarmoniseOptions(
        rules=settings.cd_rules, rates=load_exchange_rates(list(settings.exchange_rate_files))
    )
    _, tables = harmonise_paths([folder], options)
    return tables


@cache
def _demo_tables() -> dict[str, pd.DataFrame]:
    return harmonise_folder(PROJECT_ROOT / "demo" / "iati")


def demo_tables() -> dict[str, pd.DataFrame]:
    return {name: frame.copy() for name, frame in _demo_tables().items()}


def stored(tables: Mapping[str, pd.DataFrame], folder: Path) -> StoredTables:
    """The tables as a release reads them: one Parquet file each in ``folder``."""
    write_tables(tables, folder)
    return StoredTables(folder, tuple(tables))


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_first_release_holds_a_valid_verified_package(tmp_path: Path, tables_dir: Path) -> None:
    target = LocalTarget(tmp_path / "publish")
    outcome = publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
    assert outcome.status == "published"
    assert outcome.version == "2026.11.28"
    # the same tables always give the same hash: so the same "no change"
    assert outcome.content_hash == DEMO_CONTENT_HASH
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
    assert package["schema_version"] == "4.0.0"
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


def test_the_quality_report_is_in_every_language_of_the_pages(
    tmp_path: Path, tables_dir: Path
) -> None:
    """The release's report and tonight's at the root: every page in English and French."""
    options = dataclasses.replace(OPTIONS, languages=("en", "fr"))
    target = LocalTarget(tmp_path / "publish")
    outcome = publish_release(stored(demo_tables(), tables_dir), target, options, now=NOW)
    assert outcome.status == "published"
    root = tmp_path / "publish"
    for quality in (root / "releases" / "2026.11.28" / "quality", root / "quality"):
        assert (quality / "index.html").is_file(), quality
        french = lxml.html.fromstring((quality / "index.fr.html").read_bytes())
        assert french.get("lang") == "fr"
        assert french.xpath('//link[@rel="alternate"]/@hreflang') == ["en", "fr"]
        names = [p.name for p in (quality / "contributors").glob("*.html")]
        english = {n.removesuffix(".html") for n in names if not n.endswith(".fr.html")}
        assert english
        assert {n.removesuffix(".fr.html") for n in names if n.endswith(".fr.html")} == english


def test_release_loads_in_pandas_through_frictionless_and_with_pyarrow(
    tmp_path: Path, tables_dir: Path
) -> None:
    publish_release(stored(demo_tables(), tables_dir), LocalTarget(tmp_path), OPTIONS, now=NOW)
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


def test_unchanged_data_publishes_nothing(tmp_path: Path, tables_dir: Path) -> None:
    target = LocalTarget(tmp_path)
    first = publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
    before = files_under(tmp_path)
    again = publish_release(
        stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW + dt.timedelta(hours=1)
    )
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


def test_same_inputs_give_byte_identical_data_files(tmp_path: Path, tables_dir: Path) -> None:
    publish_release(
        stored(demo_tables(), tables_dir), LocalTarget(tmp_path / "a"), OPTIONS, now=NOW
    )
    later = NOW + dt.timedelta(days=400)
    other = publish_release(
        stored(demo_tables(), tables_dir),
        LocalTarget(tmp_path / "b"),
        ReleaseOptions(**{**OPTIONS.__dict__, "run_id": "other"}),
        now=later,
    )
    assert other.version == "2028.01.02"
    a = files_under(tmp_path / "a" / "releases" / "2026.11.28" / "data")
    b = files_under(tmp_path / "b" / "releases" / "2028.01.02" / "data")
    assert len(a) == 42  # 13 tables and the 8 name tables, CSV and Parquet
    assert a == b


def test_changed_input_publishes_a_new_version_whose_changelog_names_it(
    tmp_path: Path, tables_dir: Path
) -> None:
    target = LocalTarget(tmp_path)
    publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
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
    outcome = publish_release(
        stored(tables, tables_dir), target, OPTIONS, now=NOW + dt.timedelta(hours=3)
    )
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


def test_formula_cells_are_made_safe_in_csv_only(tmp_path: Path, tables_dir: Path) -> None:
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = '=HYPERLINK("http://example.org","x")'
    publish_release(stored(tables, tables_dir), LocalTarget(tmp_path), OPTIONS, now=NOW)
    release = tmp_path / "releases" / "2026.11.28"
    csv = pd.read_csv(release / "data" / "activities.csv", dtype=str)
    assert '\'=HYPERLINK("http://example.org","x")' in set(csv["title"])
    parquet = pd.read_parquet(release / "data" / "activities.parquet")
    assert '=HYPERLINK("http://example.org","x")' in set(parquet["title"])
    raw = (release / "data" / "activities.csv").read_bytes()
    assert b"\r\n" in raw
    assert not raw.startswith(b"\xef\xbb\xbf")


class FailingTarget(LocalTarget):
    """A local target whose n-th write (of bytes, a file or a copy) fails, as a full disk
    or a dropped connection would."""

    def __init__(self, root: Path, fail_at: int) -> None:
        super().__init__(root)
        self.fail_at = fail_at
        self.writes = 0

    def _count(self, key: str) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise TargetError(f"injected failure writing {key}")

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._count(key)
        super().write_bytes(key, data, content_type)

    def write_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        self._count(key)
        super().write_file(key, path, content_type)

    def copy(self, source: str, key: str, content_type: str | None = None) -> None:
        self._count(key)
        super().copy(source, key, content_type)


def test_a_failure_half_way_leaves_no_visible_release_and_the_next_run_redoes_it(
    tmp_path: Path, tables_dir: Path
) -> None:
    root = tmp_path / "publish"
    publish_release(stored(demo_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    catalog_before = (root / "catalog.json").read_bytes()
    latest_before = (root / "latest.json").read_bytes()
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = "Changed"
    with pytest.raises(TargetError, match="injected failure"):
        publish_release(
            stored(tables, tables_dir), FailingTarget(root, fail_at=10), OPTIONS, now=NOW
        )
    assert (root / "catalog.json").read_bytes() == catalog_before
    assert (root / "latest.json").read_bytes() == latest_before
    assert (root / "releases" / "2026.11.28.2").exists()  # written, but listed nowhere
    first_release = files_under(root / "releases" / "2026.11.28")

    outcome = publish_release(stored(tables, tables_dir), LocalTarget(root), OPTIONS, now=NOW)
    assert outcome.status == "published"
    assert outcome.version == "2026.11.28.2"
    assert outcome.cleared_leftovers == 9
    assert files_under(root / "releases" / "2026.11.28") == first_release  # never modified
    catalog = json.loads((root / "catalog.json").read_text())
    assert [r["version"] for r in catalog["releases"]] == ["2026.11.28.2", "2026.11.28"]


def test_a_run_that_stopped_after_the_catalogue_is_completed_next_time(
    tmp_path: Path, tables_dir: Path
) -> None:
    root = tmp_path / "publish"
    scratch = tmp_path / "scratch"
    publish_release(stored(demo_tables(), tables_dir), LocalTarget(scratch), OPTIONS, now=NOW)
    n_files = sum(1 for p in (scratch / "releases").rglob("*") if p.is_file())
    # writes: the release's files, then catalog.json, then latest.json (which fails)
    with pytest.raises(TargetError):
        publish_release(
            stored(demo_tables(), tables_dir),
            FailingTarget(root, fail_at=n_files + 2),
            OPTIONS,
            now=NOW,
        )
    assert json.loads((root / "catalog.json").read_text())["latest"] == "2026.11.28"
    assert not (root / "latest.json").exists()
    outcome = publish_release(
        stored(demo_tables(), tables_dir), LocalTarget(root), OPTIONS, now=NOW
    )
    assert outcome.status == "no_change"
    assert json.loads((root / "latest.json").read_text())["version"] == "2026.11.28"
    assert (root / "index.html").is_file()


def test_a_corrupt_catalogue_is_an_error_not_a_fresh_start(
    tmp_path: Path, tables_dir: Path
) -> None:
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(ReleaseError, match=r"catalog\.json is not valid JSON"):
        publish_release(stored(demo_tables(), tables_dir), LocalTarget(tmp_path), OPTIONS, now=NOW)


def test_publish_and_download_on_s3(s3_bucket: S3Bucket, tmp_path: Path, tables_dir: Path) -> None:
    target: Target = S3Target(s3_bucket.name, "open-data/", endpoint_url=s3_bucket.endpoint_url)
    first = publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
    assert first.status == "published"
    assert (
        publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW).status
        == "no_change"
    )
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = "Changed on S3"
    second = publish_release(stored(tables, tables_dir), target, OPTIONS, now=NOW)
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


def test_download_from_the_local_folder_verifies_every_file(
    tmp_path: Path, tables_dir: Path
) -> None:
    publish_release(
        stored(demo_tables(), tables_dir), LocalTarget(tmp_path / "publish"), OPTIONS, now=NOW
    )
    got = download_release(str(tmp_path / "publish"), tmp_path / "out")
    assert got.version == "2026.11.28"
    listed = (tmp_path / "publish" / "releases" / "2026.11.28" / "SHA256SUMS").read_text()
    assert got.files == len(listed.splitlines()) + 1  # every file it lists, and itself
    assert files_under(tmp_path / "out" / "2026.11.28") == files_under(
        tmp_path / "publish" / "releases" / "2026.11.28"
    )


def test_a_night_that_only_rechecked_its_files_publishes_nothing(
    tmp_path: Path, tables_dir: Path
) -> None:
    target = LocalTarget(tmp_path)
    publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
    tables = demo_tables()
    sources = tables["sources"]
    sources["download"] = "kept"
    sources["checked_at"] = pd.Timestamp("2026-12-06T02:00:00Z")
    sources["reason"] = "fetch failed: HTTP 503; last good copy used"
    sources["http_etag"] = '"abc"'
    again = publish_release(stored(tables, tables_dir), target, OPTIONS, now=NOW)
    assert again.status == "no_change"
    tables["sources"].loc[0, "sha256"] = "f" * 64  # a file whose bytes changed is news
    assert (
        publish_release(stored(tables, tables_dir), target, OPTIONS, now=NOW).status == "published"
    )


def test_the_catalogue_keeps_each_countrys_latest_overall_metrics(
    tmp_path: Path, tables_dir: Path
) -> None:
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
    publish_release(stored(tables, tables_dir), LocalTarget(tmp_path), OPTIONS, now=NOW)
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    shown = catalog["releases"][0]["alignment"]
    assert sorted((r["country_code"], r["year"], r["partner_org_ref"]) for r in shown) == [
        ("GH", 2024, None),
        ("KE", 2024, None),
    ]
    published = pd.read_csv(tmp_path / "releases" / "2026.11.28" / "data" / "alignment_metrics.csv")
    assert len(published) == 8


def test_content_digests_reuse_the_record_of_unchanged_parquet_files(
    tmp_path: Path, tables_dir: Path
) -> None:
    import duckdb

    from publish.tables import CONTENT_DIGESTS, ReleaseTables, Stopwatch

    tables = demo_tables()

    def digests(folder: Path, work: str) -> tuple[dict[str, str], list[str]]:
        """The content digests, and the tables whose CSV had to be written for them."""
        with duckdb.connect() as con:
            data = ReleaseTables(
                con,
                StoredTables(folder, tuple(tables)),
                tables["sources"],
                tmp_path / work,
                Stopwatch(),
            )
            found = data.content_digests()
        written = [p.stem for p in (tmp_path / work).rglob("*.csv") if p.parent.name == "data"]
        return found, sorted(written)

    stored(tables, tables_dir)
    first, written = digests(tables_dir, "first")
    assert (tables_dir / CONTENT_DIGESTS).exists()
    assert written == sorted(t for t in tables if t != "sources")  # all written once
    again, written = digests(tables_dir, "again")
    assert again == first
    assert written == []  # every digest but sources' came from the record

    # a table whose Parquet file changed is digested again, and only that one
    write_tables({"activities": tables["activities"].iloc[1:]}, tables_dir)
    changed, written = digests(tables_dir, "changed")
    assert written == ["activities"]
    assert changed["activities"] != first["activities"]
    assert {t: d for t, d in changed.items() if t != "activities"} == {
        t: d for t, d in first.items() if t != "activities"
    }


class RecordingTarget(LocalTarget):
    """A local target that notes how each object of a release came to be."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.how: dict[str, str] = {}

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.how[key] = "written"
        super().write_bytes(key, data, content_type)

    def write_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        self.how[key] = "written"
        super().write_file(key, path, content_type)

    def copy(self, source: str, key: str, content_type: str | None = None) -> None:
        self.how[key] = f"copied from {source}"
        super().copy(source, key, content_type)


def test_unchanged_tables_are_copied_from_the_previous_release(
    tmp_path: Path, tables_dir: Path
) -> None:
    publish_release(stored(demo_tables(), tables_dir), LocalTarget(tmp_path), OPTIONS, now=NOW)
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = "Changed"
    target = RecordingTarget(tmp_path)
    outcome = publish_release(stored(tables, tables_dir), target, OPTIONS, now=NOW)
    assert outcome.version == "2026.11.28.2"
    new, old = "releases/2026.11.28.2/", "releases/2026.11.28/"
    data = {key[len(new) :]: how for key, how in target.how.items() if "/data/" in key}
    assert data == {
        f"data/{table}.{kind}": "written"
        if table == "activities"
        else f"copied from {old}data/{table}.{kind}"
        for table in (*tables, *NAME_TABLES)  # the codes did not change: nor their names
        for kind in ("csv", "parquet")
    }
    for table in tables:
        for kind in ("csv", "parquet"):
            same = (tmp_path / new / f"data/{table}.{kind}").read_bytes() == (
                tmp_path / old / f"data/{table}.{kind}"
            ).read_bytes()
            assert same is (table != "activities"), (table, kind)
    assert "| activities | 0 | 0 | 1 | 0 |" in (outcome.changelog or "")
    assert "| transactions | 0 | 0 | 0 | 0 |" in (outcome.changelog or "")
    # the copies are verified as any file: the release downloads with every checksum
    assert download_release(str(tmp_path), tmp_path / "got").version == "2026.11.28.2"


def test_unchanged_tables_are_copied_within_s3(
    s3_bucket: S3Bucket, tmp_path: Path, tables_dir: Path
) -> None:
    client = s3_bucket.client()
    calls: list[tuple[str, str]] = []
    for operation in ("PutObject", "CopyObject"):

        def note(params: dict[str, Any], operation: str = operation, **_: Any) -> None:
            calls.append((operation, params["Key"]))

        client.meta.events.register(f"provide-client-params.s3.{operation}", note)
    target = S3Target(s3_bucket.name, "open/", client=client)
    publish_release(stored(demo_tables(), tables_dir), target, OPTIONS, now=NOW)
    tables = demo_tables()
    tables["transactions"].loc[0, "value"] = 1.5
    calls.clear()
    publish_release(stored(tables, tables_dir), target, OPTIONS, now=NOW)
    data = sorted((op, key) for op, key in calls if "/data/" in key)
    assert data == sorted(
        (
            "PutObject" if table == "transactions" else "CopyObject",
            f"open/releases/2026.11.28.2/data/{table}.{kind}",
        )
        for table in (*tables, *NAME_TABLES)
        for kind in ("csv", "parquet")
    )
    for table in ("activities", "sources"):
        assert target.read_bytes(f"releases/2026.11.28.2/data/{table}.csv") == target.read_bytes(
            f"releases/2026.11.28/data/{table}.csv"
        )
