"""The official IATI activity schemas over real HTTP (the fixture XSDs served by a local
server laid out like raw.githubusercontent.com/IATI/IATI-Schemas/version-<v>/): fetched,
conditional, checked to be XML Schemas, and the last good copy kept on failure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from assets.fetch.http import HttpClient
from assets.fetch.reference import IATI_SCHEMA_FILES, fetch_iati_schemas
from assets.iati.conformance import IatiSchemas
from assets.iati.extract import check_conformance
from tests.conftest import IATI_FIXTURES, IATI_SCHEMAS
from tests.http_fixture_server import (  # noqa: F401 - fixture
    FixtureServer,
    Reply,
    http_server_fixture,
)

VERSIONS = ("2.03", "1.01")


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(timeout=(1, 1), retries=1, backoff=0, sleep=lambda _: None)


@pytest.fixture
def schemas_site(http_server: FixtureServer) -> str:
    """Every fixture version's three schema files, with ETags; the URL template."""
    for folder in sorted(IATI_SCHEMAS.iterdir()):
        for name in IATI_SCHEMA_FILES:
            http_server.file(
                f"/IATI/IATI-Schemas/version-{folder.name}/{name}", (folder / name).read_bytes()
            )
    return http_server.url("/IATI/IATI-Schemas/version-{version}/")


def test_schemas_are_fetched_then_unchanged_and_validate(
    schemas_site: str, http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    store = tmp_path / "iati-schemas"
    first = fetch_iati_schemas(client, schemas_site, VERSIONS, store)
    assert [v.name for v in first] == [
        f"iati-schemas/{version}/{name}" for version in VERSIONS for name in IATI_SCHEMA_FILES
    ]
    assert {v.status for v in first} == {"updated"}
    main = first[0]
    assert main.url == schemas_site.replace("{version}", "2.03") + "iati-activities-schema.xsd"
    assert main.path == store / "2.03" / "iati-activities-schema.xsd"
    for version in VERSIONS:
        for name in IATI_SCHEMA_FILES:
            assert (store / version / name).read_bytes() == (
                IATI_SCHEMAS / version / name
            ).read_bytes()
    assert main.sha256 == hashlib.sha256(main.path.read_bytes()).hexdigest()

    # The fetched folder is what the conformance check reads (sidecars are ignored).
    schemas = IatiSchemas.from_dir(store)
    assert schemas.versions == ("1.01", "2.03")
    findings = check_conformance(
        IATI_FIXTURES / "invalid" / "iati-act-schema-errors.xml",
        "errors.xml",
        schemas=schemas,
        codelists=None,
    )
    assert [(f.rule, f.line) for f in findings if f.check == "xsd"] == [
        ("xsd:SCHEMAV_CVC_DATATYPE_VALID_1_2_1", 18)
    ]
    # Same files, same fingerprint: the fetch sidecars beside them do not count (the
    # fixture's 2.03 folder also holds the organisation schema, so compare 1.01).
    assert IatiSchemas(store, ["1.01"]).fingerprint() == (
        IatiSchemas(IATI_SCHEMAS, ["1.01"]).fingerprint()
    )

    second = fetch_iati_schemas(client, schemas_site, VERSIONS, store)
    assert {v.status for v in second} == {"unchanged"}
    last = http_server.requests("/IATI/IATI-Schemas/version-2.03/iati-activities-schema.xsd")[-1]
    assert last.headers["if-none-match"] == main.etag


def test_a_download_that_is_not_a_schema_keeps_the_last_good_copy(
    schemas_site: str, http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    store = tmp_path / "iati-schemas"
    (good,) = [
        v
        for v in fetch_iati_schemas(client, schemas_site, ["2.03"], store)
        if v.name.endswith("/iati-common.xsd")
    ]
    path = "/IATI/IATI-Schemas/version-2.03/iati-common.xsd"
    url = http_server.url(path)

    http_server.route(path, Reply(200, b"<!DOCTYPE html><html><body>Rate limited</body></html>"))
    html = fetch_iati_schemas(client, schemas_site, ["2.03"], store)[1]
    assert html.status == "failed"
    assert html.error == f"GET {url} failed: the server returned an HTML page, not an XML Schema"
    assert (html.sha256, html.path) == (good.sha256, good.path)
    assert (store / "2.03" / "iati-common.xsd").read_bytes() == (
        IATI_SCHEMAS / "2.03" / "iati-common.xsd"
    ).read_bytes()

    http_server.route(path, Reply(200, b'<?xml version="1.0"?>\n<codelist name="Sector"/>'))
    other = fetch_iati_schemas(client, schemas_site, ["2.03"], store)[1]
    assert other.status == "failed"
    assert other.error == (
        f"GET {url} failed: not an XML Schema: the root element is <codelist>, not <xs:schema>"
    )

    http_server.route(path, Reply(200, b"<xsd:schema xmlns:xsd='http://www.w3.org/2001/XMLSch"))
    cut = fetch_iati_schemas(client, schemas_site, ["2.03"], store)[1]
    assert cut.status == "failed"
    assert cut.error is not None
    assert "not an XML Schema: the XML is not well-formed" in cut.error
    assert IatiSchemas.from_dir(store).schema("2.03") is not None  # still the good copy


def test_a_schema_that_was_never_fetched_has_no_version(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    template = http_server.url("/nowhere/{version}/")
    versions = fetch_iati_schemas(client, template, ["2.03"], tmp_path)
    assert [(v.status, v.path, v.sha256) for v in versions] == [("failed", None, None)] * 3
    assert versions[0].error == (
        f"GET {http_server.url('/nowhere/2.03/iati-activities-schema.xsd')} failed: "
        "HTTP 404 Not Found"
    )
    assert IatiSchemas.from_dir(tmp_path).versions == ()


def test_versions_and_template_are_checked_before_anything_is_fetched(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"no \{version\}"):
        fetch_iati_schemas(client, http_server.url("/schemas/"), ["2.03"], tmp_path)
    with pytest.raises(ValueError, match="not an IATI version"):
        fetch_iati_schemas(client, http_server.url("/{version}/"), ["../../etc"], tmp_path)
    assert http_server.requests() == []
