"""Versioned, immutable releases: build, verify, publish, then point the catalogue at them.

A release is published only when the data changed (content hash over the
tables' CSV bytes). Everything goes under ``releases/<version>/`` first and is
verified (Frictionless validation, every checksum, read back from the target);
only then are ``catalog.json`` and ``latest.json`` updated, so a reader never
sees half a release. A run that failed half-way left only an unlisted
``releases/<version>/`` folder behind, which the next run clears and redoes.
Published versions are never modified.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import frictionless
import pandas as pd

from assets.harmonise.schema import table_schema
from assets.hashing import file_sha256
from assets.warehouse import register_frames, set_up
from publish.changelog import compare_table, render_changelog
from publish.files import csv_bytes, data_files, read_parquet_bytes, sha256_hex
from publish.headline import country_figures, headline_figures
from publish.profile_html import PageContext, render_all
from publish.profiles import ProfileOptions, build_profiles
from publish.provenance import public_uri
from publish.quality import (
    QualityBundle,
    QualityInputs,
    quality_bundle,
    read_history,
    write_latest_quality,
)
from publish.site import render_dcat, render_index_html
from publish.targets import Target, content_type

CATALOG = "catalog.json"
LATEST = "latest.json"
RELEASES = "releases"
_VERSION = re.compile(r"^\d{4}\.\d{2}\.\d{2}(\.\d+)?$")


class ReleaseError(RuntimeError):
    """A release failed verification or could not be published; nothing was made visible."""


@dataclass(frozen=True)
class ReleaseOptions:
    """What a release says about itself besides the data."""

    title: str
    description: str
    schema_version: str
    license_name: str = "CC-BY-4.0"
    license_url: str = "https://creativecommons.org/licenses/by/4.0/"
    base_url: str | None = None
    run_id: str | None = None
    code_version: str = "unknown"
    #: Reference inputs besides the IATI files: {"name", "path", "sha256"} each.
    inputs: tuple[Mapping[str, Any], ...] = ()
    #: Credits besides IATI publishers, e.g. "Source: International Monetary Fund".
    credits: tuple[str, ...] = ()
    dictionary: Path | None = None
    #: What the data-quality report needs besides the tables (GX results, settings).
    quality: QualityInputs | None = None
    #: Local files' URIs in ``sources`` are shown relative to this folder (or by name).
    project_root: Path | None = None
    #: Strings no published file may hold (paths, host name, secret values), each with
    #: how an error names it: see :func:`publish.provenance.private_strings`.
    private: Mapping[str, str] = field(default_factory=dict)
    #: Country and partner profile pages (``countries/``, ``partners/``); None = none.
    profiles: ProfileOptions | None = None
    #: Languages of the profile pages (English always; see ``render_all``).
    profile_languages: tuple[str, ...] = ("en",)


@dataclass
class PublishOutcome:
    status: str  # "published" or "no_change"
    version: str
    content_hash: str
    location: str
    files: int = 0
    row_counts: dict[str, int] = field(default_factory=dict)
    changelog: str | None = None
    #: Objects of an unfinished earlier attempt at this version that were cleared first.
    cleared_leftovers: int = 0
    #: The data-quality report of this run (also written to quality/ of the target).
    quality: QualityBundle | None = None


#: Fields of ``sources`` that describe a run rather than the data: a night whose
#: files were merely re-checked (``unchanged``), or whose fetch failed while the
#: last good copy was kept, has the same data and publishes nothing new.
RUN_FIELDS = ("status", "reason", "fetched_at", "http_etag", "uri")
#: Beside the harmonised tables: each table's Parquet sha256 and CSV digest.
CONTENT_DIGESTS = "content-digests.json"


def public_sources(
    tables: Mapping[str, pd.DataFrame], root: Path | None
) -> Mapping[str, pd.DataFrame]:
    """The tables with each source's ``uri`` as a release may show it (no local paths
    outside the project, no credentials): :func:`publish.provenance.public_uri`."""
    sources = tables.get("sources")
    if sources is None or "uri" not in sources.columns:
        return tables
    shown = sources["uri"].map(lambda uri: public_uri(uri, root) if isinstance(uri, str) else uri)
    if shown.equals(sources["uri"]):
        return tables
    return {**tables, "sources": sources.assign(uri=shown)}


#: Files the private-string check does not read (binary: strings are not plain bytes).
_BINARY = (".parquet", ".png", ".gif", ".jpg", ".jpeg", ".ico", ".otf", ".ttf", ".woff", ".woff2")


def check_private(files: Mapping[str, bytes], private: Mapping[str, str], prefix: str = "") -> None:
    """Refuse to publish a release whose files hold one of the ``private`` strings.

    The error names the file and what it would have leaked, never the string itself."""
    needles = [(value.encode("utf-8"), what) for value, what in private.items() if value]
    for path, data in sorted(files.items()):
        if path.lower().endswith(_BINARY):
            continue
        for needle, what in needles:
            if needle in data:
                raise ReleaseError(
                    f"{prefix}{path} would publish {what}; nothing was published "
                    "(a field or message carries it: fix that before the next run)"
                )


def content_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables as far as the content hash is concerned (run fields of sources blanked)."""
    content = dict(tables)
    if "sources" in content:
        sources = content["sources"].copy()
        for name in RUN_FIELDS:
            if name in sources.columns:
                sources[name] = None
        content["sources"] = sources
    return content


