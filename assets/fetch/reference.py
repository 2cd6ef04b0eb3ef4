"""Reference data from the web: IATI codelists (JSON), IMF monthly exchange rates (CSV) and
the IATI activity schemas (XSD).

Each file is fetched with a conditional request, checked (a codelist has ``data`` items
with codes; the rates CSV has ``Date,Rate,Currency`` columns; a schema is XML whose root is
``xs:schema``) and only then put in place, so a failed or damaged download leaves the last
good file in use. A hidden sidecar next to each file (``.<name>.fetch.json``) keeps its
validators and when it was fetched; the :class:`ReferenceVersion` returned is what a run
records as the version it used.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from assets.fetch.http import FetchError, HttpClient, strip_secrets
from assets.fetch.rawstore import utc_now
from assets.hashing import file_sha256

CODELISTS_URL = "https://codelists.codeforiati.org/api/json/en/"
EXCHANGE_RATES_URL = "https://codeforiati.org/imf-exchangerates/imf_exchangerates.csv"
#: The codelists the pipeline uses.
NEEDED_CODELISTS = (
    "Sector",
    "SectorCategory",
    "AidType",
    "TransactionType",
    "Country",
    "Currency",
    "OrganisationRole",
    "ActivityStatus",
    "BudgetType",
    "BudgetStatus",
    "FinanceType",
    "FlowType",
    "ActivityDateType",
    "OrganisationType",
    "ResultType",
    "IndicatorVocabulary",
    # checked by the conformance pass (assets/iati/conformance.py)
    "ActivityScope",
    "AidTypeVocabulary",
    "CollaborationType",
    "DocumentCategory",
    "Language",
    "PolicyMarker",
    "PolicySignificance",
    "Region",
    "RegionVocabulary",
    "RelatedActivityType",
    "SectorVocabulary",
    "TiedStatus",
    "Version",
)
#: Columns the exchange-rate CSV must have.
RATE_COLUMNS = ("Date", "Rate", "Currency")


@dataclass(frozen=True)
class ReferenceVersion:
    """The version of one reference file a run uses, and how the latest attempt went."""

    name: str  # codelist name, or "exchange-rates"
    url: str
    path: Path | None  # the file in use; None when there has never been a good copy
    sha256: str | None
    bytes: int | None
    etag: str | None
    last_modified: str | None
    fetched_at: str | None  # last successful attempt (ISO UTC)
    checked_at: str
    status: str  # "updated" | "unchanged" | "failed"
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for provenance metadata."""
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        return data


def _sidecar(destination: Path) -> Path:
    return destination.with_name(f".{destination.name}.fetch.json")


