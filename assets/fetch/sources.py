"""IATI dataset sources: one interface, one small adapter per kind, chosen in configuration.

Every adapter lists its datasets as :class:`DatasetRef` (a unique, safe key per dataset)
and fetches one into the :class:`~assets.fetch.rawstore.RawStore`, recording the attempt.
A fetch never raises for a dataset-level problem: it returns a :class:`FetchResult` with
status ``failed``, the reason, and the last good copy (when there is one) still in use.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from lxml import etree

from assets.fetch.archive import (
    NESTED_ARCHIVE_SUFFIXES,
    ArchiveError,
    ArchiveLimits,
    MemberRefused,
    ZipReader,
    looks_like_zip,
)
from assets.fetch.http import (
    Download,
    FetchError,
    HttpClient,
    looks_like_iati_xml,
    strip_secrets,
)
from assets.fetch.rawstore import RawStore, RawStoreError, utc_now
from assets.settings import IatiSource, Settings, over_size_limit, project_root
from assets.storage.targets import TargetError

logger = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
REGISTRY_URL = "https://iatiregistry.org"
DATASTORE_URL = "https://api.iatistandard.org/datastore"
DATASTORE_KEY_HEADER = "Ocp-Apim-Subscription-Key"
DEFAULT_API_KEY_ENV = "IATI_API_KEY"
#: The most rows CKAN and the Datastore's Solr return per page.
MAX_PAGE_SIZE = 1000
_HEAD_BYTES = 4096


class SourceConfigError(ValueError):
    """A configured source cannot be used; the message names the source and what to fix."""


class MissingSecretError(SourceConfigError):
    """A source needs a secret (an API key) that the environment does not hold."""


class SourceListingError(RuntimeError):
    """The list of a source's datasets cannot be had (the API failed or answered nonsense)."""


