"""Reference data over real HTTP: IATI codelists (JSON built from the fixture XML) and the
IMF exchange-rate CSV, conditional, checked, and the last good file kept on failure."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from assets.fetch.http import HttpClient
from assets.fetch.reference import (
    NEEDED_CODELISTS,
    ReferenceVersion,
    fetch_codelists,
    fetch_exchange_rates,
)
from assets.iati.codelists import load_codelists
from assets.iati.rates import load_exchange_rates
from tests.conftest import CODELISTS, RATES
from tests.http_fixture_server import (  # noqa: F401 - fixture
    FixtureServer,
    Reply,
    codelist_json,
    http_server_fixture,
)

RATES_CSV = (RATES / "imf-monthly-subset.csv").read_bytes()
HTML = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(timeout=(1, 1), retries=1, backoff=0, sleep=lambda _: None)


def _codelist_xml(name: str) -> Path:
    for path in (
        CODELISTS / "non-embedded" / f"{name}.xml",
        CODELISTS / "embedded" / "2.03" / "xml" / f"{name}.xml",
    ):
        if path.is_file():
            return path
    raise AssertionError(f"no fixture for codelist {name}")


@pytest.fixture
def codelists_api(http_server: FixtureServer) -> str:
    """codelists.codeforiati.org/api/json/en/<Name>.json for every codelist the pipeline needs."""
    for name in NEEDED_CODELISTS:
        http_server.file(f"/api/json/en/{name}.json", codelist_json(_codelist_xml(name)))
    return http_server.url("/api/json/en/")


def test_codelists_are_fetched_then_unchanged_and_load(
    codelists_api: str, http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    store = tmp_path / "codelists"
    first = fetch_codelists(client, store, url=codelists_api)
    assert [v.name for v in first] == list(NEEDED_CODELISTS)
    assert {v.status for v in first} == {"updated"}
    sector = first[0]
    assert sector.url == f"{codelists_api}Sector.json"
    assert sector.path == store / "Sector.json"
    assert sector.sha256 == hashlib.sha256((store / "Sector.json").read_bytes()).hexdigest()
    assert sector.etag
    assert sector.fetched_at == sector.checked_at

    loaded = load_codelists(store)  # the sidecars do not disturb the loader
    assert loaded.name("Sector", "11110") == "Education policy and administrative management"
    assert loaded.name("TransactionType", "3") == "Disbursement"

    second = fetch_codelists(client, store, url=codelists_api)
    assert {v.status for v in second} == {"unchanged"}
    assert [v.sha256 for v in second] == [v.sha256 for v in first]
    last = http_server.requests("/api/json/en/Sector.json")[-1]
    assert last.headers["if-none-match"] == sector.etag


def test_a_broken_codelist_keeps_its_last_good_file(
    codelists_api: str, http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    store = tmp_path / "codelists"
    (good,) = fetch_codelists(client, store, url=codelists_api, names=["FlowType"])
    url = http_server.route("/api/json/en/FlowType.json", Reply(200, HTML))
    (failed,) = fetch_codelists(client, store, url=codelists_api, names=["FlowType"])
    assert failed.status == "failed"
    assert (
        failed.error == f"GET {url} failed: the server returned an HTML page, not a JSON codelist"
    )
    assert (failed.sha256, failed.fetched_at, failed.path) == (
        good.sha256,
        good.fetched_at,
        good.path,
    )
    assert failed.checked_at >= good.checked_at

    http_server.route(
        "/api/json/en/FlowType.json",
        Reply(200, b'{"attributes": {"name": "FlowType"}, "data": [{"name": "no code"}]}'),
    )
    (bad,) = fetch_codelists(client, store, url=codelists_api, names=["FlowType"])
    assert bad.error == f"GET {url} failed: not a JSON codelist: data item 1 has no code"
    assert bad.sha256 == good.sha256
    assert json.loads((store / "FlowType.json").read_text())["data"][0]["code"] == "10"


def test_exchange_rates_are_fetched_checked_and_kept(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    url = http_server.file("/imf_exchangerates.csv", RATES_CSV)
    destination = tmp_path / "rates" / "imf_exchangerates.csv"

    first = fetch_exchange_rates(client, destination, url=url)
    assert (first.status, first.sha256, first.bytes) == (
        "updated",
        hashlib.sha256(RATES_CSV).hexdigest(),
        len(RATES_CSV),
    )
    assert destination.read_bytes() == RATES_CSV
    assert load_exchange_rates([destination]).lookup("AFN", dt.date(1955, 3, 15)) is not None

    second = fetch_exchange_rates(client, destination, url=url)
    assert second.status == "unchanged"
    assert http_server.requests("/imf_exchangerates.csv")[-1].headers["if-none-match"] == first.etag

    http_server.route("/imf_exchangerates.csv", Reply(200, HTML))
    html = fetch_exchange_rates(client, destination, url=url)
    assert html.status == "failed"
    assert html.error == (
        f"GET {url} failed: the server returned an HTML page, not the exchange-rate CSV"
    )
    assert html.sha256 == first.sha256
    assert destination.read_bytes() == RATES_CSV

    http_server.route("/imf_exchangerates.csv", Reply(200, b"date;rate;ccy\n2020-01-31;1;USD\n"))
    wrong = fetch_exchange_rates(client, destination, url=url)
    assert wrong.error is not None
    assert "the header lacks Date, Rate, Currency" in wrong.error

    http_server.route("/imf_exchangerates.csv", Reply(503))
    down = fetch_exchange_rates(client, destination, url=url)
    assert down.error == f"GET {url} failed after 2 attempts: HTTP 503 Service Unavailable"
    assert (down.sha256, down.fetched_at) == (first.sha256, second.fetched_at)

    newer = RATES_CSV + b"2099-01-31,1.0,AFN,M,IMF,AF,Afghanistan\n"
    http_server.file("/imf_exchangerates.csv", newer)
    updated = fetch_exchange_rates(client, destination, url=url)
    assert updated.status == "updated"
    assert updated.sha256 == hashlib.sha256(newer).hexdigest()
    assert destination.read_bytes() == newer


def test_last_modified_validators_are_used_when_there_is_no_etag(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    stamp = "Mon, 02 Nov 2026 06:00:00 GMT"
    url = http_server.route(
        "/rates.csv",
        lambda r: (
            Reply(304)
            if r.headers.get("if-modified-since") == stamp
            else Reply(200, RATES_CSV, {"Last-Modified": stamp})
        ),
    )
    destination = tmp_path / "rates.csv"
    assert fetch_exchange_rates(client, destination, url=url).status == "updated"
    again = fetch_exchange_rates(client, destination, url=url)
    assert (again.status, again.last_modified) == ("unchanged", stamp)


def test_a_file_changed_by_hand_is_fetched_in_full(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    url = http_server.file("/rates.csv", RATES_CSV)
    destination = tmp_path / "rates.csv"
    fetch_exchange_rates(client, destination, url=url)
    destination.write_bytes(b"Date,Rate,Currency\n2020-01-31,1,XYZ\n")
    repaired = fetch_exchange_rates(client, destination, url=url)
    assert repaired.status == "updated"  # no If-None-Match for a file we no longer trust
    assert "if-none-match" not in http_server.requests("/rates.csv")[-1].headers
    assert destination.read_bytes() == RATES_CSV


def test_versions_are_json_ready_for_provenance(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    url = http_server.file("/rates.csv", RATES_CSV)
    version = fetch_exchange_rates(client, tmp_path / "rates.csv", url=url)
    assert isinstance(version, ReferenceVersion)
    data = json.loads(json.dumps(version.to_dict()))
    assert set(data) >= {"url", "sha256", "etag", "last_modified", "fetched_at", "status"}
    assert data["path"] == str(tmp_path / "rates.csv")


def test_a_reference_that_was_never_fetched_has_no_version(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    version = fetch_exchange_rates(client, tmp_path / "rates.csv", url=http_server.url("/nope.csv"))
    assert (version.status, version.sha256, version.path) == ("failed", None, None)
    assert version.error == f"GET {http_server.url('/nope.csv')} failed: HTTP 404 Not Found"
