"""One HTTP client for every fetcher: timeouts, retries with backoff, conditional and
size-limited streaming downloads, and secrets kept out of every message.

Retried: connection errors, timeouts, bodies cut short, HTTP 429 (after ``Retry-After``
when the server gives one) and 5xx. Never retried: other 4xx, a body that is not what was
expected, a body over the size limit. Values of secret headers (``Ocp-Apim-Subscription-Key``,
``Authorization``...) and secret query parameters (``key``, ``token``, ``signature``...) never
appear in a :class:`FetchError`, a log line or a :class:`Download`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import http.client
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import requests
import urllib3

logger = logging.getLogger(__name__)

#: Bytes of a body handed to an ``expect`` check.
HEAD_BYTES = 4096
_CHUNK_BYTES = 64 * 1024
_REDACTED = "[redacted]"
#: Shorter values are not searched for in messages (they are still stripped from URLs).
_MIN_SECRET_LENGTH = 6
#: Header and query-parameter names whose values are secrets.
_SECRET_NAME = re.compile(
    r"key|token|secret|signature|^sig$|password|passwd|auth|credential|cookie", re.IGNORECASE
)

T = TypeVar("T")


def _version() -> str:
    try:
        return metadata.version("cdcompact")
    except metadata.PackageNotFoundError:
        return "dev"


DEFAULT_USER_AGENT = f"cdcompact/{_version()} (+https://iatistandard.org)"


def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter called ``name`` carries a secret."""
    return bool(_SECRET_NAME.search(name))


def strip_secrets(url: str) -> str:
    """``url`` without user:password and without query parameters named like secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    kept = [(k, v) for k, v in query if not is_secret_name(k)]
    new_query = urlencode(kept, safe=":/,") if len(kept) != len(query) else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, new_query, parts.fragment))


_SECRET_IN_URL = re.compile(
    r"([?&][^=&\s\"']*(?:key|token|secret|signature|sig|password|auth)[^=&\s\"']*=)[^&\s\"']*",
    re.IGNORECASE,
)


class _UrlSecretFilter(logging.Filter):
    """Masks secret query parameters in the request lines urllib3 logs at DEBUG level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_IN_URL.sub(rf"\1{_REDACTED}", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


def _install_log_filter() -> None:
    urllib3_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _UrlSecretFilter) for f in urllib3_logger.filters):
        urllib3_logger.addFilter(_UrlSecretFilter())


class FetchError(Exception):
    """A GET that failed for good; ``str`` names the URL (without secrets) and the reason."""

    def __init__(self, url: str, status: int | None, message: str, attempts: int = 1) -> None:
        self.url = strip_secrets(url)
        self.status = status
        self.message = message
        self.attempts = attempts
        super().__init__(self.url, status, message, attempts)

    def __str__(self) -> str:
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"GET {self.url} failed{tries}: {self.message}"


@dataclass(frozen=True)
class Download:
    """What :meth:`HttpClient.download` did: ``downloaded`` (``sha256`` and ``bytes`` of the
    file now at the destination) or ``not_modified`` (HTTP 304, the destination untouched)."""

    status: str
    url: str  # final URL after redirects, secrets stripped
    http_status: int
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    bytes: int = 0


class _Retry(Exception):
    """A transient problem with one attempt: try again after a pause."""

    def __init__(self, message: str, status: int | None = None, wait: float | None = None):
        super().__init__(message)
        self.status = status
        self.wait = wait


class _Redactor:
    """Replaces the secret values of one request wherever they might be echoed."""

    def __init__(self, values: list[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) >= _MIN_SECRET_LENGTH:
                forms.update({value, quote(value, safe=""), quote_plus(value)})
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, _REDACTED)
        return text