@cache
def _csv_code() -> str:
    """The code that writes the CSV files: a digest recorded for a table stands only
    while it is the same."""
    import publish.files

    return sha256_hex(Path(publish.files.__file__).read_bytes())[:16]


def content_hash(tables: Mapping[str, pd.DataFrame], stored: Path | None = None) -> str:
    """One sha256 over every table's CSV bytes (sorted by table name), run fields aside.

    ``stored``: the folder the tables were read from (``<table>.parquet``). A
    table whose Parquet file has the same bytes as when its CSV digest was last
    computed (``content-digests.json`` there) has the same CSV: the digest is
    taken from the record instead of writing the CSV again. ``sources`` is always
    digested (its run fields change every night and it is small).
    """
    content = content_tables(tables)
    record_path = stored / CONTENT_DIGESTS if stored is not None else None
    record: dict[str, dict[str, str]] = {}
    if record_path is not None and record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except ValueError:
            record = {}
    lines = []
    for table in sorted(content):
        parquet = stored / f"{table}.parquet" if stored is not None else None
        key = None
        if parquet is not None and table != "sources" and parquet.exists():
            key = f"{file_sha256(parquet)}:{_csv_code()}"
            known = record.get(table)
            if known is not None and known.get("parquet_sha256") == key:
                lines.append(f"{table} {known['csv_sha256']}")
                continue
        digest = sha256_hex(csv_bytes(table, content[table]))
        if key is not None:
            record[table] = {"parquet_sha256": key, "csv_sha256": digest}
        lines.append(f"{table} {digest}")
    if record_path is not None:
        temporary = record_path.with_name(f".{record_path.name}.tmp")
        temporary.write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(record_path)
    return sha256_hex("\n".join(lines).encode("utf-8"))


def next_version(catalog: Mapping[str, Any], today: dt.date) -> str:
    """``YYYY.MM.DD``, or ``YYYY.MM.DD.N`` for the N-th release of the same day."""
    base = today.strftime("%Y.%m.%d")
    same_day = [r["version"] for r in catalog.get("releases", []) if r["date"] == today.isoformat()]
    return base if not same_day else f"{base}.{len(same_day) + 1}"


def read_json(target: Target, key: str) -> dict[str, Any] | None:
    data = target.read_bytes(key)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{target.location}/{key} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ReleaseError(f"{target.location}/{key} is not a JSON object")
    return value


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode()


def _credits(tables: Mapping[str, pd.DataFrame], options: ReleaseOptions) -> list[dict[str, str]]:
    sources = []
    activities = tables.get("activities")
    if activities is not None and len(activities):
        publishers = (
            activities[["reporting_org_ref", "reporting_org_name"]]
            .drop_duplicates("reporting_org_ref")
            .dropna(subset=["reporting_org_ref"])
            .sort_values("reporting_org_ref")
        )
        for ref, name in publishers.itertuples(index=False):
            label = f"{name} ({ref})" if isinstance(name, str) else str(ref)
            sources.append({"title": f"IATI activity data published by {label}"})
    sources += [{"title": credit} for credit in options.credits]
    return sources


