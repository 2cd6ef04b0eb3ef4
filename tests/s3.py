"""An S3 for tests: moto in server mode on 127.0.0.1, spoken to over real HTTP by boto3.

Import the fixtures into a test module (``from tests.s3 import
moto_endpoint_fixture, s3_bucket_fixture``; tests ask for ``moto_endpoint`` and
``s3_bucket``). One server runs per session; each test gets a fresh bucket and
fake credentials, and no real AWS configuration is read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on the test server."""

    endpoint_url: str
    name: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}),
        )


@pytest.fixture(scope="session", name="moto_endpoint")
def moto_endpoint_fixture() -> Iterator[str]:
    """The URL of a moto S3 server running for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(name="s3_bucket")
def s3_bucket_fixture(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> S3Bucket:
    """A new, empty bucket, with fake credentials in the environment."""
    missing: Path = tmp_path_factory.mktemp("aws") / "none"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    bucket = S3Bucket(moto_endpoint, f"test-{uuid.uuid4().hex[:12]}")
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket


class FaultyS3:
    """A proxy in front of the moto server that fails chosen requests, as S3 does at times.

    boto3 talks to ``endpoint_url``; every request goes on to moto unchanged unless
    the fault rule in force answers it first with an S3 error document:

    * ``fail_puts_after(n, code, status)``: the first ``n`` object uploads pass,
      every later one fails (an outage mid-publish; retries do not help);
    * ``fail_first_puts_once(n, code, status)``: the first upload attempt of each of
      the first ``n`` objects fails, its retry passes (a transient error that the
      client's retries absorb);
    * ``heal()``: nothing fails any more.

    ``puts`` counts the uploads that reached moto, ``failed`` the ones answered here.
    """

    def __init__(self, moto_endpoint: str) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        upstream = urlsplit(moto_endpoint)
        self._lock = threading.Lock()
        self._mode: tuple[str, int, str, int] | None = None
        self._seen: set[str] = set()
        self.puts = 0
        self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # no line per request
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                failure = proxy._failure(self.command, self.path, self.headers)
                if failure is not None:
                    status, code = failure
                    document = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                        f"<Message>injected by the test proxy</Message></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(document)))
                    self.end_headers()
                    self.wfile.write(document)
                    return
                connection = http.client.HTTPConnection(upstream.netloc, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                finally:
                    connection.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_puts_after(self, n: int, code: str = "InternalError", status: int = 500) -> None:
        with self._lock:
            self._mode, self.puts, self.failed = ("after", n, code, status), 0, 0

    def fail_first_puts_once(self, n: int, code: str = "SlowDown", status: int = 503) -> None:
        with self._lock:
            self._mode, self.puts, self.failed = ("once", n, code, status), 0, 0
            self._seen.clear()

    def heal(self) -> None:
        with self._lock:
            self._mode = None

    def _failure(self, command: str, path: str, headers: Any) -> tuple[int, str] | None:
        # An object upload: PUT of a key (not of the bucket itself), not a copy.
        if command != "PUT" or path.strip("/").count("/") < 1 or "x-amz-copy-source" in headers:
            return None
        with self._lock:
            mode = self._mode
            if mode is None:
                self.puts += 1
                return None
            kind, n, code, status = mode
            if kind == "after" and self.puts >= n:
                self.failed += 1
                return status, code
            if kind == "once" and path not in self._seen and len(self._seen) < n:
                self._seen.add(path)
                self.failed += 1
                return status, code
            self.puts += 1
            return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(name="faulty_s3")
def faulty_s3_fixture(moto_endpoint: str) -> Iterator[FaultyS3]:
    """A fault-injecting proxy to the session's moto server (see :class:`FaultyS3`)."""
    proxy = FaultyS3(moto_endpoint)
    try:
        yield proxy
    finally:
        proxy.close()
