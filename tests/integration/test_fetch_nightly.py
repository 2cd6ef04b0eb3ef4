"""The nightly job against a registry served over real HTTP: what a user sees night by night."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from pipelines.nightly import run_nightly
from tests.conftest import IATI_FIXTURES, IATI_SCHEMAS, RATES
from tests.http_fixture_server import (
    FixtureServer,
    Reply,
    http_server_fixture,  # noqa: F401
    registry_package,
    registry_search,
)

WHO = IATI_FIXTURES / "valid" / "who-arg.xml"
WRI = IATI_FIXTURES / "valid" / "wri-521257057-strategic-plan-2023-2027.xml"
SCHEMA_VERSIONS = ("2.01", "2.02", "2.03")


def _config(tmp_path: Path, server: FixtureServer) -> Path:
    config = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "fetch": {"connect_timeout": 2, "read_timeout": 2, "retries": 1},
        "publish": {"local_dir": str(tmp_path / "publish")},
        "iati": {
            "sources": [
                {
                    "name": "registry",
                    "kind": "registry",
                    "base_url": server.url(""),
                    "publishers": ["who", "wri"],
                }
            ]
        },
        "reference": {
            "exchange_rates": [str(RATES / "imf-monthly-subset.csv")],
            "iati_schemas": server.url("/schemas/version-{version}/"),
            "iati_schema_versions": list(SCHEMA_VERSIONS),
        },
    }
    for version in SCHEMA_VERSIONS:
        for schema in sorted((IATI_SCHEMAS / version).glob("*.xsd")):
            server.file(f"/schemas/version-{version}/{schema.name}", schema.read_bytes())
    path = tmp_path / "compact.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_updated_then_unchanged_then_failed_keeps_the_last_good_copy(
    tmp_path: Path, http_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    who_url = http_server.file("/files/who-arg.xml", WHO.read_bytes())
    wri_url = http_server.file("/files/wri.xml", WRI.read_bytes())
    http_server.route(
        "/api/3/action/package_search",
        registry_search(
            [
                registry_package("who-arg", who_url, "who"),
                registry_package("wri-plan", wri_url, "wri"),
            ]
        ),
    )
    config = _config(tmp_path, http_server)
    instance = dg.DagsterInstance.ephemeral()

    assert run_nightly(config, instance=instance) == 0
    first = capsys.readouterr().out
    assert "2 IATI datasets: 2 updated, 0 unchanged, 0 failed" in first
    assert "published release" in first
    sources = pd.read_parquet(tmp_path / "data" / "tables" / "sources.parquet")
    assert sorted(sources["source_file"]) == ["who-arg", "wri-plan"]
    assert set(sources["status"]) == {"ok"}
    assert sources["uri"].tolist() == sorted([who_url, wri_url], key=lambda u: "wri" in u)
    # both files checked against the IATI schema fetched over HTTP: no schema error
    conformance = pd.read_parquet(tmp_path / "data" / "tables" / "conformance.parquet")
    xsd = conformance[conformance["check"] == "xsd"]
    assert not xsd["rule"].eq("xsd:not_checked").any()
    assert not (xsd["severity"] == "error").any()
    report = json.loads((tmp_path / "publish" / "quality" / "report.json").read_text())
    validity = report["overall"]["validity"]
    assert validity["schema_checked_files"] == validity["schema_valid_files"] == 2
    assert "data-quality report: " in first
    cached = tmp_path / "data" / "reference" / "cache" / "iati-schemas"
    assert (cached / "2.03" / "iati-activities-schema.xsd").is_file()

    # Night two: the server answers 304 Not Modified; nothing is parsed again.
    assert run_nightly(config, instance=instance) == 0
    second = capsys.readouterr().out
    assert "2 IATI datasets: 0 updated, 2 unchanged, 0 failed" in second
    assert "nothing to extract: every dataset's copy is extracted already" in second
    assert "no change since release" in second
    conditional = http_server.requests("/files/who-arg.xml")[-1]
    assert conditional.headers.get("if-none-match")
    schema_request = http_server.requests("/schemas/version-2.03/iati-activities-schema.xsd")[-1]
    assert schema_request.headers.get("if-none-match")  # the cached schema is revalidated
    sources = pd.read_parquet(tmp_path / "data" / "tables" / "sources.parquet")
    assert set(sources["status"]) == {"ok"}  # what the content is, downloaded or not
    assert set(sources["download"]) == {"revalidated"}

    # Night three: WHO's file is broken on the server (HTML error page, then a 500).
    http_server.route("/files/who-arg.xml", Reply(200, b"<html><body>Maintenance</body></html>"))
    assert run_nightly(config, instance=instance) == 0
    third = capsys.readouterr().out
    assert "2 IATI datasets: 0 updated, 1 unchanged, 1 failed" in third
    assert "failed  who-arg:" in third
    assert "last good copy kept" in third
    sources = pd.read_parquet(tmp_path / "data" / "tables" / "sources.parquet").set_index(
        "source_file"
    )
    assert sources.loc["who-arg", "status"] == "ok"  # yesterday's copy, harmonised as before
    assert sources.loc["who-arg", "download"] == "kept"
    assert "fetch failed" in sources.loc["who-arg", "reason"]
    assert "HTML" in sources.loc["who-arg", "reason"]
    assert "last good copy" in sources.loc["who-arg", "reason"]
    activities = pd.read_parquet(tmp_path / "data" / "tables" / "activities.parquet")
    assert (activities["source_file"] == "who-arg").sum() == 157
    assert "no change since release" in third  # same data: nothing new published
    state = json.loads((tmp_path / "data" / "raw" / "state.json").read_text())
    who = state["datasets"]["who-arg"]
    assert who["status"] == "failed"
    assert who["sha256"] == sources.loc["who-arg", "sha256"]  # the last good copy is kept
    assert "HTML" in who["error"]
    # the quality report was rewritten every night, and its trend has all three
    trend = json.loads((tmp_path / "publish" / "quality" / "history.json").read_text())
    assert len(trend) == 3
    assert len({entry["generated_at"] for entry in trend}) == 3


def test_a_bulk_archive_night_by_night(
    tmp_path: Path, http_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The IATI data dump's layout in one ZIP: each member harmonised as its own dataset;
    a ZIP bomb member refused with its reason while the others are published; the next
    night's 304 harmonises nothing."""
    bomb = zipfile.ZipInfo("data/evil/evil-bomb.xml")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/who/who-arg.xml", WHO.read_bytes())
        archive.writestr("data/wri/wri-plan.xml", WRI.read_bytes())
        archive.writestr(bomb, b"<iati-activities>" + b" " * (120 * 1024 * 1024))
    url = http_server.file("/dump/download.zip", buffer.getvalue())
    config_path = _config(tmp_path, http_server)
    config = yaml.safe_load(config_path.read_text())
    config["iati"]["sources"] = [{"name": "dump", "kind": "bulk", "url": url}]
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()

    assert run_nightly(config_path, instance=instance) == 0
    first = capsys.readouterr().out
    assert "3 IATI datasets: 2 updated, 0 unchanged, 1 failed" in first
    assert "failed  evil-bomb: " in first
    assert "data/evil/evil-bomb.xml" in first
    assert "(fetch.max_file_mb)" in first
    assert "published release" in first
    sources = pd.read_parquet(tmp_path / "data" / "tables" / "sources.parquet")
    shown = dict(zip(sources["source_file"], sources["uri"], strict=True))
    assert shown == {
        "evil-bomb": f"{url}#data/evil/evil-bomb.xml",
        "who-arg": f"{url}#data/who/who-arg.xml",
        "wri-plan": f"{url}#data/wri/wri-plan.xml",
    }
    status = dict(zip(sources["source_file"], sources["status"], strict=True))
    reason = dict(zip(sources["source_file"], sources["reason"], strict=True))
    assert status == {"evil-bomb": "rejected", "who-arg": "ok", "wri-plan": "ok"}
    assert reason["evil-bomb"] == (
        f"could not be fetched: {url}: member 'data/evil/evil-bomb.xml': its header declares "
        "120.0 MB unpacked, over the limit of 100 MB (fetch.max_file_mb); not read"
    )
    activities = pd.read_parquet(tmp_path / "data" / "tables" / "activities.parquet")
    assert (activities["source_file"] == "who-arg").sum() == 157

    assert run_nightly(config_path, instance=instance) == 0
    second = capsys.readouterr().out
    assert "3 IATI datasets: 0 updated, 2 unchanged, 1 failed" in second
    assert "nothing to extract: every dataset's copy is extracted already" in second
    assert http_server.requests("/dump/download.zip")[-1].headers.get("if-none-match")