def _readme(
    version: str,
    options: ReleaseOptions,
    counts: Mapping[str, int],
    credits: Sequence[Mapping[str, str]],
    published: str,
) -> str:
    rows = "\n".join(
        f"| `{t}` | {counts[t]:,} | {table_schema(t).get('description', '')} |" for t in counts
    )
    first = next(iter(counts), "activities")
    credit_lines = "\n".join(f"- {c['title']}" for c in credits) or "- (none)"
    return f"""# {options.title} — release {version}

{options.description}

Published {published}; CD results schema version {options.schema_version}.
Licence: {options.license_name} ({options.license_url}); each IATI publisher's
own licence applies to its data.

## What is inside

| table | rows | what |
|---|---:|---|
{rows}

Every table is here twice: `data/<table>.csv` (UTF-8, RFC 4180, an empty cell
is a missing value) and `data/<table>.parquet` (typed). `datapackage.json`
describes every field (Frictionless Data Package; the data dictionary explains
them for people), with the sha256 hash, size and row count of each file.
`SHA256SUMS` lists the checksum of every file (`sha256sum -c SHA256SUMS`).
`CHANGELOG.md` says what changed since the previous release and
`quality/index.html` how good the data is, contributor by contributor (one page
per contributor under `quality/contributors/`, the figures in
`quality/report.json`, a text digest in `quality/report.md`, and the Great
Expectations Data Docs under `quality/data-docs/` when the run built them).

In the CSV files, a text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return is written with a leading apostrophe (`'`) so spreadsheets do
not run it as a formula; the Parquet files hold the values exactly as published.

## Load it

Python:

```python
import pandas as pd
from frictionless import Package

package = Package("datapackage.json")          # validates against the schema
{first} = package.get_resource("{first}").to_pandas()
{first} = pd.read_parquet("data/{first}.parquet")   # or, typed, with pyarrow
```

R:

```r
library(frictionless)                           # install.packages("frictionless")
package <- read_package("datapackage.json")
{first} <- read_resource(package, "{first}")
{first} <- arrow::read_parquet("data/{first}.parquet")
```

## Cite

{options.title}, release {version} (CD results schema {options.schema_version}).
{options.base_url or ""}{"" if not options.base_url else "/"}{RELEASES}/{version}/ . Content hash
in `catalog.json`; the same version always has the same bytes.

## Sources and credits

{credit_lines}
"""


def build_release(
    tables: Mapping[str, pd.DataFrame],
    version: str,
    options: ReleaseOptions,
    published: str,
    previous: tuple[Mapping[str, Any], Mapping[str, pd.DataFrame]] | None = None,
    quality: QualityBundle | None = None,
    digest: str | None = None,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of the release (relative path -> bytes) and its catalogue entry.

    ``digest``: the tables' :func:`content_hash` when the caller has it already."""
    names = sorted(tables)
    written = {t: data_files(t, tables[t]) for t in names}
    csvs = {t: written[t][0] for t in names}
    parquets = {t: written[t][1] for t in names}
    counts = {t: len(tables[t]) for t in names}
    credits = _credits(tables, options)
    headline = headline_figures(tables)

    files: dict[str, bytes] = {}
    resources = []
    for table in names:
        schema = dict(table_schema(table))
        resources.append(
            {
                "name": table,
                "title": schema.pop("title", table),
                "description": schema.pop("description", ""),
                "path": f"data/{table}.csv",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "dialect": {"csv": {"delimiter": ",", "lineTerminator": "\r\n"}},
                "hash": f"sha256:{sha256_hex(csvs[table])}",
                "bytes": len(csvs[table]),
                "rows": counts[table],
                "schema": {k: v for k, v in schema.items() if k != "name"},
                "parquet": {
                    "path": f"data/{table}.parquet",
                    "mediatype": "application/vnd.apache.parquet",
                    "hash": f"sha256:{sha256_hex(parquets[table])}",
                    "bytes": len(parquets[table]),
                },
            }
        )
        files[f"data/{table}.csv"] = csvs[table]
        files[f"data/{table}.parquet"] = parquets[table]
    sources_table = tables.get("sources")
    input_files = (
        [
            {
                "name": r.source_file,
                "uri": _plain(r.uri),
                "sha256": _plain(r.sha256),
                "status": r.status,
            }
            for r in sources_table.sort_values("source_file").itertuples(index=False)
        ]
        if sources_table is not None
        else []
    )
    package = {
        "name": "cdcompact",
        "title": options.title,
        "description": options.description,
        "version": version,
        "created": published,
        "schema_version": options.schema_version,
        "licenses": [{"name": options.license_name, "path": options.license_url}],
        "sources": credits,
        "provenance": {
            "run_id": options.run_id,
            "code_version": options.code_version,
            "inputs": input_files,
            "reference_inputs": [dict(i) for i in options.inputs],
        },
        "resources": resources,
    }
    files["datapackage.json"] = _json_bytes(package)
    files["README.md"] = _readme(version, options, counts, credits, published).encode()
    previous_entry, previous_tables = previous if previous else (None, {})
    changes = [compare_table(t, previous_tables.get(t), tables[t]) for t in names]
    files["CHANGELOG.md"] = render_changelog(
        version,
        previous_entry["version"] if previous_entry else None,
        changes,
        previous_entry.get("headline") if previous_entry else None,
        headline,
        previous_entry.get("schema_version") if previous_entry else None,
        options.schema_version,
    ).encode()
    if quality is not None:
        files.update({f"quality/{path}": data for path, data in quality.files.items()})
    profiles_entry: dict[str, Any] = {}
    if options.profiles is not None:
        with duckdb.connect() as con:
            set_up(con)
            register_frames(con, tables)
            built = build_profiles(con, options.profiles)
        files.update(built.rows)
        context = PageContext(
            version=version,
            title=options.title,
            published=published[:10],
            has_quality=quality is not None,
        )
        files.update(
            render_all(built.countries, built.partners, options.profile_languages, context)
        )
        profiles_entry = {
            "languages": list(options.profile_languages),
            "countries": [
                {"code": p["code"], "name": p["name"], "path": f"countries/{p['slug']}.html"}
                for p in built.countries
            ],
            "partners": len(built.partners),
        }
    files["SHA256SUMS"] = "".join(
        f"{sha256_hex(data)}  {path}\n" for path, data in sorted(files.items())
    ).encode()
    entry = {
        "version": version,
        "published": published,
        "date": published[:10],
        "schema_version": options.schema_version,
        "content_hash": digest or content_hash(tables),
        "path": f"{RELEASES}/{version}/",
        "row_counts": counts,
        "files": {p: {"sha256": sha256_hex(d), "bytes": len(d)} for p, d in sorted(files.items())},
        "headline": headline,
        "credits": credits,
        "countries": country_figures(tables),
        "quality": quality.summary if quality else {},
        "alignment": _records(_latest_years(_all_partners(tables.get("alignment_metrics")))),
        "duplication": _records(_latest_years(tables.get("duplication_metrics"))),
        "profiles": profiles_entry,
        "changes": {
            c.table: {
                "added": c.added,
                "removed": c.removed,
                "changed": c.changed,
                "resourced": c.resourced,
            }
            for c in changes
        },
    }
    return files, entry


def _plain(value: Any) -> Any:
    """A JSON-ready cell: pandas' missing values become None."""
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and value != value)
        else value
    )


