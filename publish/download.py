"""Fetch a published release and verify every file against the catalogue.

A source is the folder that holds ``catalog.json``: a local path (or
``file://`` URL), an ``http(s)://`` base URL, or ``s3://bucket/prefix``.
Files land in ``out/<version>/`` only once all of them match the sizes and
SHA-256 digests in the catalogue; until then they sit in a hidden sibling
folder that is removed on failure, so ``out/<version>`` is never half written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

from assets.hashing import file_digest as _digest_file
from assets.storage.targets import TargetError, check_key

#: Exit codes of ``cdcompact download``.
EXIT_OK, EXIT_FAILED, EXIT_BAD_ARGUMENTS = 0, 1, 2

CATALOG_KEY = "catalog.json"
_CHUNK = 1 << 20
#: A version is one safe folder name (``2026.11.28``, ``2026.11.28.2``).
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
#: Statuses worth retrying: rate limiting and server errors.
RETRY_STATUSES = (429, 500, 502, 503, 504)


class DownloadError(RuntimeError):
    """A release cannot be fetched or does not match its catalogue entry."""


class ReleaseNotFoundError(DownloadError):
    """The source, its catalogue or the requested version does not exist (a bad argument)."""


@dataclass(frozen=True)
class DownloadedRelease:
    """A release verified on disk."""

    version: str
    folder: Path
    files: int
    total_bytes: int
    #: True when ``folder`` already held every file, verified, and nothing was fetched.
    already_present: bool = False


@dataclass(frozen=True)
class _ExpectedFile:
    relpath: str
    sha256: str
    size: int


class _Source(ABC):
    """Read-only access to the objects under a published target's root."""

    #: Shown in messages: the folder, base URL or ``s3://bucket/prefix``.
    location: str

    @abstractmethod
    def where(self, key: str) -> str:
        """The object's path or URL, for messages."""

    @abstractmethod
    def open(self, key: str) -> Iterator[bytes] | None:
        """The object's bytes in chunks, or None when it does not exist.

        Errors other than "missing" raise :class:`DownloadError` naming the object.
        """

    def read(self, key: str) -> bytes | None:
        chunks = self.open(key)
        return None if chunks is None else b"".join(chunks)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class _FolderSource(_Source):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.location = str(self.root)

    def where(self, key: str) -> str:
        return str(self.root / key)

    def open(self, key: str) -> Iterator[bytes] | None:
        path = self.root / check_key(key)
        try:
            stream = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise DownloadError(f"cannot read {path}: {exc.strerror}") from exc
        return self._chunks(stream, path)

    @staticmethod
    def _chunks(stream: Any, path: Path) -> Iterator[bytes]:
        with stream:
            try:
                while chunk := stream.read(_CHUNK):
                    yield chunk
            except OSError as exc:
                raise DownloadError(f"cannot read {path}: {exc.strerror}") from exc


class _HttpSource(_Source):
    """GETs with connect/read timeouts; connection errors, 429 and 5xx are retried with backoff."""

    def __init__(self, base_url: str, timeout: float, retries: int, backoff: float) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util import Retry

        self.base_url = base_url.rstrip("/") + "/"
        self.location = self.base_url
        self.timeout = timeout
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,  # the last response comes back; its status goes in the message
            respect_retry_after_header=True,
        )
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "cdcompact-download"
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def where(self, key: str) -> str:
        return self.base_url + quote(check_key(key), safe="/-_.~")

    def open(self, key: str) -> Iterator[bytes] | None:
        import requests

        url = self.where(key)
        try:
            response = self.session.get(url, stream=True, timeout=(self.timeout, self.timeout))
        except requests.RequestException as exc:
            raise DownloadError(f"cannot fetch {url}: {_describe_request_error(exc)}") from exc
        if response.status_code in (404, 410):
            response.close()
            return None
        if response.status_code >= 400:
            status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
            response.close()
            raise DownloadError(f"cannot fetch {url}: {status}")
        return self._chunks(response, url)

    @staticmethod
    def _chunks(response: Any, url: str) -> Iterator[bytes]:
        import requests

        with response:
            try:
                yield from response.iter_content(chunk_size=_CHUNK)
            except requests.RequestException as exc:
                raise DownloadError(f"cannot fetch {url}: {_describe_request_error(exc)}") from exc

    def close(self) -> None:
        self.session.close()