def _latest_changelog(publish: Path) -> str:
    folders = sorted(
        (publish / "releases").glob("*/CHANGELOG.md"),
        key=lambda p: [int(n) for n in p.parent.name.replace("-", ".").split(".")],
    )
    return folders[-1].read_text(encoding="utf-8")


def test_a_dataset_leaving_the_registry_is_kept_named_then_removed(
    tmp_path: Path, http_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real files night by night: WRI's dataset leaves the Registry's listing for a night
    (kept, named, never unpublished), comes back, then leaves for good (kept one night,
    then removed and named); a file rejected for its content stays rejected on quiet
    nights; a 304 leaves fetched_at as it was and moves checked_at."""
    broken = IATI_FIXTURES / "invalid" / "truncated.xml"
    packages = [
        registry_package("who-arg", http_server.file("/files/who.xml", WHO.read_bytes()), "who"),
        registry_package("wri-plan", http_server.file("/files/wri.xml", WRI.read_bytes()), "wri"),
        registry_package(
            "who-broken", http_server.file("/files/broken.xml", broken.read_bytes()), "who"
        ),
    ]
    listing = list(packages)
    http_server.route("/api/3/action/package_search", registry_search(listing))
    config_path = _config(tmp_path, http_server)
    config = yaml.safe_load(config_path.read_text())
    config["iati"]["keep_missing_nights"] = 1
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    tables = tmp_path / "data" / "tables"
    report = tmp_path / "publish" / "quality" / "report.json"

    def night(*names: str) -> tuple[str, pd.DataFrame]:
        listing[:] = [p for p in packages if p["name"] in names]
        assert run_nightly(config_path, instance=instance) == 0
        return capsys.readouterr().out, pd.read_parquet(tables / "sources.parquet").set_index(
            "source_file"
        )

    def wri_activities() -> int:
        activities = pd.read_parquet(tables / "activities.parquet")
        return int((activities["source_file"] == "wri-plan").sum())

    def reported(name: str) -> dict[str, object]:
        files = json.loads(report.read_text(encoding="utf-8"))["files"]
        return next(f for f in files if f["source_file"] == name)

    everyone = ("who-arg", "wri-plan", "who-broken")
    out, sources = night(*everyone)
    assert "3 IATI datasets: 3 updated, 0 unchanged, 0 failed, 0 missing, 0 removed" in out
    assert sources.loc["who-broken", "status"] == "rejected"
    first_fetch = sources.loc["who-arg", "fetched_at"]
    first_check = sources.loc["who-arg", "checked_at"]
    published = wri_activities()
    assert published > 0

    # A quiet night: every file revalidated (304); the rejected file stays rejected.
    out, sources = night(*everyone)
    assert "3 IATI datasets: 0 updated, 3 unchanged, 0 failed" in out
    assert sources.loc["who-broken", "status"] == "rejected"
    assert set(sources["download"]) == {"revalidated"}
    assert sources.loc["who-arg", "fetched_at"] == first_fetch
    assert sources.loc["who-arg", "checked_at"] >= first_check
    assert reported("who-broken")["status"] == "rejected"

    # WRI leaves the listing: kept with its last good copy, and named everywhere (WHO
    # publishes new activities that night, so there is a release and its CHANGELOG).
    http_server.file("/files/who.xml", WHO.read_bytes().replace(b"AR-", b"AR_"))
    out, sources = night("who-arg", "who-broken")
    since = dt.datetime.now(dt.UTC).date().isoformat()
    reason = f"not in the Registry listing since {since}, kept 1 of 1 nights"
    assert f"missing  wri-plan: {reason}" in out
    assert "1 updated, 1 unchanged, 0 failed, 1 missing, 0 removed" in out
    assert sources.loc["wri-plan", "status"] == "ok"
    assert sources.loc["wri-plan", "download"] == "kept"
    assert reason in sources.loc["wri-plan", "reason"]
    assert wri_activities() == published  # not unpublished
    assert reason in str(reported("wri-plan")["reason"])
    changelog = _latest_changelog(tmp_path / "publish")
    assert "## Sources whose last good copy stood in" in changelog
    assert f"- `wri-plan`: {reason}; the last good copy, fetched " in changelog
    assert "## Sources no longer used" not in changelog

    # Back the next night: fetched as usual, never dropped.
    out, sources = night(*everyone)
    assert "0 missing, 0 removed" in out
    assert sources.loc["wri-plan", "download"] == "revalidated"
    assert wri_activities() == published

    # Gone for good: kept one night, then removed and named in the output, the
    # sources table, the quality report and the CHANGELOG.
    night("who-arg", "who-broken")
    out, sources = night("who-arg", "who-broken")
    removed = f"not in the Registry listing since {since}; removed (after 1 night)"
    assert f"removed  wri-plan: {removed}" in out
    assert sources.loc["wri-plan", "status"] == "rejected"
    assert sources.loc["wri-plan", "reason"] == removed
    assert wri_activities() == 0
    assert reported("wri-plan")["reason"] == removed
    changelog = _latest_changelog(tmp_path / "publish")
    assert "## Sources no longer used" in changelog
    assert f"- `wri-plan`: rejected: {removed}" in changelog
    state = json.loads((tmp_path / "data" / "raw" / "state.json").read_text())
    assert state["datasets"]["wri-plan"]["status"] == "removed"

    # The night after, it is no longer reported.
    out, sources = night("who-arg", "who-broken")
    assert "wri-plan" not in out
    assert "wri-plan" not in sources.index


def test_a_configured_publisher_with_no_datasets_is_someone_to_chase(
    tmp_path: Path, http_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A publisher the registry source is told to fetch (`caf`) that has no activity
    dataset in the listing: the run names it, and the quality report makes it a contributor
    that sent nothing, in its list of whom to chase."""
    who_url = http_server.file("/files/who-arg.xml", WHO.read_bytes())
    http_server.route(
        "/api/3/action/package_search",
        registry_search([registry_package("who-arg", who_url, "who")]),
    )
    config_path = _config(tmp_path, http_server)
    config = yaml.safe_load(config_path.read_text())
    config["iati"]["sources"][0]["publishers"] = ["who", "caf"]
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    assert run_nightly(config_path, instance=dg.DagsterInstance.ephemeral()) == 0
    out = capsys.readouterr().out
    assert "  no datasets  publisher 'caf' of source 'registry': nothing received" in out
    report = json.loads((tmp_path / "publish" / "quality" / "report.json").read_text())
    states = {c["id"]: c["figures"]["validity"]["state"] for c in report["contributors"]}
    assert states["publisher:caf"] == "nothing_received"
    assert states["publisher:XM-DAC-928"] == "valid"  # WHO, by its organisation identifier
    markdown = (tmp_path / "publish" / "quality" / "report.md").read_text()
    chase = markdown.split("## Whom to chase", 1)[1].split("\n## ", 1)[0]
    assert "| caf (caf) | publisher | nothing_received |" in chase