def _read_sidecar(destination: Path) -> dict[str, Any]:
    try:
        data = json.loads(_sidecar(destination).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_sidecar(destination: Path, version: ReferenceVersion) -> None:
    path = _sidecar(destination)
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(json.dumps(version.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def fetch_reference(
    client: HttpClient,
    name: str,
    url: str,
    destination: Path,
    *,
    expect: Callable[[bytes], None] | None = None,
    check: Callable[[Path], None] | None = None,
) -> ReferenceVersion:
    """Refresh ``destination`` from ``url``: a 304 or the same bytes is ``unchanged``; a
    download that fails ``expect`` (first bytes) or ``check`` (whole file; both raise
    ValueError) is ``failed`` and the last good file stays."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shown = strip_secrets(url)
    previous = _read_sidecar(destination)
    current = file_sha256(destination) if destination.is_file() else None
    trusted = current is not None and previous.get("sha256") == current
    same_url = previous.get("url") == shown
    staging = destination.with_name(f".{destination.name}.new")
    now = utc_now()
    status, error = "failed", None
    sha256, size = current, destination.stat().st_size if current else None
    etag = previous.get("etag") if trusted else None
    last_modified = previous.get("last_modified") if trusted else None
    fetched_at = previous.get("fetched_at") if trusted else None
    try:
        download = client.download(
            url,
            staging,
            etag=etag if same_url else None,
            last_modified=last_modified if same_url else None,
            expect=expect,
        )
        if download.status == "not_modified":
            if current is None:
                raise FetchError(url, 304, "304 Not Modified, but there is no copy to keep")
            status = "unchanged"
            etag = download.etag or etag
            last_modified = download.last_modified or last_modified
        else:
            if check is not None:
                try:
                    check(staging)
                except ValueError as exc:
                    raise FetchError(url, download.http_status, str(exc)) from None
            os.replace(staging, destination)
            status = "unchanged" if download.sha256 == current else "updated"
            sha256, size = download.sha256, download.bytes
            etag, last_modified = download.etag, download.last_modified
        fetched_at = now
    except FetchError as exc:
        error = str(exc)
    finally:
        staging.unlink(missing_ok=True)
    version = ReferenceVersion(
        name=name,
        url=shown,
        path=destination if sha256 else None,
        sha256=sha256,
        bytes=size,
        etag=etag,
        last_modified=last_modified,
        fetched_at=fetched_at,
        checked_at=now,
        status=status,
        error=error,
    )
    _write_sidecar(destination, version)
    return version


# -- codelists ------------------------------------------------------------------------------


def _expect_json_object(head: bytes) -> None:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise ValueError("the response is empty")
    if text[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise ValueError("the server returned an HTML page, not a JSON codelist")
    if not text.startswith(b"{"):
        preview = text[:40].decode("utf-8", errors="replace")
        raise ValueError(f"the response is not a JSON object: it starts with {preview!r}")


def check_codelist_json(path: Path) -> None:
    """ValueError unless the file is an IATI codelist in JSON: ``attributes`` with the
    codelist's name and ``data`` items that each have a ``code``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a JSON codelist: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON codelist: the top level is not an object")
    attributes, data = document.get("attributes"), document.get("data")
    if not isinstance(attributes, dict) or not str(attributes.get("name") or "").strip():
        raise ValueError("not a JSON codelist: no attributes.name")
    if not isinstance(data, list) or not data:
        raise ValueError("not a JSON codelist: 'data' is missing or empty")
    for number, item in enumerate(data, start=1):
        code = item.get("code") if isinstance(item, dict) else None
        if code is None or not str(code).strip():
            raise ValueError(f"not a JSON codelist: data item {number} has no code")


def fetch_codelists(
    client: HttpClient,
    store_dir: Path,
    url: str = CODELISTS_URL,
    names: Sequence[str] = NEEDED_CODELISTS,
) -> list[ReferenceVersion]:
    """Refresh ``store_dir/<Name>.json`` for each codelist from ``url`` (a folder of
    ``<Name>.json``); the folder then reads with :func:`assets.iati.codelists.load_codelists`."""
    base = url if url.endswith("/") else url + "/"
    return [
        fetch_reference(
            client,
            name,
            f"{base}{name}.json",
            store_dir / f"{name}.json",
            expect=_expect_json_object,
            check=check_codelist_json,
        )
        for name in names
    ]


# -- exchange rates -------------------------------------------------------------------------


def _header(text: str) -> list[str]:
    return [c.strip() for c in next(csv.reader(io.StringIO(text)), [])]


def _expect_rates_csv(head: bytes) -> None:
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if not text:
        raise ValueError("the response is empty")
    if text[:15].lower().startswith(("<!doctype html", "<html")):
        raise ValueError("the server returned an HTML page, not the exchange-rate CSV")
    missing = [c for c in RATE_COLUMNS if c not in _header(text.splitlines()[0])]
    if missing:
        raise ValueError(
            f"not the IMF exchange-rate CSV: the header lacks {', '.join(missing)} "
            f"(expected {','.join(RATE_COLUMNS)},...)"
        )


def check_rates_csv(path: Path) -> None:
    """ValueError unless the file is a CSV with Date, Rate and Currency columns and rows."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        header = _header(stream.readline())
        first_row = stream.readline()
    missing = [c for c in RATE_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"not the IMF exchange-rate CSV: the header lacks {', '.join(missing)}")
    if not first_row.strip():
        raise ValueError("the exchange-rate CSV has a header but no rows")


def fetch_exchange_rates(
    client: HttpClient, destination: Path, url: str = EXCHANGE_RATES_URL
) -> ReferenceVersion:
    """Refresh the IMF monthly exchange-rate CSV at ``destination``."""
    return fetch_reference(
        client,
        "exchange-rates",
        url,
        destination,
        expect=_expect_rates_csv,
        check=check_rates_csv,
    )


# -- IATI schemas ---------------------------------------------------------------------------

#: The official activity schemas, one branch per version; ``{version}`` is e.g. ``2.03``.
IATI_SCHEMAS_URL = "https://raw.githubusercontent.com/IATI/IATI-Schemas/version-{version}/"
#: The files of one version's activity schema: it includes iati-common.xsd, which imports
#: xml.xsd, all from the same folder.
IATI_SCHEMA_FILES = ("iati-activities-schema.xsd", "iati-common.xsd", "xml.xsd")
_XSD_ROOT = "{http://www.w3.org/2001/XMLSchema}schema"
_IATI_VERSION = re.compile(r"^\d\.\d\d$")


def _expect_xml(head: bytes) -> None:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise ValueError("the response is empty")
    if text[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise ValueError("the server returned an HTML page, not an XML Schema")
    if not text.startswith(b"<"):
        preview = text[:40].decode("utf-8", errors="replace")
        raise ValueError(f"the response is not XML: it starts with {preview!r}")


def check_xml_schema(path: Path) -> None:
    """ValueError unless the file is well-formed XML whose root is ``xs:schema``; read
    without resolving entities, loading DTDs or touching the network."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False
    )
    try:
        root = etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not an XML Schema: the XML is not well-formed ({exc})") from None
    if root.tag != _XSD_ROOT:
        shown = root.tag if isinstance(root.tag, str) else "?"
        raise ValueError(f"not an XML Schema: the root element is <{shown}>, not <xs:schema>")


def fetch_iati_schemas(
    client: HttpClient, url_template: str, versions: Iterable[str], destination: Path
) -> list[ReferenceVersion]:
    """Refresh ``destination/<version>/`` with the activity schema files of each version
    (:data:`IATI_SCHEMA_FILES`) from ``url_template`` with ``{version}`` filled in, a folder
    URL such as :data:`IATI_SCHEMAS_URL`. Each file is fetched and checked on its own, like
    the codelists: a failure is reported in its ``ReferenceVersion`` and leaves the last
    good copy in place. The folder then reads with
    :meth:`assets.iati.conformance.IatiSchemas.from_dir`."""
    if "{version}" not in url_template:
        raise ValueError(f"the IATI schema URL {url_template!r} has no {{version}} in it")
    found: list[ReferenceVersion] = []
    for version in versions:
        if not _IATI_VERSION.match(version):
            raise ValueError(f"{version!r} is not an IATI version such as 2.03")
        base = url_template.replace("{version}", version)
        base = base if base.endswith("/") else base + "/"
        for name in IATI_SCHEMA_FILES:
            found.append(
                fetch_reference(
                    client,
                    f"iati-schemas/{version}/{name}",
                    f"{base}{name}",
                    destination / version / name,
                    expect=_expect_xml,
                    check=check_xml_schema,
                )
            )
    return found