def _all_partners(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Alignment rows of all partners together (``partner_org_ref`` empty)."""
    if frame is None or frame.empty:
        return frame
    return frame[frame["partner_org_ref"].fillna("").eq("")]


def _latest_years(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Each country's latest year only: what the catalogue page shows. The release's
    data files hold every year and partner; the catalogue stays small however many."""
    if frame is None or frame.empty:
        return frame
    latest = frame.groupby("country_code", dropna=False)["year"].transform("max")
    return frame[frame["year"] == latest]


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def verify_release_folder(folder: Path, entry: Mapping[str, Any]) -> None:
    """Frictionless validation of the package and every file's checksum; raises ReleaseError."""
    for path, expected in entry["files"].items():
        data = (folder / path).read_bytes()
        if sha256_hex(data) != expected["sha256"] or len(data) != expected["bytes"]:
            raise ReleaseError(f"{path}: checksum does not match what was written")
    report = frictionless.validate(str(folder / "datapackage.json"))
    if not report.valid:
        problems = report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"])[:10]
        raise ReleaseError(f"frictionless validation failed: {problems}")


def _previous(
    target: Target, catalog: Mapping[str, Any]
) -> tuple[Mapping[str, Any], dict[str, pd.DataFrame]] | None:
    releases = catalog.get("releases") or []
    if not releases:
        return None
    entry = releases[0]
    tables = {}
    for table in entry.get("row_counts", {}):
        data = target.read_bytes(f"{entry['path']}data/{table}.parquet")
        if data is not None:
            tables[table] = read_parquet_bytes(table, data)
    return entry, tables


def empty_catalog(options: ReleaseOptions) -> dict[str, Any]:
    return {
        "name": "cdcompact",
        "title": options.title,
        "description": options.description,
        "license": {"name": options.license_name, "path": options.license_url},
        "latest": None,
        "releases": [],
    }


def write_catalogue_files(
    target: Target, catalog: Mapping[str, Any], options: ReleaseOptions
) -> None:
    """latest.json, dcat.jsonld, index.html and the data dictionary, as the catalogue says.

    Rewritten only where they differ, so a run that stopped after updating
    catalog.json is completed by the next one.
    """
    releases = catalog.get("releases") or []
    wanted: dict[str, bytes] = {}
    if releases:
        latest = releases[0]
        wanted[LATEST] = _json_bytes(
            {
                "version": latest["version"],
                "published": latest["published"],
                "schema_version": latest["schema_version"],
                "path": latest["path"],
                "datapackage": f"{latest['path']}datapackage.json",
                "content_hash": latest["content_hash"],
            }
        )
    wanted["dcat.jsonld"] = _json_bytes(render_dcat(dict(catalog), options.base_url))
    wanted["index.html"] = render_index_html(dict(catalog)).encode("utf-8")
    if options.dictionary is not None and options.dictionary.exists():
        wanted["data-dictionary.md"] = options.dictionary.read_bytes()
    for key, data in wanted.items():
        if target.read_bytes(key) != data:
            target.write_bytes(key, data, content_type(key))


def _quality(
    tables: Mapping[str, pd.DataFrame],
    con: duckdb.DuckDBPyConnection | None,
    release: str,
    history: Sequence[Mapping[str, Any]],
    options: ReleaseOptions,
    now: dt.datetime,
) -> QualityBundle:
    with _views(tables, con) as views:
        return quality_bundle(
            views, list(tables), release=release, history=history, inputs=options.quality, now=now
        )


@contextmanager
def _views(
    tables: Mapping[str, pd.DataFrame], con: duckdb.DuckDBPyConnection | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``con``, or a connection of its own where the frames are views."""
    if con is not None:
        yield con
        return
    with duckdb.connect() as own:
        set_up(own)
        register_frames(own, tables)
        yield own


def publish_release(
    tables: Mapping[str, pd.DataFrame],
    target: Target,
    options: ReleaseOptions,
    *,
    now: dt.datetime | None = None,
    stored: Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> PublishOutcome:
    """Publish the tables as a new release when they changed; else record "no change".

    ``stored``: the folder the tables were read from, for :func:`content_hash`. ``con``:
    a DuckDB connection where the same tables are views with their row numbers, which the
    quality report reads (without one, the frames are registered in a connection of the
    report's own)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    tables = public_sources(tables, options.project_root)
    catalog = read_json(target, CATALOG) or empty_catalog(options)
    digest = content_hash(tables, stored)
    releases = catalog.get("releases") or []
    reported = {"sources", "quarantine"} <= set(tables)
    history = read_history(target) if reported else []
    if releases and releases[0]["content_hash"] == digest:
        write_catalogue_files(target, catalog, options)
        latest = releases[0]
        bundle = (
            _quality(tables, con, latest["version"], history, options, now) if reported else None
        )
        if bundle is not None:
            write_latest_quality(target, bundle)
        return PublishOutcome(
            "no_change",
            latest["version"],
            digest,
            target.url(f"{latest['path']}datapackage.json"),
            row_counts=dict(latest["row_counts"]),
            quality=bundle,
        )

    version = next_version(catalog, now.date())
    if version in {r["version"] for r in releases} or not _VERSION.match(version):
        raise ReleaseError(f"version {version} is already published")
    prefix = f"{RELEASES}/{version}/"
    leftovers = target.delete_prefix(prefix)  # an unlisted, unfinished earlier attempt
    published = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    bundle = _quality(tables, con, version, history, options, now) if reported else None
    files, entry = build_release(
        tables, version, options, published, _previous(target, catalog), bundle, digest
    )

    check_private(files, options.private, prefix)
    with tempfile.TemporaryDirectory(prefix="cdcompact-release-") as staging:
        folder = Path(staging)
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        verify_release_folder(folder, entry)

    for path, data in sorted(files.items()):
        target.write_bytes(prefix + path, data, content_type(path))
    for path, expected in entry["files"].items():
        written = target.read_bytes(prefix + path)
        if written is None or sha256_hex(written) != expected["sha256"]:
            raise ReleaseError(f"{target.location}/{prefix}{path}: not stored intact")

    catalog = dict(catalog)
    catalog.update(
        credits=[c["title"] for c in entry["credits"]],
        title=options.title,
        description=options.description,
        license={"name": options.license_name, "path": options.license_url},
        latest=version,
        releases=[entry, *releases],
    )
    target.write_bytes(CATALOG, _json_bytes(catalog), content_type(CATALOG))
    write_catalogue_files(target, catalog, options)
    if bundle is not None:
        write_latest_quality(target, bundle)
    return PublishOutcome(
        "published",
        version,
        digest,
        target.url(f"{prefix}datapackage.json"),
        len(files),
        dict(entry["row_counts"]),
        files["CHANGELOG.md"].decode(),
        cleared_leftovers=leftovers,
        quality=bundle,
    )