class _S3Source(_Source):
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        from assets.storage.s3 import S3Target

        try:
            self.target = S3Target(bucket, prefix, endpoint_url=endpoint_url)
        except TargetError as exc:
            raise ReleaseNotFoundError(str(exc)) from exc
        self.location = self.target.location

    def where(self, key: str) -> str:
        return f"{self.location}/{key}"

    def open(self, key: str) -> Iterator[bytes] | None:
        try:
            stream = self.target.read_stream(key, _CHUNK)
        except TargetError as exc:
            if "NoSuchBucket" in str(exc):
                raise ReleaseNotFoundError(str(exc)) from exc
            raise DownloadError(str(exc)) from exc
        return None if stream is None else self._chunks(stream, self.where(key))

    @staticmethod
    def _chunks(stream: Iterator[bytes], where: str) -> Iterator[bytes]:
        try:
            yield from stream
        except Exception as exc:  # botocore/urllib3 errors while reading the body
            raise DownloadError(f"cannot read {where}: {exc}") from exc


def _describe_request_error(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_source(
    source: str,
    *,
    timeout: float = 30,
    retries: int = 3,
    backoff: float = 0.5,
    endpoint_url: str | None = None,
) -> _Source:
    """The reader for a local folder, ``file://``, ``http(s)://`` or ``s3://`` source."""
    if source.rstrip("/").endswith("/" + CATALOG_KEY) or source == CATALOG_KEY:
        source = source.rstrip("/")[: -len(CATALOG_KEY)] or "."
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme in {"http", "https"}:
        if not parts.netloc:
            raise ReleaseNotFoundError(f"not a valid URL: {source}")
        return _HttpSource(source, timeout, retries, backoff)
    if scheme == "s3":
        if not parts.netloc:
            raise ReleaseNotFoundError(f"not a valid S3 location (s3://bucket/prefix): {source}")
        return _S3Source(parts.netloc, unquote(parts.path), endpoint_url)
    if scheme == "file":
        if parts.netloc not in {"", "localhost"}:
            raise ReleaseNotFoundError(f"cannot read a file:// URL on another host: {source}")
        folder = Path(url2pathname(parts.path))
    elif scheme and len(scheme) > 1:  # one letter is a Windows drive
        raise ReleaseNotFoundError(
            f"unsupported source {source!r}: expected a folder, file://, http(s):// or s3:// URL"
        )
    else:
        folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ReleaseNotFoundError(f"no such folder: {folder}")
    return _FolderSource(folder)


def _load_catalog(source: _Source) -> dict[str, Any]:
    raw = source.read(CATALOG_KEY)
    if raw is None:
        raise ReleaseNotFoundError(
            f"no {CATALOG_KEY} at {source.where(CATALOG_KEY)}: is this a published folder?"
        )
    try:
        catalog = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DownloadError(f"{source.where(CATALOG_KEY)} is not valid JSON: {exc}") from exc
    if not isinstance(catalog, dict) or not isinstance(catalog.get("releases"), list):
        raise DownloadError(f"{source.where(CATALOG_KEY)} has no list of releases")
    return catalog


def _find_entry(catalog: Mapping[str, Any], version: str | None, where: str) -> dict[str, Any]:
    entries = [e for e in catalog["releases"] if isinstance(e, dict)]
    available = [str(e.get("version")) for e in entries]
    wanted = version or catalog.get("latest")
    if not wanted:
        raise ReleaseNotFoundError(
            f"{where} names no latest release; pass a version "
            f"(available: {', '.join(available) or 'none'})"
        )
    for entry in entries:
        if entry.get("version") == wanted:
            return entry
    raise ReleaseNotFoundError(
        f"no release {wanted} in {where} (available: {', '.join(available) or 'none'})"
    )


def _expected_files(entry: Mapping[str, Any], where: str) -> tuple[str, str, list[_ExpectedFile]]:
    """The entry's version, its key prefix and its files, each checked to be a safe path."""
    version = str(entry.get("version"))
    if not _VERSION.match(version):
        raise DownloadError(f"{where}: refusing unsafe version {version!r}")
    path = str(entry.get("path") or "").strip("/")
    files = entry.get("files")
    if not path or not isinstance(files, dict) or not files:
        raise DownloadError(f"{where}: release {version} lists no path or no files")
    try:
        check_key(path)
    except TargetError as exc:
        raise DownloadError(f"{where}: release {version}: {exc}") from exc
    expected: list[_ExpectedFile] = []
    for relpath, facts in sorted(files.items()):
        try:
            check_key(relpath)
        except TargetError as exc:
            raise DownloadError(f"{where}: release {version}: {exc}") from exc
        if not isinstance(facts, dict) or "sha256" not in facts or "bytes" not in facts:
            raise DownloadError(f"{where}: release {version}: {relpath} has no sha256 or bytes")
        expected.append(_ExpectedFile(relpath, str(facts["sha256"]).lower(), int(facts["bytes"])))
    return version, path + "/", expected


def _mismatch(name: str, expected: _ExpectedFile, sha256: str, size: int) -> str | None:
    if size == expected.size and sha256 == expected.sha256:
        return None
    return (
        f"{name} does not match the catalogue: expected sha256 {expected.sha256} "
        f"({expected.size} bytes), got sha256 {sha256} ({size} bytes)"
    )


def _check_existing(folder: Path, files: list[_ExpectedFile]) -> None:
    """Raise when an existing ``out/<version>`` lacks a file or holds one that differs."""
    for expected in files:
        path = folder / expected.relpath
        if not path.is_file():
            raise DownloadError(
                f"{folder} exists but has no {expected.relpath}: "
                "remove the folder or choose another --out"
            )
        sha256, size = _digest_file(path)
        problem = _mismatch(str(path), expected, sha256, size)
        if problem:
            raise DownloadError(f"{problem}; remove {folder} or choose another --out")


def _fetch(source: _Source, key: str, destination: Path, expected: _ExpectedFile) -> None:
    chunks = source.open(key)
    if chunks is None:
        raise DownloadError(
            f"{expected.relpath} is listed in the catalogue but missing at {source.where(key)}"
        )
    digest = hashlib.sha256()
    size = 0
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("wb") as stream:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                stream.write(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # ends the HTTP response or S3 body if writing failed
    problem = _mismatch(
        f"{expected.relpath} ({source.where(key)})", expected, digest.hexdigest(), size
    )
    if problem:
        raise DownloadError(problem)


def download_release(
    source: str,
    out: Path,
    version: str | None = None,
    *,
    timeout: float = 30,
    retries: int = 3,
    backoff: float = 0.5,
    endpoint_url: str | None = None,
) -> DownloadedRelease:
    """Download ``version`` (default: the latest) from ``source`` into ``out/<version>/``, verified.

    ``endpoint_url`` applies to ``s3://`` sources; without it boto3 takes
    ``AWS_ENDPOINT_URL`` from the environment, as usual.
    """
    reader = open_source(
        source, timeout=timeout, retries=retries, backoff=backoff, endpoint_url=endpoint_url
    )
    try:
        catalog = _load_catalog(reader)
        entry = _find_entry(catalog, version, reader.where(CATALOG_KEY))
        found_version, prefix, files = _expected_files(entry, reader.where(CATALOG_KEY))
        total_bytes = sum(f.size for f in files)
        folder = out / found_version
        if folder.exists():
            if not folder.is_dir():
                raise DownloadError(f"{folder} exists and is not a folder")
            _check_existing(folder, files)
            return DownloadedRelease(found_version, folder, len(files), total_bytes, True)
        try:
            out.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{found_version}.partial-", dir=out))
        except OSError as exc:
            raise DownloadError(f"cannot create a folder in {out}: {exc.strerror}") from exc
        try:
            for expected in files:
                _fetch(reader, prefix + expected.relpath, staging / expected.relpath, expected)
            os.replace(staging, folder)
        except OSError as exc:
            raise DownloadError(f"cannot write the release into {out}: {exc}") from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return DownloadedRelease(found_version, folder, len(files), total_bytes, False)
    finally:
        reader.close()


def download_main(
    args: argparse.Namespace,
    default_source: str | None = None,
    *,
    endpoint_url: str | None = None,
) -> int:
    """``cdcompact download``: exit 0 when verified, 1 on a failed download, 2 on bad arguments.

    ``endpoint_url`` is the S3 endpoint for ``s3://`` sources (the configured one);
    without it boto3 reads ``AWS_ENDPOINT_URL``.
    """
    source = getattr(args, "source", None) or default_source
    if not source:
        print("cdcompact: no --from given and no publish folder configured", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"cdcompact: --out {out} exists and is not a folder", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    try:
        release = download_release(
            str(source), out, getattr(args, "version", None) or None, endpoint_url=endpoint_url
        )
    except ReleaseNotFoundError as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except DownloadError as exc:
        print(f"cdcompact: {exc}", file=sys.stderr)
        return EXIT_FAILED
    state = "already present in" if release.already_present else "downloaded to"
    print(
        f"release {release.version} {state} {release.folder}: "
        f"{release.files} files, {release.total_bytes:,} bytes, all sha256 verified"
    )
    return EXIT_OK
