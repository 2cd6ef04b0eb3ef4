"""The HTTP client against a real local server: retries, timeouts, conditional and
size-limited downloads, content checks, and secrets kept out of what users see."""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import hashlib
import json
import logging
import socket
from pathlib import Path

import pytest

from assets.fetch.http import (
    DEFAULT_USER_AGENT,
    FetchError,
    HttpClient,
    looks_like_iati_xml,
    strip_secrets,
)
from tests.conftest import IATI_FIXTURES
from tests.http_fixture_server import (  # noqa: F401 - fixture
    FixtureServer,
    Reply,
    http_server_fixture,
)

SECRET = "s3cr3t-subscription-key-0123456789"
XML = (IATI_FIXTURES / "valid" / "acfspain-ph.xml").read_bytes()


class Sleeps(list[float]):
    """Records the pauses the client asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> HttpClient:
    return HttpClient(timeout=(1, 0.5), retries=4, backoff=0.5, max_backoff=8, sleep=sleeps)


def test_get_json_decodes_the_body_and_names_itself(
    http_server: FixtureServer, client: HttpClient
) -> None:
    url = http_server.route("/api", Reply(200, b'{"ok": [1, 2]}'))
    assert client.get_json(url, params={"q": "x"}) == {"ok": [1, 2]}
    (request,) = http_server.requests("/api")
    assert request.param("q") == "x"
    assert request.headers["user-agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("cdcompact/")


def test_not_found_fails_at_once_naming_the_url_and_status(
    http_server: FixtureServer, client: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.url("/missing.xml")
    with pytest.raises(FetchError) as caught:
        client.get_json(url)
    assert str(caught.value) == f"GET {url} failed: HTTP 404 Not Found"
    assert caught.value.status == 404
    assert len(http_server.requests("/missing.xml")) == 1
    assert sleeps == []


def test_a_server_error_then_success_is_retried_after_a_jittered_pause(
    http_server: FixtureServer, client: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.route("/flaky", Reply(500, b"oops"), Reply(200, b"[]"))
    assert client.get_json(url) == []
    assert len(http_server.requests("/flaky")) == 2
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.5  # full jitter within backoff * 2^0


def test_a_server_that_stays_down_fails_after_every_attempt(
    http_server: FixtureServer, client: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.route("/down", Reply(503, b"maintenance"))
    with pytest.raises(FetchError) as caught:
        client.get_json(url)
    assert str(caught.value) == f"GET {url} failed after 5 attempts: HTTP 503 Service Unavailable"
    assert caught.value.status == 503
    assert len(http_server.requests("/down")) == 5
    ceilings = [0.5, 1.0, 2.0, 4.0]
    assert len(sleeps) == 4
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


def test_too_many_requests_waits_as_long_as_retry_after_says(
    http_server: FixtureServer, client: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.route("/limited", Reply(429, headers={"Retry-After": "7"}), Reply(200, b"{}"))
    assert client.get_json(url) == {}
    assert sleeps == [7.0]


def test_retry_after_as_a_date_is_honoured_but_capped(
    http_server: FixtureServer, client: HttpClient, sleeps: Sleeps
) -> None:
    later = email.utils.format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), usegmt=True
    )
    url = http_server.route(
        "/limited", Reply(429, headers={"Retry-After": later}), Reply(200, b"1")
    )
    assert client.get_json(url) == 1
    assert sleeps == [8.0]  # an hour asked for, max_backoff given


def test_other_client_errors_are_never_retried(
    http_server: FixtureServer, client: HttpClient
) -> None:
    url = http_server.route("/forbidden", Reply(403, b"no"))
    with pytest.raises(FetchError, match="HTTP 403 Forbidden"):
        client.get_json(url)
    assert len(http_server.requests("/forbidden")) == 1


def test_connection_refused_is_retried_and_named(client: HttpClient, sleeps: Sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.xml"
    with pytest.raises(FetchError) as caught:
        client.get_json(url)
    assert caught.value.status is None
    assert f"GET {url} failed after 5 attempts: connection failed" in str(caught.value)
    assert "Connection refused" in str(caught.value)
    assert len(sleeps) == 4


def test_a_server_slower_than_the_read_timeout_fails_as_a_timeout(
    http_server: FixtureServer, sleeps: Sleeps
) -> None:
    client = HttpClient(timeout=(1, 0.05), retries=1, backoff=0, sleep=sleeps)
    url = http_server.route("/slow", Reply(200, b"[]", delay=0.3))
    with pytest.raises(FetchError) as caught:
        client.get_json(url)
    assert "read timeout" in str(caught.value)
    assert "after 2 attempts" in str(caught.value)


def test_a_body_cut_short_fails_and_leaves_no_partial_file(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    url = http_server.route("/cut.xml", Reply(200, XML, truncate_to=len(XML) // 2))
    destination = tmp_path / "cut.xml"
    with pytest.raises(FetchError) as caught:
        client.download(url, destination)
    assert "cut short" in str(caught.value)
    assert url in str(caught.value)
    assert len(http_server.requests("/cut.xml")) == 5  # a network problem: retried
    assert list(tmp_path.iterdir()) == []


def test_download_then_not_modified_then_changed(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    url = http_server.file("/acf.xml", XML)
    destination = tmp_path / "acf.xml"
    first = client.download(url, destination, expect=looks_like_iati_xml)
    assert first.status == "downloaded"
    assert first.sha256 == hashlib.sha256(XML).hexdigest()
    assert first.bytes == len(XML)
    assert first.http_status == 200
    assert first.url == url
    assert first.etag
    assert destination.read_bytes() == XML

    second = client.download(url, destination, etag=first.etag)
    assert second.status == "not_modified"
    assert second.http_status == 304
    assert second.sha256 is None
    assert http_server.requests("/acf.xml")[-1].headers["if-none-match"] == first.etag
    assert destination.read_bytes() == XML

    changed = XML.replace(b"typhoon", b"TYPHOON")
    http_server.file("/acf.xml", changed)
    third = client.download(url, destination, etag=first.etag)
    assert third.status == "downloaded"
    assert third.etag != first.etag
    assert destination.read_bytes() == changed


def test_last_modified_is_sent_as_if_modified_since(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"
    url = http_server.route(
        "/dated.xml",
        lambda r: (
            Reply(304)
            if r.headers.get("if-modified-since") == stamp
            else Reply(200, XML, {"Last-Modified": stamp})
        ),
    )
    first = client.download(url, tmp_path / "dated.xml")
    assert first.last_modified == stamp
    second = client.download(url, tmp_path / "dated.xml", last_modified=stamp)
    assert second.status == "not_modified"
    assert second.last_modified == stamp


def test_an_html_page_instead_of_xml_is_refused_and_the_old_file_kept(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path
) -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Site maintenance</title></head></html>"
    url = http_server.route("/data.xml", Reply(200, page, {"Content-Type": "text/html"}))
    destination = tmp_path / "data.xml"
    destination.write_bytes(XML)
    with pytest.raises(FetchError) as caught:
        client.download(url, destination, expect=looks_like_iati_xml)
    assert str(caught.value) == (
        f"GET {url} failed: the server returned an HTML page, not IATI XML"
    )
    assert len(http_server.requests("/data.xml")) == 1
    assert destination.read_bytes() == XML
    assert [p.name for p in tmp_path.iterdir()] == ["data.xml"]


def test_a_declared_size_over_the_limit_is_refused_before_reading(
    http_server: FixtureServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    client = HttpClient(max_bytes=1000, sleep=sleeps)
    url = http_server.route("/big.xml", Reply(200, XML))
    with pytest.raises(FetchError, match=f"{len(XML)} bytes, over the limit of 1000 bytes"):
        client.download(url, tmp_path / "big.xml")
    assert len(http_server.requests("/big.xml")) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_compressed_body_that_expands_past_the_limit_is_stopped(
    http_server: FixtureServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    client = HttpClient(max_bytes=100_000, sleep=sleeps)
    bomb = gzip.compress(b"<iati-activities>" + b" " * 1_000_000)
    url = http_server.route("/bomb.xml", Reply(200, bomb, {"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="over the limit of 100000 bytes"):
        client.download(url, tmp_path / "bomb.xml")
    assert list(tmp_path.iterdir()) == []


def test_json_endpoint_answering_html_says_so(
    http_server: FixtureServer, client: HttpClient
) -> None:
    url = http_server.route("/api", Reply(200, b"<html><body>Login</body></html>"))
    with pytest.raises(FetchError, match="the server returned an HTML page, not JSON"):
        client.get_json(url)


def test_secrets_never_appear_in_errors_logs_or_metadata(
    http_server: FixtureServer, client: HttpClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http_server.route("/api", Reply(502, b"bad gateway"))
    url = http_server.url(f"/api?format=json&api_key={SECRET}")
    with pytest.raises(FetchError) as caught:
        client.get_json(url, headers={"Ocp-Apim-Subscription-Key": SECRET})
    assert SECRET not in str(caught.value)
    assert SECRET not in caught.value.url
    assert "format=json" in str(caught.value)
    assert http_server.requests("/api")[0].headers["ocp-apim-subscription-key"] == SECRET
    assert caplog.records
    assert all(SECRET not in r.getMessage() for r in caplog.records)

    http_server.file("/signed.xml", XML)
    done = client.download(http_server.url(f"/signed.xml?sig=1&token={SECRET}"), tmp_path / "s.xml")
    assert SECRET not in json.dumps(done.__dict__)
    assert done.url == http_server.url("/signed.xml")
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_secret_headers_are_not_sent_to_another_host_on_redirect(
    http_server: FixtureServer, client: HttpClient
) -> None:
    port = http_server.base_url.rsplit(":", 1)[1]
    http_server.route("/landing", Reply(200, b'{"landed": true}'))
    url = http_server.route(
        "/moved", Reply(302, headers={"Location": f"http://localhost:{port}/landing"})
    )
    assert client.get_json(url, headers={"Ocp-Apim-Subscription-Key": SECRET}) == {"landed": True}
    (landing,) = http_server.requests("/landing")
    assert "ocp-apim-subscription-key" not in landing.headers


def test_strip_secrets_removes_credentials_and_secret_parameters() -> None:
    assert (
        strip_secrets("https://u:p@example.org/a.xml?x=1&api_key=K&Signature=S&token=T")
        == "https://example.org/a.xml?x=1"
    )
    assert strip_secrets("https://example.org/a.xml?q=1") == "https://example.org/a.xml?q=1"


@pytest.mark.parametrize(
    "name",
    [
        "acfspain-ph.xml",  # declaration, then a comment
        "default_currency.xml",  # starts with a comment
        "wri-521257057-strategic-plan-2023-2027.xml",  # BOM, declaration, comment on one line
        "provider-activity-id.xml",  # a single <iati-activity> root
        "who-arg.xml",
    ],
)
def test_real_iati_files_look_like_iati_xml(name: str) -> None:
    looks_like_iati_xml((IATI_FIXTURES / "valid" / name).read_bytes()[:4096])


def test_an_organisation_file_looks_like_iati_xml() -> None:
    path = IATI_FIXTURES / "invalid" / "organisation-file-not-activities.xml"
    looks_like_iati_xml(path.read_bytes()[:4096])


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"", "the response is empty"),
        (b"  \n ", "the response is empty"),
        (b"<!doctype html><html></html>", "HTML page, not IATI XML"),
        (b"<?xml version='1.0'?>\n<html><body/></html>", "HTML page, not IATI XML"),
        (b'{"error": "quota"}', "JSON, not IATI XML"),
        (b"PK\x03\x04\x14\x00", "ZIP archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1", "old Microsoft Office document"),
        (b"Date,Rate,Currency\n", "not XML: it starts with 'Date,Rate,Currency'"),
        (b"<?xml version='1.0'?><!-- x --><rss/>", "first element is <rss>"),
    ],
)
def test_what_is_not_iati_xml_is_named(head: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        looks_like_iati_xml(head)


def test_fixture_files_that_are_not_iati_are_refused() -> None:
    with pytest.raises(ValueError, match="not XML"):
        looks_like_iati_xml((IATI_FIXTURES / "invalid" / "not-xml.xml").read_bytes()[:4096])
    with pytest.raises(ValueError, match="XML but not IATI"):
        looks_like_iati_xml(
            (IATI_FIXTURES / "invalid" / "xml-but-not-iati.xml").read_bytes()[:4096]
        )