class _Session(requests.Session):
    """A session that drops secret headers, not only ``Authorization``, when a redirect
    leaves the host the request was sent to."""

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in [n for n in prepared_request.headers if is_secret_name(n)]:
                del prepared_request.headers[name]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _describe(exc: BaseException) -> str:
    """A short description of a network problem (no library internals, no URLs)."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        return "the server did not answer in time (read timeout)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text:
        return "the connection closed before the whole body arrived (body cut short)"
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno:
        return f"connection failed: {errno.group(0).strip()}"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "connection failed: the host name could not be resolved"
    if isinstance(exc, requests.exceptions.SSLError):
        return "connection failed: TLS/SSL error"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection failed: the server closed the connection without answering"
    return f"connection failed: {type(exc).__name__}"


def _content_length(response: requests.Response) -> int | None:
    """The declared body length, when it describes the bytes we will count (no encoding)."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    value = response.headers.get("Content-Length")
    if encoding not in ("", "identity") or value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body in chunks; network trouble while reading becomes a retryable problem."""
    iterator = response.iter_content(_CHUNK_BYTES)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except (
            requests.exceptions.RequestException,
            http.client.HTTPException,
            urllib3.exceptions.HTTPError,
        ) as exc:
            raise _Retry(_describe(exc)) from exc
        if chunk:
            yield chunk


def _looks_like_html(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()[:512].lower()
    return text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:256]


class HttpClient:
    """GET requests with timeouts, retries (exponential backoff, full jitter), conditional
    downloads and size limits, over one ``requests.Session`` per thread (a session is not
    safe to share between threads; :func:`assets.fetch.sources.fetch_all` downloads from
    several), or over the one ``session`` given."""

    def __init__(
        self,
        timeout: tuple[float, float] = (10, 60),
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60,
        max_bytes: int = 100 * 1024 * 1024,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.sleep = sleep
        self._shared = session
        if session is not None:
            session.headers["User-Agent"] = user_agent
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - jitter, not cryptography
        _install_log_filter()

    @property
    def session(self) -> requests.Session:
        """The session of the calling thread (the one given, when one was)."""
        if self._shared is not None:
            return self._shared
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            session.headers["User-Agent"] = self.user_agent
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in [*sessions, *([self._shared] if self._shared else [])]:
            session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public API ---------------------------------------------------------------------

    def get_json(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON body of ``url``; FetchError when it cannot be had or is not JSON."""
        merged = {"Accept": "application/json", **(headers or {})}

        def consume(response: requests.Response, shown: str, redact: _Redactor) -> Any:
            body = self._read_body(response, shown)
            try:
                return json.loads(body)
            except (UnicodeDecodeError, ValueError) as exc:
                if _looks_like_html(body[:HEAD_BYTES]):
                    reason = "the server returned an HTML page, not JSON"
                else:
                    reason = f"the response is not valid JSON ({redact(str(exc))})"
                raise FetchError(shown, response.status_code, reason) from None

        return self._get(url, params, merged, consume)

    def download(
        self,
        url: str,
        destination: Path,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Callable[[bytes], None] | None = None,
        max_bytes: int | None = None,
    ) -> Download:
        """Save ``url`` at ``destination`` (atomically), unless the server says it has not
        changed since ``etag`` / ``last_modified`` (then ``not_modified``, file untouched).

        ``expect`` sees the first 4096 bytes and raises ValueError when they are not what
        is wanted; the download then stops with a FetchError naming the URL. ``max_bytes``
        replaces the client's size limit for this download (a bulk archive is larger than
        any one file).
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        merged = dict(headers or {})
        if etag:
            merged["If-None-Match"] = etag
        if last_modified:
            merged["If-Modified-Since"] = last_modified

        def consume(response: requests.Response, shown: str, redact: _Redactor) -> Download:
            final = redact(strip_secrets(response.url or shown))
            if response.status_code == 304:
                return Download(
                    status="not_modified",
                    url=final,
                    http_status=304,
                    etag=response.headers.get("ETag") or etag,
                    last_modified=response.headers.get("Last-Modified") or last_modified,
                )
            sha256, size = self._save(response, shown, destination, expect, redact, limit)
            return Download(
                status="downloaded",
                url=final,
                http_status=response.status_code,
                sha256=sha256,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                bytes=size,
            )

        return self._get(url, None, merged, consume)

    # -- the retry loop -----------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_backoff, backoff * 2^(attempt-1))]."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return self._random.uniform(0, ceiling) if ceiling > 0 else 0.0

    def _get(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        consume: Callable[[requests.Response, str, _Redactor], T],
    ) -> T:
        secrets = [v for k, v in headers.items() if is_secret_name(k)]
        secrets += [str(v) for k, v in (params or {}).items() if is_secret_name(k)]
        try:
            full_url = requests.Request("GET", url, params=dict(params or {})).prepare().url or url
        except requests.exceptions.RequestException:
            full_url = url
        secrets += [v for k, v in parse_qsl(urlsplit(full_url).query) if is_secret_name(k)]
        redact = _Redactor(secrets)
        shown = redact(strip_secrets(full_url))
        attempts = self.retries + 1
        problem = ""
        status: int | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = self.session.get(
                    url,
                    params=params,
                    headers=dict(headers),
                    timeout=self.timeout,
                    stream=True,
                    allow_redirects=True,
                )
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                problem, status, wait = _describe(exc), None, None
            except requests.exceptions.RequestException as exc:
                raise FetchError(shown, None, redact(f"invalid request: {exc}")) from None
            else:
                with response:
                    try:
                        return self._answer(response, shown, redact, consume, attempt)
                    except _Retry as retry:
                        problem, status, wait = str(retry), retry.status, retry.wait
            if attempt == attempts:
                break
            delay = self._delay(attempt) if wait is None else min(wait, self.max_backoff)
            logger.warning(
                "GET %s: %s; retrying in %.1f s (attempt %d of %d)",
                shown,
                redact(problem),
                delay,
                attempt,
                attempts,
            )
            self.sleep(delay)
        raise FetchError(shown, status, redact(problem), attempts)

    def _answer(
        self,
        response: requests.Response,
        shown: str,
        redact: _Redactor,
        consume: Callable[[requests.Response, str, _Redactor], T],
        attempt: int,
    ) -> T:
        code = response.status_code
        reason = f"HTTP {code} {response.reason or http.client.responses.get(code, '')}".strip()
        if code == 429 or 500 <= code <= 599:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise _Retry(reason, code, wait)
        if code >= 400 or (300 <= code < 400 and code != 304):
            raise FetchError(shown, code, redact(reason), attempt)
        return consume(response, shown, redact)

    # -- bodies -------------------------------------------------------------------------

    def _check_declared_size(
        self, response: requests.Response, shown: str, limit: int | None = None
    ) -> int | None:
        limit = self.max_bytes if limit is None else limit
        declared = _content_length(response)
        if declared is not None and declared > limit:
            raise FetchError(
                shown,
                response.status_code,
                f"the response is {declared} bytes, over the limit of {limit} bytes",
            )
        return declared

    def _too_big(
        self, response: requests.Response, shown: str, limit: int | None = None
    ) -> FetchError:
        limit = self.max_bytes if limit is None else limit
        return FetchError(
            shown,
            response.status_code,
            f"the response is over the limit of {limit} bytes",
        )

    def _read_body(self, response: requests.Response, shown: str) -> bytes:
        declared = self._check_declared_size(response, shown)
        parts: list[bytes] = []
        size = 0
        for chunk in _chunks(response):
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_big(response, shown)
            parts.append(chunk)
        if declared is not None and size != declared:
            raise _Retry(f"the body was cut short: {size} of {declared} bytes received")
        return b"".join(parts)

    def _save(
        self,
        response: requests.Response,
        shown: str,
        destination: Path,
        expect: Callable[[bytes], None] | None,
        redact: _Redactor,
        limit: int | None = None,
    ) -> tuple[str, int]:
        limit = self.max_bytes if limit is None else limit
        declared = self._check_declared_size(response, shown, limit)
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
        )
        temporary = Path(name)
        try:
            digest = hashlib.sha256()
            size = 0
            head = b""
            checked = expect is None
            with os.fdopen(handle, "wb") as stream:
                for chunk in _chunks(response):
                    size += len(chunk)
                    if size > limit:
                        raise self._too_big(response, shown, limit)
                    if not checked:
                        head += chunk[: HEAD_BYTES - len(head)]
                        if len(head) >= HEAD_BYTES:
                            self._expect(expect, head, response, shown, redact)
                            checked = True
                    digest.update(chunk)
                    stream.write(chunk)
                if declared is not None and size != declared:
                    raise _Retry(f"the body was cut short: {size} of {declared} bytes received")
                if not checked:
                    self._expect(expect, head, response, shown, redact)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, destination)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return digest.hexdigest(), size

    @staticmethod
    def _expect(
        expect: Callable[[bytes], None] | None,
        head: bytes,
        response: requests.Response,
        shown: str,
        redact: _Redactor,
    ) -> None:
        if expect is None:
            return
        try:
            expect(head)
        except ValueError as exc:
            raise FetchError(shown, response.status_code, redact(str(exc))) from None


# -- content checks ----------------------------------------------------------------------

_IATI_ROOTS = ("iati-activities", "iati-activity", "iati-organisations")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (or an XLSX/DOCX Office file)"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document (such as XLS)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)
_NAME = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def _skip_prolog(text: bytes) -> bytes | None:
    """``text`` from its first element on, past the XML declaration, processing
    instructions, comments, a DOCTYPE and whitespace; None when the head ends first."""
    position = 0
    while True:
        while position < len(text) and text[position : position + 1].isspace():
            position += 1
        rest = text[position:]
        if rest.startswith(b"<?"):
            end = rest.find(b"?>")
            if end < 0:
                return None
            position += end + 2
        elif rest.startswith(b"<!--"):
            end = rest.find(b"-->")
            if end < 0:
                return None
            position += end + 3
        elif rest[:9].upper() == b"<!DOCTYPE":
            if rest[9:].lstrip()[:4].lower() == b"html":
                return b"<html"
            end = rest.find(b">")
            if end < 0:
                return None
            position += end + 1
        else:
            return rest


def looks_like_iati_xml(head: bytes) -> None:
    """Raise ValueError saying what the body is when its first bytes are not IATI XML
    (an activity or organisation file); pass when they are, or when the head is too
    short to tell."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not body:
        raise ValueError("the response is empty")
    for magic, what in _MAGIC:
        if body.startswith(magic):
            raise ValueError(f"the server returned {what}, not IATI XML")
    if body.startswith((b"{", b"[")):
        raise ValueError("the server returned JSON, not IATI XML")
    if not body.startswith(b"<"):
        preview = body[:40].decode("utf-8", errors="replace").splitlines()[0]
        raise ValueError(f"the response is not XML: it starts with {preview!r}")
    rest = _skip_prolog(body)
    if rest is None:
        return
    match = _NAME.match(rest)
    if match is None:
        preview = rest[:40].decode("utf-8", errors="replace")
        raise ValueError(f"the response is not XML: it starts with {preview!r}")
    name = match.group(1).decode("ascii", errors="replace")
    if name.lower() == "html":
        raise ValueError("the server returned an HTML page, not IATI XML")
    if name not in _IATI_ROOTS:
        raise ValueError(
            f"the response is XML but not IATI: its first element is <{name}>, "
            "expected <iati-activities>, <iati-activity> or <iati-organisations>"
        )
