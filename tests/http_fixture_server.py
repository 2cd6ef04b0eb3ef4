"""A real HTTP server for fetcher tests: ``ThreadingHTTPServer`` on 127.0.0.1, any port.

Tests register routes (a path and the replies to give, in turn, the last one repeating;
or a function of the request) and read the log of requests received. Replies can
misbehave like real servers: wait before answering, send fewer bytes than their
Content-Length and hang up. Import the fixture into a test module
(``from tests.http_fixture_server import http_server_fixture  # noqa: F401``) and ask
for ``http_server``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    """What to answer; ``truncate_to`` sends only that many body bytes and hangs up."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_to: int | None = None


Responder = Reply | Callable[[Request], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fixture: FixtureServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are part of the tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per keep-alive response
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer("GET", b"")

    def do_POST(self) -> None:
        """A POST's body is kept in the request log (webhooks post JSON)."""
        length = int(self.headers.get("Content-Length") or 0)
        self._answer("POST", self.rfile.read(length) if length else b"")

    def _answer(self, method: str, body: bytes) -> None:
        parts = urlsplit(self.path)
        request = Request(
            method,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        reply = self.server.fixture._reply_for(request)
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            headers = {"Content-Length": str(len(reply.body)), **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            if reply.truncate_to is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if reply.truncate_to is not None:
                self.wfile.write(reply.body[: reply.truncate_to])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif reply.status != 304:
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True


class FixtureServer:
    """Routes and the request log of one running server."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Responder]] = {}
        self._served: dict[str, int] = {}
        self._log: list[Request] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fixture = self
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, *replies: Responder) -> str:
        """Answer ``path`` with ``replies`` in turn (the last repeats); the route's URL."""
        with self._lock:
            self._routes[path] = list(replies)
            self._served[path] = 0
        return self.url(path)

    def file(self, path: str, content: bytes, etag: str | None = None, **headers: str) -> str:
        """Serve ``content`` with an ETag (its sha256 unless given), answering 304 when
        If-None-Match matches; the route's URL."""
        tag = etag or f'"{hashlib.sha256(content).hexdigest()[:16]}"'

        def answer(request: Request) -> Reply:
            if request.headers.get("if-none-match") == tag:
                return Reply(304, headers={"ETag": tag})
            return Reply(200, content, {"ETag": tag, **headers})

        return self.route(path, answer)

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._log if path is None or r.path == path]

    def _reply_for(self, request: Request) -> Reply:
        with self._lock:
            self._log.append(request)
            replies = self._routes.get(request.path)
            if not replies:
                return Reply(404, b"not found", {"Content-Type": "text/plain"})
            served = self._served[request.path]
            self._served[request.path] = served + 1
            responder = replies[min(served, len(replies) - 1)]
        return responder(request) if callable(responder) else responder


@pytest.fixture(name="http_server")
def http_server_fixture() -> Iterator[FixtureServer]:
    """A fresh server with no routes, stopped after the test."""
    server = FixtureServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the shapes of the real services ----------------------------------------------------

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def registry_package(
    name: str, url: str, publisher: str, filetype: str = "activity"
) -> dict[str, Any]:
    """One dataset as the IATI Registry's CKAN ``package_search`` lists it."""
    return {
        "name": name,
        "title": name,
        "organization": {"name": publisher, "title": publisher},
        "resources": [{"url": url, "format": "IATI-XML"}],
        "extras": [
            {"key": "filetype", "value": filetype},
            {"key": "iati_version", "value": "2.03"},
        ],
    }


def registry_search(packages: list[dict[str, Any]]) -> Callable[[Request], Reply]:
    """CKAN ``package_search``: ``fq=organization:<name>`` filters, ``rows``/``start`` page."""

    def answer(request: Request) -> Reply:
        chosen = packages
        fq = request.param("fq")
        if fq:
            publisher = fq.removeprefix("organization:")
            chosen = [p for p in packages if p["organization"]["name"] == publisher]
        start, rows = int(request.param("start", "0") or 0), int(request.param("rows", "10") or 10)
        body = {
            "help": "package_search",
            "success": True,
            "result": {"count": len(chosen), "results": chosen[start : start + rows]},
        }
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    return answer


def activity_snippets(path: Path) -> list[tuple[str, str]]:
    """(iati-identifier, serialised ``<iati-activity>``) for each activity of a file."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(path), parser).getroot()
    snippets = []
    for activity in root.iter("iati-activity"):
        identifier = (activity.findtext("iati-identifier") or "").strip()
        activity.tail = None
        snippets.append((identifier, etree.tostring(activity, encoding="unicode")))
    return snippets


def datastore_select(
    activities: dict[str, list[tuple[str, str]]], api_key: str
) -> Callable[[Request], Reply]:
    """The Datastore's Solr ``activity/select``: 401 without the right subscription key;
    ``q=recipient_country_code:<CC>``, ``rows``/``start`` paging, documents in id order."""

    def answer(request: Request) -> Reply:
        if request.headers.get("ocp-apim-subscription-key") != api_key:
            body = {"statusCode": 401, "message": "Access denied due to missing subscription key."}
            return Reply(401, json.dumps(body).encode(), {"Content-Type": "application/json"})
        country = (request.param("q") or "").removeprefix("recipient_country_code:")
        found = sorted(activities.get(country, []))
        start, rows = int(request.param("start", "0") or 0), int(request.param("rows", "10") or 10)
        docs = [{"iati_identifier": i, "iati_xml": x} for i, x in found[start : start + rows]]
        body = {
            "responseHeader": {"status": 0, "params": {k: v[0] for k, v in request.query.items()}},
            "response": {"numFound": len(found), "start": start, "docs": docs},
        }
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    return answer


def codelist_json(path: Path) -> bytes:
    """An IATI codelist XML file in the JSON shape of codelists.codeforiati.org/api/json/en."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(path), parser).getroot()
    data = []
    for item in root.iterfind("codelist-items/codelist-item"):
        names = [n for n in item.iterfind("name/narrative") if n.get(_XML_LANG) in (None, "en")]
        data.append(
            {
                "code": (item.findtext("code") or "").strip(),
                "name": (names[0].text or "").strip() if names else None,
                "status": item.get("status", "active"),
            }
        )
    body = {
        "attributes": {
            "name": root.get("name"),
            "xml:lang": "en",
            "complete": root.get("complete"),
        },
        "metadata": {"name": root.findtext("metadata/name/narrative")},
        "data": data,
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