def safe_key(text: str) -> str:
    """A dataset key made of letters, digits and ``._-`` only."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return key or "dataset"


def _unique(keys: Sequence[str]) -> list[str]:
    """``keys`` with repeats made unique by ``-2``, ``-3``... in order."""
    taken: set[str] = set()
    result: list[str] = []
    for key in keys:
        candidate, number = key, 1
        while candidate in taken:
            number += 1
            candidate = f"{key}-{number}"
        taken.add(candidate)
        result.append(candidate)
    return result


@dataclass(frozen=True)
class DatasetRef:
    """One dataset of one source: what to fetch, under which key."""

    key: str  # unique, safe: [A-Za-z0-9._-] only
    source_name: str
    kind: str  # registry | datastore | url | local | bulk
    uri: str  # what a reader may see (no secrets)
    publisher: str | None = None

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(f"unsafe dataset key {self.key!r}: use letters, digits and ._- only")


@dataclass
class FetchResult:
    """The outcome of one attempt at one dataset, and the copy to use from now on."""

    ref: DatasetRef
    status: str  # "updated" | "unchanged" | "failed" | "missing" | "removed"
    sha256: str | None  # the last good copy (new or kept); None when there has never been one
    path: Path | None  # local path of that copy
    error: str | None
    fetched_at: str | None  # last successful attempt (ISO UTC)
    etag: str | None
    http_status: int | None
    last_modified: str | None = None
    bytes: int | None = None
    warnings: list[str] = field(default_factory=list)  # problems that did not stop the fetch
    file_stat: str | None = None  # a local file's stat when it was read (see LocalSource)
    #: False when the source did not list the dataset tonight (its listing failed, or the
    #: dataset is ``missing`` or ``removed``).
    listed: bool = True
    #: False when no bytes came tonight: the source said the copy is current (HTTP 304, a
    #: local file's same stat, an unchanged bulk archive), or the attempt failed.
    downloaded: bool = True
    checked_at: str | None = None  # when the source was asked (this attempt)

    @property
    def download(self) -> str | None:
        """What happened on the wire: ``downloaded`` (bytes came), ``revalidated`` (the
        source said the copy is current), ``kept`` (the last good copy after a failure,
        or while the dataset is missing), or None (no copy at all, or removed)."""
        if self.status in ("updated", "unchanged"):
            return "downloaded" if self.downloaded else "revalidated"
        if self.status in ("failed", "missing") and self.sha256:
            return "kept"
        return None


@dataclass
class _Outcome:
    """What an adapter found before it is recorded in the store."""

    status: str
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    bytes: int | None = None
    http_status: int | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    file_stat: str | None = None
    downloaded: bool = True


def _complete(
    store: RawStore, ref: DatasetRef, outcome: _Outcome, listed: bool = True
) -> FetchResult:
    """Record the attempt and point the result at the copy to use."""
    result = FetchResult(
        ref=ref,
        status=outcome.status,
        sha256=outcome.sha256,
        path=None,
        error=outcome.error,
        fetched_at=None,
        etag=outcome.etag,
        http_status=outcome.http_status,
        last_modified=outcome.last_modified,
        bytes=outcome.bytes,
        warnings=list(outcome.warnings),
        file_stat=outcome.file_stat,
        listed=listed,
        downloaded=outcome.downloaded and outcome.status in ("updated", "unchanged"),
    )
    record = store.record(result)
    result.sha256, result.fetched_at, result.bytes = record.sha256, record.fetched_at, record.bytes
    result.checked_at = record.checked_at
    if outcome.status == "removed":
        result.sha256 = None  # its last copy is no longer used
    if result.sha256:
        try:
            result.path = store.local_path(result.sha256)
        except (RawStoreError, TargetError, OSError) as exc:
            result.warnings.append(f"the last good copy cannot be read: {exc}")
    return result


def _status_against(store: RawStore, key: str, sha256: str) -> str:
    previous = store.last_good(key)
    return "unchanged" if previous is not None and previous.sha256 == sha256 else "updated"


class SourceAdapter(ABC):
    """One configured source of IATI datasets."""

    kind: str
    #: Configuration keys the adapter accepts besides name, kind and paths.
    option_names: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name
        #: Configured publishers the last listing found no activity dataset of.
        self.empty_publishers: list[str] = []

    @property
    def uri(self) -> str:
        """Where the source is, for messages about the source as a whole (no secrets)."""
        return self.name

    @classmethod
    @abstractmethod
    def from_source(
        cls, source: IatiSource, settings: Settings, client: HttpClient, environ: Mapping[str, str]
    ) -> SourceAdapter:
        """The adapter for one ``iati.sources`` entry; SourceConfigError when unusable."""

    def prepare(self, store: RawStore) -> None:
        """Get ready to list and fetch; :func:`fetch_all` calls it before
        :meth:`list_datasets`, and a failure fails the listing. Only adapters that fetch
        everything at once (a bulk archive) need it."""
        return None

    def finish(self, store: RawStore) -> None:
        """Release what :meth:`prepare` took; :func:`fetch_all` calls it once the source's
        datasets are fetched, or its listing failed."""
        return None

    @abstractmethod
    def list_datasets(self) -> list[DatasetRef]:
        """Every dataset of the source, in a stable order."""

    @abstractmethod
    def _obtain(self, ref: DatasetRef, store: RawStore) -> _Outcome:
        """Fetch one dataset into the store (may raise; :meth:`fetch` turns it into data)."""

    def fetch(self, ref: DatasetRef, store: RawStore) -> FetchResult:
        """Fetch one dataset, record the attempt; failures come back as data, not raised."""
        try:
            outcome = self._obtain(ref, store)
        except FetchError as exc:
            outcome = _Outcome("failed", error=str(exc), http_status=exc.status)
        except Exception as exc:  # any dataset-level problem is reported, never raised
            outcome = _Outcome("failed", error=f"{ref.uri}: {type(exc).__name__}: {exc}")
        return _complete(store, ref, outcome)

    def kept(
        self, ref: DatasetRef, store: RawStore, reason: str, status: str = "failed"
    ) -> FetchResult:
        """Record that ``ref`` was not listed tonight (the listing failed, or the dataset is
        ``missing`` or ``removed``), keeping its last good copy."""
        return _complete(store, ref, _Outcome(status, error=reason), listed=False)


# -- option parsing ---------------------------------------------------------------------


def _options(source: IatiSource, allowed: frozenset[str]) -> dict[str, Any]:
    unknown = sorted(set(source.options) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed | {"name", "kind", "paths"}))
        raise SourceConfigError(
            f"source {source.name!r} (kind {source.kind}): unknown option(s) "
            f"{', '.join(unknown)}; accepted: {accepted}"
        )
    return dict(source.options)


def _string_list(source: IatiSource, options: dict[str, Any], name: str) -> list[str] | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SourceConfigError(f"source {source.name!r}: {name} must be a list of strings")
    return [v.strip() for v in value]


def _page_size(source: IatiSource, options: dict[str, Any]) -> int:
    value = options.get("page_size", MAX_PAGE_SIZE)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise SourceConfigError(
            f"source {source.name!r}: page_size must be a whole number from 1 to {MAX_PAGE_SIZE}"
        )
    return value


def _http_url(source: IatiSource, value: Any, what: str) -> str:
    text = str(value).strip() if value is not None else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceConfigError(f"source {source.name!r}: {what} must be an http(s) URL: {text!r}")
    return text


# -- adapters ---------------------------------------------------------------------------


def _file_uri(path: Path) -> str:
    try:
        return path.relative_to(project_root()).as_posix()
    except ValueError:
        return path.as_uri()


class LocalSource(SourceAdapter):
    """IATI files on disk.

    Domain: files or folders named in ``paths`` (folders are read for ``*.xml``, not
    recursively).
    Caveats: a file is ``unchanged`` when its sha256 equals the last good copy's, or
    without reading it when its size, modification and change times, inode and device are
    those it had when that copy was read (as ``make`` and ``git`` trust them: any write
    changes the change time, which no tool can set back; a file changed within
    :data:`SETTLING_SECONDS` of being read is read again the next time); a file that is
    missing, not IATI XML or larger than ``fetch.max_file_mb`` fails (checked before it is
    read) and its last good copy stays in use; a folder that is missing fails the listing.
    Arguments: ``paths`` (list of files or folders, relative to the project root).
    Keys: the file name without ``.xml``, made unique with ``-2``... in path order.
    """

    kind = "local"

    def __init__(self, name: str, paths: Sequence[Path], max_bytes: int | None = None) -> None:
        super().__init__(name)
        self.paths = [Path(p) for p in paths]
        self.max_bytes = max_bytes
        self._files: dict[str, Path] = {}

    @property
    def uri(self) -> str:
        return ", ".join(_file_uri(p) for p in self.paths)

    @classmethod
    def from_source(
        cls, source: IatiSource, settings: Settings, client: HttpClient, environ: Mapping[str, str]
    ) -> LocalSource:
        _options(source, cls.option_names)
        if not source.paths:
            raise SourceConfigError(f"source {source.name!r} (kind local) needs paths")
        return cls(source.name, source.paths, settings.fetch.max_bytes)

    def list_datasets(self) -> list[DatasetRef]:
        files: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                files.extend(sorted(p for p in path.glob("*.xml") if p.is_file()))
            elif path.suffix.lower() == ".xml" or path.is_file():
                files.append(path)  # a missing file fails at fetch, keeping its last good copy
            else:
                raise SourceListingError(f"no such file or folder: {path}")
        keys = _unique([safe_key(re.sub(r"\.xml$", "", p.name, flags=re.I)) for p in files])
        self._files = dict(zip(keys, files, strict=True))
        return [DatasetRef(k, self.name, self.kind, _file_uri(p)) for k, p in self._files.items()]

    def _obtain(self, ref: DatasetRef, store: RawStore) -> _Outcome:
        if not self._files:
            self.list_datasets()
        path = self._files.get(ref.key)
        if path is None:
            return _Outcome("failed", error=f"source {self.name!r} has no dataset {ref.key!r}")
        if not path.is_file():
            return _Outcome("failed", error=f"{ref.uri}: no such file")
        before = path.stat()
        size = before.st_size
        if self.max_bytes is not None and size > self.max_bytes:
            return _Outcome("failed", error=f"{ref.uri}: {over_size_limit(size, self.max_bytes)}")
        previous = store.last_good(ref.key)
        if (
            previous is not None
            and previous.file_stat is not None
            and previous.file_stat == _file_stat(before)
            and previous.sha256
            and store.has(previous.sha256)
        ):  # not changed since its bytes were read: not read again (10 GB: half a minute)
            return _Outcome(
                "unchanged",
                sha256=previous.sha256,
                bytes=size,
                file_stat=previous.file_stat,
                downloaded=False,
            )
        with path.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
        try:
            looks_like_iati_xml(head)
        except ValueError as exc:
            reason = (
                str(exc)
                .replace("the server returned", "the file is")
                .replace("the response", "the file")
            )
            return _Outcome("failed", error=f"{ref.uri}: {reason}")
        sha256 = store.put_file(path)
        after = path.stat()
        settled = _file_stat(before) == _file_stat(after) and _settled(after)
        return _Outcome(
            _status_against(store, ref.key, sha256),
            sha256=sha256,
            bytes=after.st_size,
            file_stat=_file_stat(after) if settled else None,
        )


#: A local file modified or changed less than this before it was read may still be being
#: written within the file system's timestamp granularity: its stat is not trusted.
SETTLING_SECONDS = 2


def _file_stat(stat: os.stat_result) -> str:
    """What says a local file is the same file with the same bytes (see LocalSource)."""
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}:{stat.st_dev}"


def _settled(stat: os.stat_result) -> bool:
    now = time.time_ns()
    settling = SETTLING_SECONDS * 1_000_000_000
    return now - stat.st_mtime_ns > settling and now - stat.st_ctime_ns > settling


def _download_xml(
    client: HttpClient,
    store: RawStore,
    ref: DatasetRef,
    url: str,
    headers: Mapping[str, str] | None = None,
) -> _Outcome:
    """Conditional download of an IATI XML file into the store."""
    previous = store.last_good(ref.key)
    # Validators are only worth sending when the copy they describe is still stored.
    if previous is not None and previous.sha256 and not store.has(previous.sha256):
        previous = None
    staging = store.staging_path(ref.key)
    try:
        download = client.download(
            url,
            staging,
            etag=previous.etag if previous else None,
            last_modified=previous.last_modified if previous else None,
            headers=headers,
            expect=looks_like_iati_xml,
        )
        if download.status == "not_modified":
            if previous is None:
                return _Outcome(
                    "failed",
                    error=f"{ref.uri}: the server answered 304 Not Modified to a request "
                    "without validators",
                    http_status=304,
                )
            return _Outcome(
                "unchanged",
                sha256=previous.sha256,
                etag=download.etag,
                last_modified=download.last_modified,
                http_status=download.http_status,
                downloaded=False,
            )
        sha256 = store.put_file(staging, expected_sha256=download.sha256)
    finally:
        staging.unlink(missing_ok=True)
    return _Outcome(
        _status_against(store, ref.key, sha256),
        sha256=sha256,
        etag=download.etag,
        last_modified=download.last_modified,
        bytes=download.bytes,
        http_status=download.http_status,
    )


class UrlSource(SourceAdapter):
    """IATI files at explicit URLs.

    Domain: each URL in ``urls`` is one dataset.
    Caveats: conditional requests (ETag / Last-Modified) and the sha256 decide
    ``unchanged``; a page that is not IATI XML (an HTML error page served with 200) fails.
    Query parameters named like secrets (key, token, signature) are used to download but
    never shown or stored.
    Arguments: ``urls`` (list of http(s) URLs); ``names`` (optional list of keys, one per URL).
    Keys: ``names`` when given, else the URL's last path segment without ``.xml``.
    """

    kind = "url"
    option_names = frozenset({"urls", "names"})

    def __init__(
        self, name: str, client: HttpClient, urls: Sequence[str], names: Sequence[str] | None = None
    ) -> None:
        super().__init__(name)
        self.client = client
        if names is not None:
            keys = [safe_key(n) for n in names]
            if len(set(keys)) != len(keys):
                raise SourceConfigError(f"source {name!r}: names must be unique")
        else:
            keys = _unique([self._key_of(u) for u in urls])
        self._urls = dict(zip(keys, urls, strict=True))

    @staticmethod
    def _key_of(url: str) -> str:
        parts = urlsplit(url)
        segment = PurePosixPath(unquote(parts.path)).name
        segment = re.sub(r"\.xml$", "", segment, flags=re.I)
        return safe_key(segment or parts.hostname or "dataset")

    @property
    def uri(self) -> str:
        return ", ".join(strip_secrets(u) for u in self._urls.values())

    @classmethod
    def from_source(
        cls, source: IatiSource, settings: Settings, client: HttpClient, environ: Mapping[str, str]
    ) -> UrlSource:
        options = _options(source, cls.option_names)
        urls = _string_list(source, options, "urls")
        if not urls:
            raise SourceConfigError(f"source {source.name!r} (kind url) needs urls")
        urls = [_http_url(source, u, "each of urls") for u in urls]
        names = _string_list(source, options, "names")
        if names is not None and len(names) != len(urls):
            raise SourceConfigError(
                f"source {source.name!r}: names must give one name per URL "
                f"({len(names)} names for {len(urls)} URLs)"
            )
        return cls(source.name, client, urls, names)

    def list_datasets(self) -> list[DatasetRef]:
        return [
            DatasetRef(key, self.name, self.kind, strip_secrets(url))
            for key, url in self._urls.items()
        ]

    def _obtain(self, ref: DatasetRef, store: RawStore) -> _Outcome:
        url = self._urls.get(ref.key)
        if url is None:
            return _Outcome("failed", error=f"source {self.name!r} has no dataset {ref.key!r}")
        return _download_xml(self.client, store, ref, url)


def _extra(package: Mapping[str, Any], name: str) -> str | None:
    value = package.get(name)
    if value is None:
        for extra in package.get("extras") or []:
            if isinstance(extra, dict) and extra.get("key") == name:
                value = extra.get("value")
                break
    return str(value).strip().lower() if value is not None else None


class RegistrySource(SourceAdapter):
    """Activity files listed on the IATI Registry (CKAN API, no key).

    Domain: the activity datasets of the named publishers (Registry organisations), or of
    every publisher when none are named.
    Caveats: organisation files (``filetype`` ``organisation``) are skipped; each dataset is
    downloaded from its publisher's server (the first resource URL), so availability and
    validators vary by publisher; a publisher name with no datasets is logged and kept in
    ``empty_publishers`` (saved by :func:`assets.iati.fetching.fetch_datasets`).
    Arguments: ``base_url`` (default https://iatiregistry.org), ``publishers`` (list of
    organisation names), ``page_size`` (rows per API page, at most 1000).
    Keys: the Registry dataset name (``publisher-suffix``).
    """

    kind = "registry"
    option_names = frozenset({"base_url", "publishers", "page_size"})

    def __init__(
        self,
        name: str,
        client: HttpClient,
        base_url: str = REGISTRY_URL,
        publishers: Sequence[str] = (),
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        super().__init__(name)
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.publishers = list(publishers)
        self.page_size = page_size
        self._urls: dict[str, str] = {}

    @property
    def uri(self) -> str:
        return f"{self.base_url}/api/3/action/package_search"

    @classmethod
    def from_source(
        cls, source: IatiSource, settings: Settings, client: HttpClient, environ: Mapping[str, str]
    ) -> RegistrySource:
        options = _options(source, cls.option_names)
        base_url = _http_url(source, options.get("base_url", REGISTRY_URL), "base_url")
        publishers = _string_list(source, options, "publishers") or []
        return cls(source.name, client, base_url, publishers, _page_size(source, options))

    def _packages(self, publisher: str | None) -> Iterator[Mapping[str, Any]]:
        start, pages = 0, 0
        while True:
            params: dict[str, Any] = {"rows": self.page_size, "start": start, "sort": "name asc"}
            if publisher:
                params["fq"] = f"organization:{publisher}"
            document = self.client.get_json(self.uri, params=params)
            result = document.get("result") if isinstance(document, dict) else None
            count = result.get("count") if isinstance(result, dict) else None
            packages = result.get("results") if isinstance(result, dict) else None
            if not isinstance(count, int) or not isinstance(packages, list):
                raise SourceListingError(
                    f"{self.uri}: the Registry's answer has no result.count and result.results"
                )
            yield from (p for p in packages if isinstance(p, dict))
            start += len(packages)
            pages += 1
            if not packages or start >= count or pages > count // self.page_size + 2:
                return

    def list_datasets(self) -> list[DatasetRef]:
        refs: dict[str, DatasetRef] = {}
        urls: dict[str, str] = {}
        everyone: list[str | None] = [None]
        empty: list[str] = []
        for publisher in self.publishers or everyone:
            found = 0
            for package in self._packages(publisher):
                if _extra(package, "filetype") not in (None, "", "activity"):
                    continue
                dataset_name = str(package.get("name") or "").strip()
                if not dataset_name:
                    continue
                found += 1
                key = safe_key(dataset_name)
                resources = package.get("resources") or []
                url = ""
                if resources and isinstance(resources[0], dict):
                    url = str(resources[0].get("url") or "").strip()
                organisation = package.get("organization")
                owner = organisation.get("name") if isinstance(organisation, dict) else None
                shown = strip_secrets(url) if url else f"{self.base_url}/dataset/{dataset_name}"
                refs[key] = DatasetRef(key, self.name, self.kind, shown, owner or publisher)
                urls[key] = url
            if publisher and not found:
                empty.append(publisher)
                logger.warning(
                    "source %r: publisher %r has no activity datasets", self.name, publisher
                )
        self._urls, self.empty_publishers = urls, empty
        return [refs[k] for k in sorted(refs)]

    def _obtain(self, ref: DatasetRef, store: RawStore) -> _Outcome:
        url = self._urls.get(ref.key, ref.uri)
        if not url:
            return _Outcome("failed", error=f"the Registry lists no download URL for {ref.key}")
        return _download_xml(self.client, store, ref, url)


_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")
_SNIPPET_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


class DatastoreSource(SourceAdapter):
    """Activities by recipient country from the IATI Datastore API (subscription key).

    Domain: for each country, every activity whose recipient-country is that country,
    assembled into one file ``datastore-<CC>.xml``.
    Caveats: the key comes from an environment variable and is sent as the
    ``Ocp-Apim-Subscription-Key`` header only (never in URLs, messages or state); all
    pages are read each time (the API has no validators), and the sha256 of the assembled
    file (no generated-datetime, activities in id order) decides ``unchanged``; the file's
    root says version 2.03 whatever versions the activities were published in; activities
    that are not well-formed XML are left out with a warning.
    Arguments: ``base_url`` (default https://api.iatistandard.org/datastore),
    ``api_key_env`` (default IATI_API_KEY), ``countries`` (default: compact.countries),
    ``page_size`` (rows per page, at most 1000).
    Keys: ``datastore-<CC>``.
    """

    kind = "datastore"
    option_names = frozenset({"base_url", "api_key_env", "countries", "page_size"})

    def __init__(
        self,
        name: str,
        client: HttpClient,
        api_key: str,
        countries: Sequence[str],
        base_url: str = DATASTORE_URL,
        page_size: int = MAX_PAGE_SIZE,
        api_key_env: str = DEFAULT_API_KEY_ENV,
    ) -> None:
        super().__init__(name)
        self.client = client
        self._api_key = api_key
        self.countries = [c.upper() for c in countries]
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.api_key_env = api_key_env

    def __repr__(self) -> str:  # never show the key
        return f"DatastoreSource(name={self.name!r}, countries={self.countries!r})"

    @property
    def uri(self) -> str:
        return f"{self.base_url}/activity/select"

    @classmethod
    def from_source(
        cls, source: IatiSource, settings: Settings, client: HttpClient, environ: Mapping[str, str]
    ) -> DatastoreSource:
        options = _options(source, cls.option_names)
        api_key_env = str(options.get("api_key_env") or DEFAULT_API_KEY_ENV)
        api_key = (environ.get(api_key_env) or "").strip()
        if not api_key:
            raise MissingSecretError(
                f"source {source.name!r} (kind datastore) needs an IATI Datastore API "
                f"subscription key: set the environment variable {api_key_env} "
                "(keys from https://developer.iatistandard.org)"
            )
        countries = _string_list(source, options, "countries")
        countries = [
            c.upper() for c in (countries if countries is not None else settings.countries)
        ]
        bad = [c for c in countries if not re.fullmatch(r"[A-Z]{2}", c)]
        if bad or not countries:
            raise SourceConfigError(
                f"source {source.name!r}: countries must be ISO 3166-1 alpha-2 codes "
                f"(from the source or compact.countries); got {bad or 'none'}"
            )
        base_url = _http_url(source, options.get("base_url", DATASTORE_URL), "base_url")
        page_size = _page_size(source, options)
        return cls(source.name, client, api_key, countries, base_url, page_size, api_key_env)

    def list_datasets(self) -> list[DatasetRef]:
        return [
            DatasetRef(
                f"datastore-{country}",
                self.name,
                self.kind,
                f"{self.uri}?q=recipient_country_code:{country}",
            )
            for country in self.countries
        ]

    def _obtain(self, ref: DatasetRef, store: RawStore) -> _Outcome:
        country = ref.key.removeprefix("datastore-")
        if not re.fullmatch(r"[A-Z]{2}", country):
            return _Outcome("failed", error=f"not a datastore dataset key: {ref.key!r}")
        staging = store.staging_path(ref.key)
        warnings: list[str] = []
        try:
            try:
                self._assemble(country, staging, warnings)
            except FetchError as exc:
                if exc.status in (401, 403):
                    raise FetchError(
                        exc.url,
                        exc.status,
                        f"{exc.message} (check the subscription key in {self.api_key_env})",
                        exc.attempts,
                    ) from None
                raise
            size = staging.stat().st_size
            sha256 = store.put_file(staging)
        finally:
            staging.unlink(missing_ok=True)
        return _Outcome(
            _status_against(store, ref.key, sha256),
            sha256=sha256,
            bytes=size,
            http_status=200,
            warnings=warnings,
        )

    def _pages(self, country: str) -> Iterator[list[Any]]:
        start, pages = 0, 0
        while True:
            params = {
                "q": f"recipient_country_code:{country}",
                "fl": "iati_identifier,iati_xml",
                "rows": self.page_size,
                "start": start,
                "wt": "json",
                "sort": "id asc",
            }
            document = self.client.get_json(
                self.uri, params=params, headers={DATASTORE_KEY_HEADER: self._api_key}
            )
            response = document.get("response") if isinstance(document, dict) else None
            found = response.get("numFound") if isinstance(response, dict) else None
            docs = response.get("docs") if isinstance(response, dict) else None
            if not isinstance(found, int) or not isinstance(docs, list):
                raise FetchError(
                    self.uri, 200, "the answer has no response.numFound and response.docs"
                )
            yield docs
            start += len(docs)
            pages += 1
            if not docs or start >= found or pages > found // self.page_size + 2:
                return

    def _assemble(self, country: str, destination: Path, warnings: list[str]) -> None:
        seen: set[str] = set()
        skipped = 0
        with destination.open("w", encoding="utf-8", newline="\n") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n<iati-activities version="2.03">\n')
            for docs in self._pages(country):
                for doc in docs:
                    identifier = (
                        str(doc.get("iati_identifier") or "") if isinstance(doc, dict) else ""
                    )
                    snippet = doc.get("iati_xml") if isinstance(doc, dict) else None
                    if identifier and identifier in seen:
                        continue
                    if isinstance(snippet, list):  # Solr may return stored fields as lists
                        snippet = snippet[0] if snippet else None
                    if not isinstance(snippet, str) or not self._is_activity(snippet):
                        skipped += 1
                        continue
                    seen.add(identifier)
                    out.write(_XML_DECLARATION.sub("", snippet).strip())
                    out.write("\n")
            out.write("</iati-activities>\n")
        if skipped:
            warnings.append(
                f"{skipped} activit{'y' if skipped == 1 else 'ies'} for {country} left out: "
                "no iati_xml, or not a well-formed <iati-activity>"
            )

    @staticmethod
    def _is_activity(snippet: str) -> bool:
        try:
            element = etree.fromstring(
                _XML_DECLARATION.sub("", snippet).encode("utf-8"), _SNIPPET_PARSER
            )
        except etree.XMLSyntaxError:
            return False
        return isinstance(element.tag, str) and element.tag == "iati-activity"


DEFAULT_BULK_MEMBERS = ("*.xml",)
DEFAULT_MAX_MEMBERS = 100_000
DEFAULT_MAX_ARCHIVE_MB = 4096
#: Without ``max_total_mb``, an archive's members may unpack to this many times its size
#: (the IATI data dump unpacks to about 20 times its size).
BULK_TOTAL_RATIO = 50
_MIB = 1024 * 1024
_BULK_STATE_FORMAT = 1


def _positive_number(
    source: IatiSource, options: dict[str, Any], name: str, whole: bool = False
) -> float | None:
    value = options.get(name)
    if value is None:
        return None
    wrong = isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
    if wrong or (whole and not isinstance(value, int)):
        kind = "a whole number" if whole else "a number"
        raise SourceConfigError(f"source {source.name!r}: {name} must be {kind} above 0")
    return float(value)


def _member_key(name: str) -> tuple[str, str | None]:
    """The dataset key and publisher of an archive member (see :class:`BulkSource`)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return "dataset", None
    stem = re.sub(r"\.xml$", "", parts[-1], flags=re.I)
    folders = parts[:-1]
    if len(folders) >= 2 and folders[-2].lower() == "data":  # the dump's data/<publisher>/
        return safe_key(stem), folders[-1]
    publisher = folders[-1] if folders and folders[-1].lower() != "data" else None
    return safe_key("-".join([*folders, stem])), publisher


def _member_content_check(head: bytes) -> None:
    """:func:`looks_like_iati_xml`, worded for an archive member."""
    try:
        looks_like_iati_xml(head)
    except ValueError as exc:
        reason = str(exc).replace("the server returned", "the member is")
        raise ValueError(reason.replace("the response", "the member")) from None


@dataclass(frozen=True)
class _Member:
    """One listed member of a bulk archive."""

    key: str
    name: str  # as the archive names it: shown, never used as a path
    publisher: str | None
    index: int | None  # in ZipReader.members; None when the archive was not read again


class BulkSource(SourceAdapter):
    """IATI files inside one ZIP archive, such as the IATI data dump.

    Domain: each member of the archive at ``url`` whose path matches ``members`` is one
    dataset (the IATI data dump, https://iati-data-dump.codeforiati.org/download, holds
    ``data/<publisher>/<dataset>.xml`` for every Registry dataset).
    Caveats: the archive is downloaded once per run to a staging file no larger than
    ``max_archive_mb``, conditionally (ETag / Last-Modified of the last archive read in
    full with the same patterns and limits); on 304 Not Modified (or the same sha256)
    every dataset is ``unchanged``, or failed for the reason it failed last time, without
    reading the archive. Members are read one at a time into the raw store, never to a path built
    from their names, and each goes through the same IATI check as a download; a member
    is refused (failed, its last good copy kept, the reason naming the archive and the
    member) when it unpacks to more than ``fetch.max_file_mb`` (counted while reading,
    whatever its header says), to more than 200 times its compressed size (members over
    1 MiB), to another size or CRC than its header records, or when the members read so
    far exceed ``max_total_mb``; encrypted members, symbolic links, absolute or ``..``
    paths, overlapping members and nested archives are refused unread. Members matching
    no pattern are skipped (logged). An archive that cannot be downloaded or opened (an
    HTML page, truncated, over ``max_members`` entries, no matching member) fails the
    listing: every dataset the source had keeps its last good copy. A dataset gone from
    the archive is no longer listed, like one gone from the Registry.
    Arguments: ``url`` (http(s), required); ``members`` (glob patterns on member paths,
    case-insensitive, ``*`` also matches ``/``; default ``["*.xml"]``); ``max_members``
    (entries, files and folders, the archive may hold; default 100000); ``max_archive_mb``
    (MiB downloaded, default 4096); ``max_total_mb`` (MiB unpacked from all members
    together; default 50 times the archive's size, at least ``fetch.max_file_mb``).
    Keys: for ``data/<publisher>/<file>.xml`` the file name without ``.xml`` (the
    Registry dataset name, as the registry source keys it); otherwise the member path
    without ``.xml``, folders joined by ``-``; repeats made unique with ``-2``... in path
    order (refused members last). ``uri`` is ``<url>#<member path>``.
    """

    kind = "bulk"
    option_names = frozenset({"url", "members", "max_members", "max_archive_mb", "max_total_mb"})

    def __init__(
        self,
        name: str,
        client: HttpClient,
        url: str,
        members: Sequence[str] = DEFAULT_BULK_MEMBERS,
        *,
        max_member_bytes: int,
        max_members: int = DEFAULT_MAX_MEMBERS,
        max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_MB * _MIB,
        max_total_bytes: int | None = None,
    ) -> None:
        super().__init__(name)
        self.client = client
        self.url = url
        self.patterns = [p.lower() for p in members]
        self.max_member_bytes = max_member_bytes
        self.max_members = max_members
        self.max_archive_bytes = max_archive_bytes
        self.max_total_bytes = max_total_bytes
        #: (member path, why) of members this run did not list (for logs and tests).
        self.skipped: list[tuple[str, str]] = []
        self._members: dict[str, _Member] | None = None
        self._reader: ZipReader | None = None
        self._staging: Path | None = None
        self._download: Download | None = None
        self._archive: tuple[str | None, int | None] = (None, None)  # sha256, bytes
        self._outcomes: dict[str, dict[str, Any]] = {}

    @property
    def uri(self) -> str:
        return strip_secrets(self.url)

    def member_uri(self, member: str) -> str:
        """Where a member is, for people: ``<archive url>#<member path>``."""
        return f"{self.uri}#{quote(member, safe='/')}"

    @classmethod
    def from_source(
        cls, source: IatiSource, settings: Settings, client: HttpClient, environ: Mapping[str, str]
    ) -> BulkSource:
        options = _options(source, cls.option_names)
        if options.get("url") is None:
            raise SourceConfigError(f"source {source.name!r} (kind bulk) needs url")
        url = _http_url(source, options["url"], "url")
        members = _string_list(source, options, "members")
        if members is not None and not members:
            raise SourceConfigError(f"source {source.name!r}: members must not be empty")
        max_members = _positive_number(source, options, "max_members", whole=True)
        archive_mb = _positive_number(source, options, "max_archive_mb")
        total_mb = _positive_number(source, options, "max_total_mb")
        return cls(
            source.name,
            client,
            url,
            members or DEFAULT_BULK_MEMBERS,
            max_member_bytes=settings.fetch.max_bytes,
            max_members=int(max_members or DEFAULT_MAX_MEMBERS),
            max_archive_bytes=int((archive_mb or DEFAULT_MAX_ARCHIVE_MB) * _MIB),
            max_total_bytes=int(total_mb * _MIB) if total_mb else None,
        )

    # -- the archive: once per run -----------------------------------------------------

    def _state_key(self, store: RawStore) -> str:
        return f"{store.prefix}/archives/{safe_key(self.name)}.json"

    def _load_state(self, store: RawStore) -> dict[str, Any] | None:
        """What the last run that read the archive in full found, when usable."""
        try:
            data = store.target.read_bytes(self._state_key(store))
            state = json.loads(data) if data else None
        except (ValueError, TargetError, OSError) as exc:
            logger.warning("source %r: the archive state cannot be read: %s", self.name, exc)
            return None
        if not isinstance(state, dict) or state.get("format") != _BULK_STATE_FORMAT:
            return None
        members = state.get("members")
        usable = (
            state.get("url") == self.uri
            and state.get("limits") == self._fingerprint()
            and state.get("complete") is True
            and isinstance(members, dict)
            and all(
                isinstance(m, dict) and isinstance(m.get("member"), str) for m in members.values()
            )
        )
        if not usable or not isinstance(members, dict):
            return None
        # Validators are only worth sending when the copies they describe are still stored.
        for member in members.values():
            sha256 = member.get("sha256")
            if sha256 and not store.has(str(sha256)):
                return None
        return state

    def _fingerprint(self) -> dict[str, Any]:
        """What the verdicts on the members depend on besides the archive: with other
        patterns or limits, the archive is read again even when it has not changed."""
        return {
            "members": self.patterns,
            "max_file_bytes": self.max_member_bytes,
            "max_total_bytes": self.max_total_bytes,
            "max_members": self.max_members,
        }

    def prepare(self, store: RawStore) -> None:
        self.finish(store)  # a second run of the same adapter starts afresh
        self.skipped = []
        previous = self._load_state(store)
        staging = store.staging_path(f"{safe_key(self.name)}.archive", ".zip")
        staging.unlink(missing_ok=True)  # left by a run that was killed
        self._staging = staging
        download = self.client.download(
            self.url,
            staging,
            etag=previous.get("etag") if previous else None,
            last_modified=previous.get("last_modified") if previous else None,
            expect=looks_like_zip,
            max_bytes=self.max_archive_bytes,
        )
        self._download = download
        if download.status == "not_modified" or (
            previous is not None and download.sha256 == previous.get("sha256")
        ):
            if previous is None:
                raise SourceListingError(
                    f"{self.uri}: the server answered 304 Not Modified to a request without "
                    "validators"
                )
            staging.unlink(missing_ok=True)
            self._reuse(previous)
            return
        self._archive = (download.sha256, download.bytes)
        limits = ArchiveLimits(
            max_member_bytes=self.max_member_bytes,
            max_total_bytes=self.max_total_bytes
            or max(BULK_TOTAL_RATIO * download.bytes, self.max_member_bytes),
            max_members=self.max_members,
            total_limit_name="max_total_mb"
            if self.max_total_bytes
            else f"{BULK_TOTAL_RATIO} times the archive's size; set max_total_mb",
        )
        try:
            self._reader = ZipReader(staging, limits)
        except ArchiveError as exc:
            raise SourceListingError(f"{self.uri}: the archive cannot be read: {exc}") from None
        self._members = self._list_members(self._reader)

    def _reuse(self, previous: dict[str, Any]) -> None:
        """The listing and outcomes of the last full read (the archive has not changed)."""
        members: dict[str, dict[str, Any]] = previous["members"]
        self._archive = (previous.get("sha256"), previous.get("bytes"))
        self._outcomes = {key: dict(member) for key, member in members.items()}
        self._members = {
            key: _Member(key, str(m["member"]), m.get("publisher"), None)
            for key, m in members.items()
        }

    def _list_members(self, reader: ZipReader) -> dict[str, _Member]:
        chosen: list[tuple[bool, str, int]] = []  # (refused, name, index)
        for index, info in enumerate(reader.members):
            name = info.filename
            if not any(fnmatch.fnmatchcase(name.lower(), p) for p in self.patterns):
                archive = name.lower().endswith(NESTED_ARCHIVE_SUFFIXES)
                why = "a nested archive; not opened" if archive else "matches no pattern of members"
                self.skipped.append((name, why))
                continue
            chosen.append((reader.problem(index) is not None, name, index))
        nested = [name for name, why in self.skipped if why.startswith("a nested")]
        if self.skipped:
            logger.info(
                "source %r: %d member(s) of %s skipped (not matching %s)",
                self.name,
                len(self.skipped),
                self.uri,
                ", ".join(self.patterns),
            )
        if nested:
            logger.warning(
                "source %r: nested archive(s) in %s not opened: %s",
                self.name,
                self.uri,
                ", ".join(repr(n) for n in nested[:10]) + (" ..." if len(nested) > 10 else ""),
            )
        if not chosen:
            raise SourceListingError(
                f"{self.uri}: the archive holds no member matching {', '.join(self.patterns)} "
                f"({len(reader.members)} files)"
            )
        chosen.sort()
        keys = _unique([_member_key(name)[0] for _, name, _ in chosen])
        listed: dict[str, _Member] = {}
        for key, (refused, name, index) in zip(keys, chosen, strict=True):
            publisher = None if refused else _member_key(name)[1]
            listed[key] = _Member(key, name, publisher, index)
        return listed

    def list_datasets(self) -> list[DatasetRef]:
        if self._members is None:
            raise SourceListingError(
                f"{self.uri}: the archive has not been downloaded (fetch_all prepares it)"
            )
        return [
            DatasetRef(m.key, self.name, self.kind, self.member_uri(m.name), m.publisher)
            for m in sorted(self._members.values(), key=lambda m: m.key)
        ]

    def finish(self, store: RawStore) -> None:
        """Close and remove the staging archive; remember what this run found (in
        ``<raw>/archives/<source>.json``), with the archive's validators only when every
        listed member was read to a verdict."""
        if self._reader is not None:
            self._reader.close()
        if self._staging is not None:
            self._staging.unlink(missing_ok=True)
        members, download = self._members, self._download
        if members is not None and download is not None:
            complete = all(key in self._outcomes for key in members)
            state = {
                "format": _BULK_STATE_FORMAT,
                "url": self.uri,
                "limits": self._fingerprint(),
                "complete": complete,
                "etag": download.etag if complete else None,
                "last_modified": download.last_modified if complete else None,
                "sha256": self._archive[0],
                "bytes": self._archive[1],
                "checked_at": utc_now(),
                "members": {k: self._outcomes[k] for k in sorted(members) if k in self._outcomes},
            }
            text = json.dumps(state, indent=1, ensure_ascii=False) + "\n"
            store.target.write_bytes(self._state_key(store), text.encode(), "application/json")
        self._members, self._reader, self._staging, self._download = None, None, None, None
        self._archive, self._outcomes = (None, None), {}

    # -- one member ---------------------------------------------------------------------

    def _obtain(self, ref: DatasetRef, store: RawStore) -> _Outcome:
        member = (self._members or {}).get(ref.key)
        download = self._download
        if member is None or download is None:
            return _Outcome("failed", error=f"source {self.name!r} has no dataset {ref.key!r}")
        if member.index is None or self._reader is None:
            return self._reused(ref, store, download)
        verdict: dict[str, Any] = {"member": member.name, "publisher": member.publisher}
        staging = store.staging_path(ref.key)
        try:
            try:
                sha256, size = self._reader.extract(
                    member.index, staging, expect=_member_content_check
                )
            except MemberRefused as exc:
                error = f"{self.uri}: member {member.name!r}: {exc}"
                self._outcomes[ref.key] = {**verdict, "sha256": None, "error": error}
                return _Outcome("failed", error=error)
            sha256 = store.put_file(staging, expected_sha256=sha256)
        finally:
            staging.unlink(missing_ok=True)
        self._outcomes[ref.key] = {**verdict, "sha256": sha256, "error": None, "bytes": size}
        return _Outcome(
            _status_against(store, ref.key, sha256),
            sha256=sha256,
            etag=download.etag,
            last_modified=download.last_modified,
            bytes=size,
            http_status=download.http_status,
        )

    def _reused(self, ref: DatasetRef, store: RawStore, download: Download) -> _Outcome:
        """The outcome of the last full read, the archive being the same."""
        verdict = self._outcomes.get(ref.key) or {}
        sha256 = verdict.get("sha256")
        if not sha256:
            error = verdict.get("error") or f"{ref.uri}: not read when the archive last changed"
            return _Outcome("failed", error=str(error))
        return _Outcome(
            _status_against(store, ref.key, str(sha256)),
            sha256=str(sha256),
            etag=download.etag,
            last_modified=download.last_modified,
            bytes=verdict.get("bytes"),
            http_status=download.http_status,
            downloaded=False,
        )


class UnavailableSource(SourceAdapter):
    """A configured source that cannot run because a secret is missing.

    Domain: none; it stands in for the source so a run can go on without it.
    Caveats: its listing fails with the reason (which environment variable to set), so
    :func:`fetch_all` reports ``<source>-listing`` as failed and keeps the last good
    copies of the datasets it fetched before; it never makes a request.
    Arguments: none (built by :func:`adapters_from_settings`).
    """

    def __init__(self, name: str, kind: str, reason: SourceConfigError) -> None:
        super().__init__(name)
        self.kind = kind
        self.reason = reason

    @classmethod
    def from_source(
        cls, source: IatiSource, settings: Settings, client: HttpClient, environ: Mapping[str, str]
    ) -> UnavailableSource:
        raise SourceConfigError(f"source {source.name!r}: kind {source.kind!r} is not configurable")

    def list_datasets(self) -> list[DatasetRef]:
        raise self.reason

    def _obtain(self, ref: DatasetRef, store: RawStore) -> _Outcome:
        return _Outcome("failed", error=str(self.reason))


#: The adapter for each ``kind`` of ``iati.sources`` entry.
ADAPTERS: dict[str, type[SourceAdapter]] = {
    cls.kind: cls for cls in (LocalSource, UrlSource, RegistrySource, DatastoreSource, BulkSource)
}


def adapters_from_settings(
    settings: Settings,
    client: HttpClient,
    *,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
) -> list[SourceAdapter]:
    """One adapter per configured IATI source (secrets read from ``environ``, default
    ``os.environ``); SourceConfigError naming the source when one is configured wrongly.

    A source whose secret is missing from the environment becomes an
    :class:`UnavailableSource` (its listing fails with the variable to set, the other
    sources run), or raises :class:`MissingSecretError` when ``strict``.
    """
    environ = os.environ if environ is None else environ
    adapters: list[SourceAdapter] = []
    names: set[str] = set()
    for source in settings.iati_sources:
        if source.name in names:
            raise SourceConfigError(f"two IATI sources are named {source.name!r}")
        names.add(source.name)
        adapter_class = ADAPTERS.get(source.kind)
        if adapter_class is None:
            raise SourceConfigError(
                f"source {source.name!r}: unknown kind {source.kind!r}; "
                f"expected one of {', '.join(sorted(ADAPTERS))}"
            )
        try:
            adapters.append(adapter_class.from_source(source, settings, client, environ))
        except MissingSecretError as exc:
            if strict:
                raise
            logger.warning("%s", exc)
            adapters.append(UnavailableSource(source.name, source.kind, exc))
    return adapters


def listing_key(source_name: str) -> str:
    """The key of the result reporting that a source's listing failed."""
    return f"{safe_key(source_name)}-listing"


#: What each kind of source calls the list a dataset went missing from.
LISTING_NAMES = {
    "registry": "the Registry listing",
    "datastore": "the Datastore's answer",
    "url": "the configured URLs",
    "local": "the configured files",
    "bulk": "the bulk archive",
}


@dataclass(frozen=True)
class Limits:
    """How many downloads run at once, in all and from one host, and for how many nights
    a dataset missing from its source's listing keeps its last good copy."""

    max_concurrent: int = 8
    max_per_host: int = 2
    keep_missing_nights: int = 3

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or self.max_per_host < 1 or self.keep_missing_nights < 0:
            raise ValueError(
                f"fetch limits must be at least 1 download at once and 0 nights: {self}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        fetch = settings.fetch
        return cls(fetch.max_concurrent, fetch.max_per_host, fetch.keep_missing_nights)


@dataclass
class _Job:
    """One dataset to fetch, and the slot its result is reported in."""

    adapter: SourceAdapter
    ref: DatasetRef
    host: str
    result: FetchResult | None = None


def _host(adapter: SourceAdapter, ref: DatasetRef) -> str:
    """What ``fetch.max_per_host`` counts downloads by: the URL's host (a local file or a
    bulk archive's members: the source, one at a time for an archive)."""
    if adapter.kind in ("local", "bulk"):
        return f"{adapter.kind}:{adapter.name}"
    return urlsplit(ref.uri).netloc.lower() or f"{adapter.kind}:{adapter.name}"


def fetch_all(
    adapters: Sequence[SourceAdapter],
    store: RawStore,
    *,
    progress: Callable[[FetchResult], None] | None = None,
    limits: Limits | None = None,
) -> list[FetchResult]:
    """Fetch every dataset of every source; nothing one source or dataset does stops the rest.

    Sources are listed one after the other; then their datasets are downloaded by up to
    ``limits.max_concurrent`` threads, at most ``limits.max_per_host`` from one host (a
    bulk archive's members one at a time), so a slow or failing host holds up only its
    own downloads. Results come back (and ``progress`` is called) in listing order.

    When a source cannot list its datasets, the result list has a failed result keyed
    ``<source>-listing`` (not recorded in the state), and each dataset the state knows for
    that source is recorded as failed with its last good copy kept (and returned), so a
    run can go on with yesterday's files. A dataset the state knows that its source's
    listing no longer holds is ``missing``: its last good copy is kept and returned, with
    since when and for how many nights, for ``limits.keep_missing_nights`` nights; the
    next night it is ``removed`` (no copy returned) and is not reported again unless it
    comes back. A key listed by two sources is fetched for the first only; the second
    gets a failed result. Each adapter's :meth:`~SourceAdapter.prepare` runs before its
    listing (a failure there fails the listing) and its :meth:`~SourceAdapter.finish`
    after the last download, whatever happened.
    """
    limits = limits or Limits()
    slots: list[_Job | FetchResult] = []
    owners: dict[str, str] = {}
    with store.batch():
        try:
            for adapter in adapters:
                slots.extend(_list_source(adapter, store, owners, limits))
            _run_jobs([j for j in slots if isinstance(j, _Job)], store, limits, slots, progress)
        finally:
            for adapter in adapters:
                try:
                    adapter.finish(store)
                except Exception as exc:  # cleaning up never stops the run
                    logger.warning("source %r: cleaning up failed: %s", adapter.name, exc)
    return [s.result if isinstance(s, _Job) and s.result else s for s in slots]  # type: ignore[misc]


def _run_jobs(
    jobs: Sequence[_Job],
    store: RawStore,
    limits: Limits,
    slots: Sequence[_Job | FetchResult],
    progress: Callable[[FetchResult], None] | None,
) -> None:
    """Download ``jobs`` within ``limits``; ``progress`` each slot once it and those
    before it are done."""
    waiting = list(jobs)
    running: dict[Future[FetchResult], _Job] = {}
    per_host: dict[str, int] = {}
    reported = 0

    def report_ready() -> None:
        nonlocal reported
        while reported < len(slots):
            slot = slots[reported]
            done = slot.result if isinstance(slot, _Job) else slot
            if done is None:
                return
            if progress is not None:
                progress(done)
            reported += 1

    with ThreadPoolExecutor(max_workers=limits.max_concurrent, thread_name_prefix="fetch") as pool:
        while waiting or running:
            for job in list(waiting):
                if len(running) >= limits.max_concurrent:
                    break
                limit = 1 if job.adapter.kind == "bulk" else limits.max_per_host
                if per_host.get(job.host, 0) >= limit:
                    continue
                waiting.remove(job)
                per_host[job.host] = per_host.get(job.host, 0) + 1
                running[pool.submit(job.adapter.fetch, job.ref, store)] = job
            report_ready()
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                per_host[job.host] -= 1
                job.result = future.result()  # fetch returns failures as data
        report_ready()


def _list_source(
    adapter: SourceAdapter, store: RawStore, owners: dict[str, str], limits: Limits
) -> list[_Job | FetchResult]:
    """List the datasets of one source: a job per dataset to fetch, and the results of
    those that need no download (see :func:`fetch_all`)."""
    slots: list[_Job | FetchResult] = []
    try:
        adapter.prepare(store)
        refs = adapter.list_datasets()
    except Exception as exc:  # any listing failure is reported as data
        reason = (
            str(exc)
            if isinstance(exc, FetchError | SourceListingError | SourceConfigError)
            else (f"{type(exc).__name__}: {exc}")
        )
        error = f"listing the datasets of source {adapter.name!r} failed: {reason}"
        logger.warning("%s", error)
        listing = DatasetRef(listing_key(adapter.name), adapter.name, adapter.kind, adapter.uri)
        slots.append(
            FetchResult(
                listing,
                "failed",
                None,
                None,
                error,
                None,
                None,
                getattr(exc, "status", None),
                listed=False,
            )
        )
        for record in sorted(store.records().values(), key=lambda r: r.key):
            if record.source == adapter.name and record.key not in owners:
                if record.status == "removed":
                    continue
                owners[record.key] = adapter.name
                ref = DatasetRef(record.key, record.source, record.kind, record.uri)
                slots.append(adapter.kept(ref, store, f"not refreshed: {error}"))
        return slots
    for ref in refs:
        owner = owners.setdefault(ref.key, adapter.name)
        if owner != adapter.name:
            error = (
                f"dataset key {ref.key!r} is listed by sources {owner!r} and "
                f"{adapter.name!r}; only the first is fetched"
            )
            slots.append(FetchResult(ref, "failed", None, None, error, None, None, None))
            continue
        slots.append(_Job(adapter, ref, _host(adapter, ref)))
    listed = {ref.key for ref in refs}
    for record in sorted(store.records().values(), key=lambda r: r.key):
        if record.source != adapter.name or record.key in listed or record.key in owners:
            continue
        if record.status == "removed":
            continue
        owners[record.key] = adapter.name
        slots.append(_missing(adapter, store, record, limits.keep_missing_nights))
    return slots


def _missing(adapter: SourceAdapter, store: RawStore, record: Any, keep: int) -> FetchResult:
    """Record that a known dataset is no longer in its source's listing: ``missing`` with
    its last good copy for ``keep`` nights, then ``removed``."""
    since = (record.missing_since or utc_now())[:10]
    nights = record.missing_nights + 1
    where = LISTING_NAMES.get(adapter.kind, f"the listing of source {adapter.name!r}")
    ref = DatasetRef(record.key, record.source, record.kind, record.uri)
    if nights > keep or not record.sha256:
        after = f"after {keep} night{'s' if keep != 1 else ''}" if record.sha256 else "no copy"
        reason = f"not in {where} since {since}; removed ({after})"
        return adapter.kept(ref, store, reason, status="removed")
    reason = f"not in {where} since {since}, kept {nights} of {keep} nights"
    return adapter.kept(ref, store, reason, status="missing")


def summary(results: Sequence[FetchResult]) -> dict[str, int]:
    """How many results have each status (for logs and metadata)."""
    counts = {"updated": 0, "unchanged": 0, "failed": 0, "missing": 0, "removed": 0}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts
