"""IATI sources against a real local server shaped like the Registry (CKAN) and the
Datastore (Solr), plus local files and plain URLs: what updated, what is unchanged, what
stayed as last good after a failure, and secrets absent from everything a user sees."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assets.fetch import sources
from assets.fetch.http import HttpClient
from assets.fetch.rawstore import HISTORY_LENGTH, RawStore, RawStoreError
from assets.fetch.sources import (
    DatasetRef,
    DatastoreSource,
    FetchResult,
    LocalSource,
    MissingSecretError,
    RegistrySource,
    SourceAdapter,
    SourceConfigError,
    UrlSource,
    adapters_from_settings,
    fetch_all,
)
from assets.iati.xml import FileHeader, iter_activities
from assets.settings import IatiSource, Settings, load_settings
from assets.storage.s3 import S3Target
from tests.conftest import IATI_FIXTURES
from tests.http_fixture_server import (  # noqa: F401 - fixture
    FixtureServer,
    Reply,
    activity_snippets,
    datastore_select,
    http_server_fixture,
    registry_package,
    registry_search,
)
from tests.s3 import S3Bucket, moto_endpoint_fixture, s3_bucket_fixture  # noqa: F401 - fixtures

VALID = IATI_FIXTURES / "valid"
API_KEY = "dskey-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
HTML = b"<!DOCTYPE html>\n<html><body><h1>Down for maintenance</h1></body></html>\n"
#: Registry dataset name -> (publisher, fixture file)
REGISTRY_DATASETS = {
    "acfspain-ph": ("acfspain", "acfspain-ph.xml"),
    "worldbank-sv": ("worldbank", "worldbank-sv.xml"),
    "testpub-currency": ("testpub", "default_currency.xml"),
    "testpub-locales": ("testpub", "multiple_locales_descriptions.xml"),
}
SEARCH = "/api/3/action/package_search"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def by_key(results: list[FetchResult]) -> dict[str, FetchResult]:
    return {r.ref.key: r for r in results}


def statuses(results: list[FetchResult]) -> dict[str, str]:
    return {r.ref.key: r.status for r in results}


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(timeout=(1, 1), retries=2, backoff=0, sleep=lambda _: None)


@pytest.fixture
def store(tmp_path: Path) -> RawStore:
    return RawStore.local(tmp_path / "data")


def settings_with(*sources: IatiSource, countries: tuple[str, ...] = ("PH", "SV")) -> Settings:
    return dataclasses.replace(load_settings(), iati_sources=sources, countries=countries)


@pytest.fixture
def registry(http_server: FixtureServer) -> str:
    """A Registry listing four activity files, an organisation file and a broken dataset."""
    packages = [
        registry_package(name, http_server.file(f"/files/{file}", (VALID / file).read_bytes()), pub)
        for name, (pub, file) in REGISTRY_DATASETS.items()
    ]
    organisation = IATI_FIXTURES / "invalid" / "organisation-file-not-activities.xml"
    org_url = http_server.file("/files/org.xml", organisation.read_bytes())
    packages.append(registry_package("testpub-org", org_url, "testpub", filetype="organisation"))
    html_url = http_server.route("/files/maintenance.xml", Reply(200, HTML))
    packages.append(registry_package("testpub-maintenance", html_url, "testpub"))
    http_server.route(SEARCH, registry_search(packages))
    return http_server.base_url


# -- registry -----------------------------------------------------------------------------


def test_registry_first_run_stores_each_activity_file_and_skips_organisation_files(
    registry: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    source = RegistrySource("registry", client, registry, page_size=2)
    seen: list[str] = []
    results = by_key(fetch_all([source], store, progress=lambda r: seen.append(r.ref.key)))

    assert set(results) == {*REGISTRY_DATASETS, "testpub-maintenance"}
    assert seen == sorted(results)
    for name, (publisher, file) in REGISTRY_DATASETS.items():
        result = results[name]
        assert result.status == "updated"
        assert result.ref.publisher == publisher
        assert result.sha256 == sha256_of(VALID / file)
        assert result.path is not None
        assert result.path.read_bytes() == (VALID / file).read_bytes()
        assert result.http_status == 200
        assert result.etag
    broken = results["testpub-maintenance"]
    assert broken.status == "failed"
    assert broken.sha256 is None
    assert broken.path is None
    assert broken.error == (
        f"GET {http_server.url('/files/maintenance.xml')} failed: "
        "the server returned an HTML page, not IATI XML"
    )
    # Six packages two at a time, in a stable order; the organisation file never fetched.
    searches = http_server.requests(SEARCH)
    assert [r.param("start") for r in searches] == ["0", "2", "4"]
    assert all(r.param("sort") == "name asc" and r.param("fq") is None for r in searches)
    assert http_server.requests("/files/org.xml") == []


def test_registry_second_run_is_unchanged_through_not_modified(
    registry: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    source = RegistrySource("registry", client, registry, page_size=2)
    first = by_key(fetch_all([source], store))
    time.sleep(1.1)  # the state's times are to the second
    second = by_key(fetch_all([source], store))

    for name, (_, file) in REGISTRY_DATASETS.items():
        assert second[name].status == "unchanged"
        # not downloaded again: when the bytes came stays, when the source was asked moves
        assert second[name].fetched_at == first[name].fetched_at
        assert (second[name].checked_at or "") > (first[name].checked_at or "~")
        assert second[name].http_status == 304
        assert second[name].sha256 == first[name].sha256
        assert second[name].path == first[name].path
        last = http_server.requests(f"/files/{file}")[-1]
        assert last.headers["if-none-match"] == first[name].etag
    record = store.records()["acfspain-ph"]
    assert record.status == "unchanged"
    assert [h["status"] for h in record.history] == ["updated", "unchanged"]
    assert second["acfspain-ph"].download == "revalidated"
    assert first["acfspain-ph"].download == "downloaded"
    assert second["testpub-maintenance"].status == "failed"


def test_registry_publishers_filter_the_listing(
    registry: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    source = RegistrySource("registry", client, registry, publishers=["worldbank"])
    assert [ref.key for ref in source.list_datasets()] == ["worldbank-sv"]
    assert http_server.requests(SEARCH)[0].param("fq") == "organization:worldbank"


def test_a_failed_refresh_keeps_the_last_good_copy_and_says_why(
    registry: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    source = RegistrySource("registry", client, registry)
    good = by_key(fetch_all([source], store))["acfspain-ph"]
    url = http_server.route("/files/acfspain-ph.xml", Reply(500, b"Internal error"))

    failed = by_key(fetch_all([source], store))["acfspain-ph"]
    assert failed.status == "failed"
    assert failed.error == f"GET {url} failed after 3 attempts: HTTP 500 Internal Server Error"
    assert failed.http_status == 500
    assert failed.sha256 == good.sha256
    assert failed.path is not None
    assert failed.path.read_bytes() == (VALID / "acfspain-ph.xml").read_bytes()
    record = store.records()["acfspain-ph"]
    assert (record.status, record.sha256, record.error) == ("failed", good.sha256, failed.error)
    assert record.fetched_at == good.fetched_at
    assert record.history[-1] == {
        "at": record.checked_at,
        "status": "failed",
        "sha256": None,
        "error": failed.error,
    }

    # The publisher fixes the file (new content, new ETag): the next run updates.
    changed = (VALID / "acfspain-ph.xml").read_bytes().replace(b"typhoon", b"Typhoon")
    http_server.file("/files/acfspain-ph.xml", changed)
    fixed = by_key(fetch_all([source], store))["acfspain-ph"]
    assert fixed.status == "updated"
    assert fixed.sha256 == hashlib.sha256(changed).hexdigest()
    assert fixed.error is None
    record = store.records()["acfspain-ph"]
    assert (record.status, record.error, record.changed_at) == ("updated", None, record.checked_at)
    assert record.etag == fixed.etag != good.etag


def test_a_listing_failure_keeps_known_datasets_and_other_sources_go_on(
    registry: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    registry_source = RegistrySource("registry", client, registry)
    local_source = LocalSource("files", [VALID / "who-arg.xml"])
    first = by_key(fetch_all([registry_source, local_source], store))
    search = http_server.route(SEARCH, Reply(503, b"down"))

    second = by_key(fetch_all([registry_source, local_source], store))
    listing = second["registry-listing"]
    assert listing.status == "failed"
    assert listing.error is not None
    assert "listing the datasets of source 'registry' failed" in listing.error
    assert f"GET {search}" in listing.error
    assert "HTTP 503 Service Unavailable" in listing.error
    for name in REGISTRY_DATASETS:
        kept = second[name]
        assert kept.status == "failed"
        assert kept.sha256 == first[name].sha256
        assert kept.path is not None
        assert kept.path.is_file()
        assert kept.error is not None
        assert kept.error.startswith("not refreshed: listing the datasets")
    assert second["who-arg"].status == "unchanged"
    assert "registry-listing" not in store.records()


# -- plain URLs and local files -------------------------------------------------------------


def test_url_source_keys_from_file_names_and_secrets_kept_out(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    acf = (VALID / "acfspain-ph.xml").read_bytes()
    http_server.file("/a/acfspain-ph.xml", acf)
    http_server.file("/b/acfspain-ph.xml", acf)
    http_server.file("/c/worldbank-sv.xml", (VALID / "worldbank-sv.xml").read_bytes())
    urls = [
        http_server.url(f"/a/acfspain-ph.xml?token={API_KEY}"),
        http_server.url("/b/acfspain-ph.xml"),
        http_server.url("/c/worldbank-sv.xml"),
        http_server.url("/d/gone.xml"),
    ]
    source = UrlSource("urls", client, urls)
    results = by_key(fetch_all([source], store))

    assert statuses(list(results.values())) == {
        "acfspain-ph": "updated",
        "acfspain-ph-2": "updated",
        "worldbank-sv": "updated",
        "gone": "failed",
    }
    assert results["acfspain-ph"].ref.uri == http_server.url("/a/acfspain-ph.xml")
    assert http_server.requests("/a/acfspain-ph.xml")[0].param("token") == API_KEY
    assert results["acfspain-ph"].sha256 == results["acfspain-ph-2"].sha256  # stored once
    assert (
        results["gone"].error == f"GET {http_server.url('/d/gone.xml')} failed: HTTP 404 Not Found"
    )
    state = (store.target.read_bytes(store.state_key) or b"").decode()
    assert API_KEY not in state
    assert all(API_KEY not in (r.error or "") + r.ref.uri for r in results.values())

    again = by_key(fetch_all([source], store))
    assert again["acfspain-ph"].status == "unchanged"


def test_url_source_names_give_the_keys(http_server: FixtureServer, client: HttpClient) -> None:
    source = UrlSource("urls", client, [http_server.url("/feed?id=7")], names=["ministry feed"])
    assert [ref.key for ref in source.list_datasets()] == ["ministry_feed"]


def test_local_files_are_stored_then_unchanged_and_bad_files_fail(
    tmp_path: Path, store: RawStore
) -> None:
    page = tmp_path / "inbox" / "export.xml"
    page.parent.mkdir()
    page.write_bytes(HTML)
    source = LocalSource("files", [VALID / "acfspain-ph.xml", page.parent])

    first = by_key(fetch_all([source], store))
    assert statuses(list(first.values())) == {"acfspain-ph": "updated", "export": "failed"}
    assert first["export"].error == f"{page.as_uri()}: the file is an HTML page, not IATI XML"
    assert first["acfspain-ph"].ref.uri == (VALID / "acfspain-ph.xml").as_uri()

    second = by_key(fetch_all([source], store))
    assert second["acfspain-ph"].status == "unchanged"
    assert second["acfspain-ph"].sha256 == sha256_of(VALID / "acfspain-ph.xml")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the raw store reads in (hashes and stores), in order."""
    read: list[Path] = []
    put_file = RawStore.put_file

    def counted(self: RawStore, file: Path, **kwargs: Any) -> str:
        read.append(file)
        return put_file(self, file, **kwargs)

    monkeypatch.setattr(RawStore, "put_file", counted)
    return read


def test_a_local_file_whose_stat_is_the_same_is_not_read_again(
    tmp_path: Path, store: RawStore, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settled local file is read once; a file rewritten with other bytes of the same size
    and its modification time set back is read again (its change time moved)."""
    path = tmp_path / "report.xml"
    original = (VALID / "acfspain-ph.xml").read_bytes()
    path.write_bytes(original)
    monkeypatch.setattr(sources, "SETTLING_SECONDS", 0)  # the file was written just now
    source = LocalSource("files", [path])

    first = fetch_all([source], store)[0]
    assert (first.status, first.sha256, len(reads)) == ("updated", sha256_of(path), 1)
    for _ in range(2):
        again = fetch_all([source], store)[0]
        assert (again.status, again.sha256) == ("unchanged", first.sha256)
        assert again.bytes == len(original)
    assert len(reads) == 1  # not read on the second and third nights

    changed = original.replace(b"Philippines", b"Filipinas!!", 1)
    assert len(changed) == len(original)
    assert changed != original
    modified = path.stat().st_mtime_ns
    path.write_bytes(changed)
    os.utime(path, ns=(modified, modified))  # as `cp -p` or `rsync -t` would leave it
    third = fetch_all([source], store)[0]
    assert (third.status, third.sha256, len(reads)) == ("updated", sha256_of(path), 2)


def test_a_local_file_read_while_it_may_still_change_is_read_again(
    tmp_path: Path, store: RawStore, reads: list[Path]
) -> None:
    path = tmp_path / "report.xml"
    path.write_bytes((VALID / "acfspain-ph.xml").read_bytes())
    source = LocalSource("files", [path])  # written a moment ago: not settled
    assert [r.status for r in fetch_all([source], store)] == ["updated"]
    record = store.last_good("report")
    assert record is not None
    assert record.file_stat is None
    assert [r.status for r in fetch_all([source], store)] == ["unchanged"]
    assert len(reads) == 2


def test_a_local_file_over_the_size_limit_fails_before_it_is_read_keeping_the_last_copy(
    tmp_path: Path, store: RawStore
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    growing = folder / "growing.xml"
    growing.write_bytes((VALID / "acfspain-ph.xml").read_bytes())
    source = LocalSource("files", [folder], max_bytes=1_000_000)
    assert by_key(fetch_all([source], store))["growing"].status == "updated"
    with growing.open("r+b") as handle:  # 2 GiB, sparse: nothing is written to disk
        handle.truncate(2 * 2**30)
    result = by_key(fetch_all([source], store))["growing"]
    assert result.status == "failed"
    assert result.error == (
        f"{growing.as_uri()}: the file is 2,048.0 MB, over the limit of 1 MB (fetch.max_file_mb)"
    )
    kept = store.last_good("growing")
    assert kept is not None
    assert kept.sha256 == sha256_of(VALID / "acfspain-ph.xml")


def test_a_missing_local_file_fails_but_keeps_its_last_good_copy(
    tmp_path: Path, store: RawStore
) -> None:
    path = tmp_path / "report.xml"
    path.write_bytes((VALID / "default_currency.xml").read_bytes())
    source = LocalSource("files", [path])
    good = fetch_all([source], store)[0]
    path.unlink()
    gone = fetch_all([source], store)[0]
    assert (gone.status, gone.sha256) == ("failed", good.sha256)
    assert gone.error == f"{path.as_uri()}: no such file"


def test_a_key_listed_by_two_sources_is_fetched_once(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    http_server.file("/acfspain-ph.xml", (VALID / "acfspain-ph.xml").read_bytes())
    local = LocalSource("files", [VALID / "acfspain-ph.xml"])
    remote = UrlSource("urls", client, [http_server.url("/acfspain-ph.xml")])
    results = fetch_all([local, remote], store)
    assert [(r.ref.source_name, r.status) for r in results] == [
        ("files", "updated"),
        ("urls", "failed"),
    ]
    assert "listed by sources 'files' and 'urls'" in (results[1].error or "")
    assert http_server.requests("/acfspain-ph.xml") == []


# -- the Datastore --------------------------------------------------------------------------


@pytest.fixture
def datastore(http_server: FixtureServer) -> str:
    activities = {
        "PH": activity_snippets(VALID / "acfspain-ph.xml"),
        "SV": activity_snippets(VALID / "worldbank-sv.xml"),
    }
    http_server.route("/datastore/activity/select", datastore_select(activities, API_KEY))
    return http_server.url("/datastore")


def datastore_source(base_url: str, **options: Any) -> IatiSource:
    return IatiSource("datastore", "datastore", options={"base_url": base_url, **options})


def test_datastore_assembles_one_file_per_country_from_every_page(
    datastore: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    settings = settings_with(datastore_source(datastore, page_size=4))
    adapters = adapters_from_settings(settings, client, environ={"IATI_API_KEY": API_KEY})
    results = by_key(fetch_all(adapters, store))

    assert statuses(list(results.values())) == {
        "datastore-PH": "updated",
        "datastore-SV": "updated",
    }
    for country, file in (("PH", "acfspain-ph.xml"), ("SV", "worldbank-sv.xml")):
        path = results[f"datastore-{country}"].path
        assert path is not None
        header = FileHeader()
        identifiers = [a.element.findtext("iati-identifier") for a in iter_activities(path, header)]
        assert header.version == "2.03"
        assert header.generated is None
        assert identifiers == sorted(i for i, _ in activity_snippets(VALID / file))
    pages = [r for r in http_server.requests("/datastore/activity/select")]
    # the countries are fetched at once, each country's pages in order
    asked = [(r.param("q") or "", r.param("start")) for r in pages]
    assert sorted(asked, key=lambda q: q[0]) == [
        ("recipient_country_code:PH", "0"),
        ("recipient_country_code:PH", "4"),
        ("recipient_country_code:SV", "0"),
        ("recipient_country_code:SV", "4"),
        ("recipient_country_code:SV", "8"),
        ("recipient_country_code:SV", "12"),
    ]
    assert {(r.param("fl"), r.param("wt"), r.param("sort"), r.param("rows")) for r in pages} == {
        ("iati_identifier,iati_xml", "json", "id asc", "4")
    }
    assert all(r.headers["ocp-apim-subscription-key"] == API_KEY for r in pages)

    again = by_key(fetch_all(adapters, store))
    assert statuses(list(again.values())) == {
        "datastore-PH": "unchanged",
        "datastore-SV": "unchanged",
    }
    assert again["datastore-PH"].sha256 == results["datastore-PH"].sha256


def test_datastore_refusing_the_key_fails_without_showing_it(
    datastore: str, client: HttpClient, store: RawStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    wrong = "wrongkey-0000000000000000000000000000"
    settings = settings_with(datastore_source(datastore, countries=["PH"]))
    adapters = adapters_from_settings(settings, client, environ={"IATI_API_KEY": wrong})
    (result,) = fetch_all(adapters, store)

    assert result.status == "failed"
    assert result.http_status == 401
    assert result.error == (
        f"GET {datastore}/activity/select?q=recipient_country_code%3APH"
        "&fl=iati_identifier%2Ciati_xml&rows=1000&start=0&wt=json&sort=id+asc failed: "
        "HTTP 401 Unauthorized (check the subscription key in IATI_API_KEY)"
    )
    state = (store.target.read_bytes(store.state_key) or b"").decode()
    seen = [state, result.error, result.ref.uri, repr(adapters[0]), caplog.text]
    assert all(wrong not in text for text in seen)


def test_datastore_without_a_key_is_reported_and_the_other_sources_run(
    datastore: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    settings = settings_with(
        datastore_source(datastore, api_key_env="MY_IATI_KEY"),
        IatiSource("files", "local", paths=(VALID / "acfspain-ph.xml",)),
    )
    adapters = adapters_from_settings(settings, client, environ={"IATI_API_KEY": API_KEY})
    results = by_key(fetch_all(adapters, store))

    assert statuses(list(results.values())) == {
        "datastore-listing": "failed",
        "acfspain-ph": "updated",
    }
    error = results["datastore-listing"].error or ""
    assert "source 'datastore' (kind datastore) needs an IATI Datastore API" in error
    assert "set the environment variable MY_IATI_KEY" in error
    assert http_server.requests() == []

    with pytest.raises(MissingSecretError, match="set the environment variable MY_IATI_KEY"):
        adapters_from_settings(settings, client, environ={}, strict=True)


def test_datastore_leaves_out_broken_activities_with_a_warning(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    good = activity_snippets(VALID / "default_currency.xml")
    broken = [("XX-1", "<iati-activity><title>unclosed</iati-activity>"), ("XX-2", "")]
    http_server.route("/ds/activity/select", datastore_select({"AM": good + broken}, API_KEY))
    source = DatastoreSource("ds", client, API_KEY, ["AM"], http_server.url("/ds"))
    (result,) = fetch_all([source], store)
    assert result.status == "updated"
    assert result.warnings == [
        "2 activities for AM left out: no iati_xml, or not a well-formed <iati-activity>"
    ]
    assert result.path is not None
    assert len(list(iter_activities(result.path, FileHeader()))) == 1


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (IatiSource("x", "ftp"), "source 'x': unknown kind 'ftp'; expected one of bulk, datastore"),
        (IatiSource("x", "local"), "source 'x' (kind local) needs paths"),
        (IatiSource("x", "url"), "source 'x' (kind url) needs urls"),
        (
            IatiSource("x", "url", options={"urls": ["ftp://example.org/a.xml"]}),
            "each of urls must be an http(s) URL",
        ),
        (
            IatiSource("x", "url", options={"urls": ["https://e.org/a.xml"], "names": ["a", "b"]}),
            "names must give one name per URL (2 names for 1 URLs)",
        ),
        (
            IatiSource("x", "registry", options={"publisher": ["dfid"]}),
            "unknown option(s) publisher; accepted: base_url, kind, name, page_size, paths",
        ),
        (
            IatiSource("x", "registry", options={"page_size": 5000}),
            "page_size must be a whole number from 1 to 1000",
        ),
        (
            IatiSource("x", "datastore", options={"countries": ["Kenya"]}),
            "countries must be ISO 3166-1 alpha-2 codes",
        ),
    ],
)
def test_bad_configuration_names_the_source(
    source: IatiSource, message: str, client: HttpClient
) -> None:
    with pytest.raises(SourceConfigError) as caught:
        adapters_from_settings(settings_with(source), client, environ={"IATI_API_KEY": API_KEY})
    assert message in str(caught.value)


def test_dataset_keys_must_be_safe() -> None:
    with pytest.raises(ValueError, match="unsafe dataset key"):
        DatasetRef("../etc", "x", "url", "https://e.org")


# -- one contract for every kind of source ---------------------------------------------------


def _contract_source(kind: str, server: FixtureServer) -> IatiSource:
    acf = (VALID / "acfspain-ph.xml").read_bytes()
    if kind == "local":
        return IatiSource("src", "local", paths=(VALID / "acfspain-ph.xml",))
    if kind == "url":
        return IatiSource("src", "url", options={"urls": [server.file("/x/acf.xml", acf)]})
    if kind == "registry":
        url = server.file("/x/acf.xml", acf)
        server.route(SEARCH, registry_search([registry_package("acf-ph", url, "acf")]))
        return IatiSource("src", "registry", options={"base_url": server.base_url})
    activities = {"PH": activity_snippets(VALID / "acfspain-ph.xml")}
    server.route("/ds/activity/select", datastore_select(activities, API_KEY))
    return IatiSource(
        "src", "datastore", options={"base_url": server.url("/ds"), "countries": ["PH"]}
    )


@pytest.mark.parametrize("kind", ["local", "url", "registry", "datastore"])
def test_every_source_kind_keeps_the_contract(
    kind: str, http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    settings = settings_with(_contract_source(kind, http_server))
    (adapter,) = adapters_from_settings(settings, client, environ={"IATI_API_KEY": API_KEY})
    assert isinstance(adapter, SourceAdapter)
    assert adapter.kind == kind
    doc = adapter.__doc__ or ""
    assert "Domain:" in doc
    assert "Caveats:" in doc
    assert "Arguments:" in doc
    refs = adapter.list_datasets()
    assert len(refs) == 1
    (ref,) = refs
    assert (ref.source_name, ref.kind) == ("src", kind)

    first = adapter.fetch(ref, store)
    second = adapter.fetch(ref, store)
    assert (first.status, second.status) == ("updated", "unchanged")
    assert first.sha256 == second.sha256
    assert first.path is not None
    assert first.path.is_file()
    record = store.records()[ref.key]
    assert (record.key, record.source, record.kind, record.uri) == (ref.key, "src", kind, ref.uri)
    assert API_KEY not in json.dumps(record.to_dict())


# -- the raw store ---------------------------------------------------------------------------


def _result(ref: DatasetRef, status: str, sha256: str | None, error: str | None = None) -> Any:
    return FetchResult(ref, status, sha256, None, error, None, None, None)


def test_history_keeps_the_last_ten_attempts(store: RawStore) -> None:
    ref = DatasetRef("acf", "files", "local", "acf.xml")
    sha256 = store.put_file(VALID / "acfspain-ph.xml")
    store.record(_result(ref, "updated", sha256))
    for attempt in range(12):
        store.record(_result(ref, "failed", None, f"attempt {attempt}"))
    record = store.last_good("acf")
    assert record is not None
    assert record.sha256 == sha256
    assert len(record.history) == HISTORY_LENGTH
    assert record.history[-1]["error"] == "attempt 11"


def test_an_unreadable_state_is_reported_not_overwritten(store: RawStore) -> None:
    store.target.write_bytes(store.state_key, b"{not json")
    with pytest.raises(RawStoreError, match=r"state\.json is not a readable fetch state"):
        store.record(_result(DatasetRef("a", "s", "local", "a.xml"), "failed", None, "x"))
    assert store.target.read_bytes(store.state_key) == b"{not json"


def test_raw_store_on_s3(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    target = S3Target(s3_bucket.name, "cdcompact", endpoint_url=s3_bucket.endpoint_url)
    store = RawStore(target, tmp_path / "cache")
    source_file = VALID / "acfspain-ph.xml"
    sha256 = store.put_file(source_file)
    assert store.put_file(source_file) == sha256  # idempotent
    key = f"raw/sha256/{sha256[:2]}/{sha256}.xml"
    assert list(target.list_keys("raw/")) == [key]
    assert store.has(sha256)

    fresh = RawStore(target, tmp_path / "other-cache")  # another machine: empty cache
    path = fresh.local_path(sha256)
    assert path.read_bytes() == source_file.read_bytes()
    assert path.is_relative_to(tmp_path / "other-cache")

    ref = DatasetRef("acfspain-ph", "urls", "url", "https://example.org/acfspain-ph.xml")
    store.record(_result(ref, "updated", sha256))
    store.record(_result(ref, "failed", None, "GET ... failed: HTTP 500"))
    state = json.loads(target.read_bytes("raw/state.json") or b"{}")
    assert state["datasets"]["acfspain-ph"]["sha256"] == sha256
    assert state["datasets"]["acfspain-ph"]["status"] == "failed"

    # An object damaged in the bucket is caught when it is read back.
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=f"cdcompact/{key}", Body=b"<x/>")
    with pytest.raises(RawStoreError, match="is damaged"):
        RawStore(target, tmp_path / "third-cache").local_path(sha256)


def test_fetch_all_with_an_s3_store(
    s3_bucket: S3Bucket, tmp_path: Path, http_server: FixtureServer, client: HttpClient
) -> None:
    target = S3Target(s3_bucket.name, "cdcompact", endpoint_url=s3_bucket.endpoint_url)
    store = RawStore(target, tmp_path / "cache")
    url = http_server.file("/wb.xml", (VALID / "worldbank-sv.xml").read_bytes())
    sources: list[SourceAdapter] = [UrlSource("urls", client, [url])]
    assert statuses(fetch_all(sources, store)) == {"wb": "updated"}
    (result,) = fetch_all(sources, store)
    assert (result.status, result.http_status) == ("unchanged", 304)
    assert result.path is not None
    assert result.path.read_bytes() == (VALID / "worldbank-sv.xml").read_bytes()


def test_a_batch_rewrites_the_state_at_its_end_not_every_hundred_records(
    store: RawStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write of the state rewrites every dataset's record: a batch over thousands of
    datasets writes it at its end, and on the way only once ``flush_seconds`` passed."""
    sha256 = store.put_file(VALID / "acfspain-ph.xml")
    writes: list[int] = []
    write_state = RawStore._write_state

    def counted(self: RawStore, records: dict[str, Any]) -> None:
        writes.append(len(records))
        write_state(self, records)

    monkeypatch.setattr(RawStore, "_write_state", counted)
    refs = [DatasetRef(f"d{i}", "files", "local", f"d{i}.xml") for i in range(450)]
    with store.batch():
        for ref in refs:
            store.record(_result(ref, "updated", sha256))
        assert writes == []
        assert store.last_good("d7") is not None  # the batch's own records, before a write
    assert writes == [450]
    with store.batch(flush_seconds=0):  # a long run: written every hundred records
        for ref in refs:
            store.record(_result(ref, "unchanged", sha256))
    assert writes == [450, 450, 450, 450, 450, 450]
    assert {key: r.status for key, r in store.records().items()} == {
        ref.key: "unchanged" for ref in refs
    }


# -- datasets that leave their source, and downloads at once -----------------------------


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def test_a_dataset_leaving_the_registry_is_kept_missing_named_then_removed(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    packages = [
        registry_package(name, http_server.file(f"/files/{file}", (VALID / file).read_bytes()), pub)
        for name, (pub, file) in REGISTRY_DATASETS.items()
    ]
    listing = list(packages)
    http_server.route(SEARCH, registry_search(listing))
    source = RegistrySource("registry", client, http_server.base_url)
    gone = "worldbank-sv"
    first = by_key(fetch_all([source], store))
    assert first[gone].status == "updated"

    def night(listed: bool) -> dict[str, FetchResult]:
        listing[:] = [p for p in packages if listed or p["name"] != gone]
        return by_key(fetch_all([source], store, limits=sources.Limits(keep_missing_nights=3)))

    # Night 2: not listed: missing, named with since when, its last good copy still used.
    second = night(listed=False)
    missing = second[gone]
    assert missing.status == "missing"
    assert missing.error == f"not in the Registry listing since {_today()}, kept 1 of 3 nights"
    assert missing.sha256 == first[gone].sha256
    assert missing.path is not None
    assert missing.path.read_bytes() == (VALID / "worldbank-sv.xml").read_bytes()
    assert store.records()[gone].status == "missing"
    # Night 3: listed again: fetched as before (304), never dropped.
    third = night(listed=True)
    assert third[gone].status == "unchanged"
    assert third[gone].sha256 == first[gone].sha256
    assert store.records()[gone].missing_nights == 0
    # Absent four nights: kept 1, 2, 3 of 3, then removed and named, then not reported.
    errors = [night(listed=False)[gone] for _ in range(4)]
    assert [r.status for r in errors] == ["missing", "missing", "missing", "removed"]
    assert [r.error for r in errors[:3]] == [
        f"not in the Registry listing since {_today()}, kept {n} of 3 nights" for n in (1, 2, 3)
    ]
    assert errors[3].error == (
        f"not in the Registry listing since {_today()}; removed (after 3 nights)"
    )
    assert errors[3].sha256 is None
    assert errors[3].path is None
    assert gone not in night(listed=False)
    assert store.records()[gone].status == "removed"
    # The other datasets went on as usual throughout.
    assert {k: r.status for k, r in third.items() if k != gone} == dict.fromkeys(
        set(REGISTRY_DATASETS) - {gone}, "unchanged"
    )


def test_a_listing_failure_does_not_count_as_a_missing_night(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    url = http_server.file("/files/acf.xml", (VALID / "acfspain-ph.xml").read_bytes())
    listing = [registry_package("acfspain-ph", url, "acfspain")]
    http_server.route(SEARCH, registry_search(listing))
    source = RegistrySource("registry", client, http_server.base_url)
    fetch_all([source], store)
    listing.clear()
    assert by_key(fetch_all([source], store))["acfspain-ph"].status == "missing"
    http_server.route(SEARCH, Reply(500, b"down"))
    failed = by_key(fetch_all([source], store))
    assert failed["acfspain-ph"].status == "failed"
    http_server.route(SEARCH, registry_search(listing))
    again = by_key(fetch_all([source], store))["acfspain-ph"]
    assert again.status == "missing"
    assert again.error is not None
    assert again.error.endswith("kept 2 of 3 nights")


def _concurrency_counter() -> tuple[Any, dict[str, int], dict[str, int]]:
    """A responder serving valid IATI files slowly, counting requests in progress per
    host and in all ("*"), and the most seen at once."""
    lock = threading.Lock()
    now: dict[str, int] = {}
    most: dict[str, int] = {}
    content = (VALID / "acfspain-ph.xml").read_bytes()

    def answer(request: Any) -> Reply:
        host = request.headers["host"].split(":")[0]
        with lock:
            for name in (host, "*"):
                now[name] = now.get(name, 0) + 1
                most[name] = max(most.get(name, 0), now[name])
        time.sleep(0.3 if host == "127.0.0.1" else 0.05)
        with lock:
            for name in (host, "*"):
                now[name] -= 1
        return Reply(200, content, {"ETag": '"same"'})

    return answer, now, most


def test_downloads_run_at_once_within_the_limits_per_host_and_in_all(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    answer, _, most = _concurrency_counter()
    slow = [http_server.route(f"/slow/{n}.xml", answer) for n in range(6)]
    port = http_server.base_url.rsplit(":", 1)[1]
    fast = [
        http_server.route(f"/fast/f{n}.xml", answer).replace("127.0.0.1", "localhost")
        for n in range(4)
    ]
    assert fast[0].startswith(f"http://localhost:{port}/")
    seen: list[str] = []
    results = fetch_all(
        [UrlSource("slow", client, slow), UrlSource("fast", client, fast)],
        store,
        progress=lambda r: seen.append(r.ref.key),
        limits=sources.Limits(max_concurrent=4, max_per_host=2),
    )
    assert [r.status for r in results] == ["updated"] * 10
    assert seen == [r.ref.key for r in results]  # reported in listing order
    # The slow host never had more than two at once, and the fast one did not wait for it.
    assert most["127.0.0.1"] == 2
    assert most["localhost"] <= 2
    assert most["*"] > 2
    # The fast host's files were all served while the slow host's were still in progress.
    log = [r.path for r in http_server.requests() if r.path.endswith(".xml")]
    assert max(log.index(f"/fast/f{n}.xml") for n in range(4)) < log.index("/slow/5.xml")


def test_one_download_at_a_time_when_so_configured(
    http_server: FixtureServer, client: HttpClient, store: RawStore
) -> None:
    answer, _, most = _concurrency_counter()
    urls = [http_server.route(f"/slow/{n}.xml", answer) for n in range(3)]
    results = fetch_all(
        [UrlSource("slow", client, urls)], store, limits=sources.Limits(max_concurrent=1)
    )
    assert [r.status for r in results] == ["updated"] * 3
    assert most["*"] == 1


def test_fetch_limits_come_from_the_configuration() -> None:
    settings = load_settings()
    limits = sources.Limits.from_settings(settings)
    assert (limits.max_concurrent, limits.max_per_host, limits.keep_missing_nights) == (8, 2, 3)


def test_a_configured_publisher_with_no_datasets_is_kept_for_the_run(
    registry: str, client: HttpClient, store: RawStore
) -> None:
    source = RegistrySource("registry", client, registry, publishers=["worldbank", "nobody"])
    results = by_key(fetch_all([source], store))
    assert set(results) == {"worldbank-sv"}
    assert source.empty_publishers == ["nobody"]


def test_fetch_limits_below_one_download_at_once_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 download at once"):
        sources.Limits(max_per_host=0)
