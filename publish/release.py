"""Versioned, immutable releases: build, verify, publish, then point the catalogue at them.

A release is published only when the data changed (content hash over the
tables' CSV bytes). Its data files are written by DuckDB from the harmonised
tables' Parquet files (:mod:`publish.files`), or copied from the previous
release where a table did not change. Everything goes under
``releases/<version>/`` first and is verified as the target holds it (every
checksum; every data file against its Table Schema in SQL,
:mod:`publish.verify`; the package descriptor by Frictionless); only then are
``catalog.json`` and ``latest.json`` updated, so a reader never sees half a
release. A run that failed half-way left only an unlisted
``releases/<version>/`` folder behind, which the next run clears and redoes.
Published versions are never modified. What the release says of its tables (the
headline and country figures, the publishers credited, each country's latest
metrics) is computed in SQL on the release's DuckDB connection
(:func:`release_figures`), as the quality report and the profile pages are.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from assets.harmonise.schema import (
    field_names,
    frame_of_arrow,
    schema_dir,
    table_frame,
    table_schema,
)
from assets.hashing import file_digest, sha256_hex
from assets.iati.codelists import Codelists
from assets.settings import WarehouseSettings
from assets.storage.targets import Target, content_type
from assets.warehouse import ROW, quote, set_up, warehouse_config
from publish.changelog import TableChange, compare_table, render_changelog
from publish.database import DATABASE, write_database
from publish.dictionary import render_data_dictionary
from publish.files import parquet_relation
from publish.headline import country_figures, headline_figures, publishers, relation
from publish.names import write_name_tables
from publish.profile_html import PageContext, render_all
from publish.profiles import ProfileOptions, Profiles, build_profiles
from publish.quality import (
    QualityBundle,
    QualityInputs,
    quality_bundle,
    read_history,
    write_latest_quality,
)
from publish.readme import render_citation, render_readme
from publish.render import DEFAULT_LOCALE, page_name
from publish.site import render_dcat, render_index_html, render_release_html
from publish.tables import (
    ReleaseTables,
    Stopwatch,
    StoredTables,
    TableFiles,
    local_files,
    read_sources,
)
from publish.verify import read_back

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
    #: Languages of the pages: the profiles, the catalogue (``index.fr.html``...) and each
    #: release folder's page (English always; see ``publish.render.page_name``).
    languages: tuple[str, ...] = ("en",)
    #: DuckDB's limits while the release is made (its spill folder: ``temp_directory``,
    #: else a folder in ``work_dir``).
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    #: Where the data files are written before they are stored (None: the system's
    #: temporary folder); each run uses a fresh folder in it and removes it.
    work_dir: Path | None = None
    #: The codelists the run read (all their languages): the release's codelist tables
    #: name the codes with them (:mod:`publish.names`); None = codes without names.
    codelists: Codelists | None = None


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
    #: Seconds per part: data files, checksums, changelog, quality report, profile pages,
    #: index/catalogue, storing, verification.
    timings: dict[str, float] = field(default_factory=dict)


#: Files the private-string check does not read (binary: strings are not plain bytes).
_BINARY = (
    ".parquet",
    ".duckdb",
    ".png",
    ".gif",
    ".jpg",
    ".jpeg",
    ".ico",
    ".otf",
    ".ttf",
    ".woff",
    ".woff2",
)


#: Bytes of a file on disk read at a time when it is checked for private strings.
_SCAN_BYTES = 8 * 1024 * 1024


def check_private(
    files: Mapping[str, bytes],
    private: Mapping[str, str],
    prefix: str = "",
    found: Iterable[tuple[str, str]] = (),
    local: Mapping[str, Path] | None = None,
) -> None:
    """Refuse to publish a release whose files hold one of the ``private`` strings.

    ``found``: (file, what) already found elsewhere (the data files' cells,
    :meth:`ReleaseTables.leaks`). ``local``: files of the release kept on disk (path in
    the release -> local file: the row extracts), read in chunks. The error names the
    first file (by path) and what it would have leaked, never the string itself."""
    needles = [(value.encode("utf-8"), what) for value, what in private.items() if value]
    findings = list(found)
    for path, data in files.items():
        if not path.lower().endswith(_BINARY):
            findings += [(path, what) for needle, what in needles if needle in data]
    for path, file in (local or {}).items():
        if needles and not path.lower().endswith(_BINARY):
            findings += [(path, what) for what in _found_in_file(file, needles)]
    if findings:
        path, what = min(findings, key=lambda finding: finding[0])
        raise ReleaseError(
            f"{prefix}{path} would publish {what}; nothing was published "
            "(a field or message carries it: fix that before the next run)"
        )


def _found_in_file(file: Path, needles: Sequence[tuple[bytes, str]]) -> list[str]:
    """What each of ``needles`` found in ``file`` would leak, read a chunk at a time (each
    chunk read with the end of the one before, so a string across two chunks is found)."""
    overlap = max(len(needle) for needle, _ in needles) - 1
    found: list[str] = []
    tail = b""
    with file.open("rb") as stream:
        while chunk := stream.read(_SCAN_BYTES):
            window = tail + chunk
            found += [what for needle, what in needles if what not in found and needle in window]
            tail = window[-overlap:] if overlap else b""
    return found


def content_hash(digests: Mapping[str, str]) -> str:
    """One sha256 over every table's CSV digest (sorted by table name), run fields aside
    (:meth:`ReleaseTables.content_digests`)."""
    lines = [f"{table} {digests[table]}" for table in sorted(digests)]
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


@dataclass(frozen=True)
class ReleaseFigures:
    """What a release says of its tables besides the data files (headline and country
    figures, publishers, each country's latest metrics): plain values, computed in SQL
    while the release's DuckDB connection is open (:func:`release_figures`)."""

    headline: dict[str, Any]
    countries: list[dict[str, Any]]
    #: (``reporting_org_ref``, ``reporting_org_name``) of every publisher, by ref.
    publishers: list[tuple[str, str | None]]
    #: Alignment metrics of all partners together, each country's latest year.
    alignment: list[dict[str, Any]]
    #: Duplication metrics, each country's latest year.
    duplication: list[dict[str, Any]]


def release_figures(con: duckdb.DuckDBPyConnection, tables: Collection[str]) -> ReleaseFigures:
    """The figures of the tables ``tables`` names, views of ``con`` with their row numbers
    (:meth:`publish.tables.ReleaseTables.views`; a table without a view is empty)."""
    return ReleaseFigures(
        headline=headline_figures(con, tables),
        countries=country_figures(con, tables),
        publishers=publishers(con, tables),
        alignment=_latest_metrics(con, "alignment_metrics", tables, all_partners=True),
        duplication=_latest_metrics(con, "duplication_metrics", tables),
    )


def _latest_metrics(
    con: duckdb.DuckDBPyConnection,
    table: str,
    tables: Collection[str],
    *,
    all_partners: bool = False,
) -> list[dict[str, Any]]:
    """Each country's latest year only (``all_partners``: of the rows of all partners
    together, ``partner_org_ref`` empty), in the table's order: what the catalogue page
    shows. The release's data files hold every year and partner; the catalogue stays
    small however many."""
    columns = ", ".join(quote(name) for name in field_names(table))
    where = "WHERE coalesce(partner_org_ref, '') = ''" if all_partners else ""
    arrow = con.execute(
        f"""SELECT {columns} FROM (
            SELECT *, max(year) OVER (PARTITION BY country_code) AS _latest
            FROM {relation(table, tables)} {where}
        ) WHERE year = _latest ORDER BY {ROW}"""
    ).to_arrow_table()
    return _records(table_frame(table, frame_of_arrow(arrow)))


def _credits(
    publishers: Sequence[tuple[str, str | None]], options: ReleaseOptions
) -> list[dict[str, str]]:
    sources = []
    for ref, name in publishers:
        label = f"{name} ({ref})" if isinstance(name, str) else str(ref)
        sources.append({"title": f"IATI activity data published by {label}"})
    sources += [{"title": credit} for credit in options.credits]
    return sources


def build_release(
    figures: ReleaseFigures,
    sources: pd.DataFrame | None,
    written: Mapping[str, TableFiles],
    version: str,
    options: ReleaseOptions,
    published: str,
    changes: Sequence[TableChange],
    *,
    previous: Mapping[str, Any] | None = None,
    quality: QualityBundle | None = None,
    profiles: Profiles | None = None,
    digest: str,
    stopwatch: Stopwatch | None = None,
    database: Path | None = None,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of the release besides the data files and the profiles' row extracts
    (relative path -> bytes), and its catalogue entry (which lists those too: the data
    files from ``written``, the extracts from their files in ``profiles.rows``).

    ``figures``: the tables' figures (:func:`release_figures`); ``sources``: the input
    files as the release shows them (:func:`publish.tables.read_sources`), or None;
    ``profiles``: the country and partner profiles
    (:func:`publish.profiles.build_profiles`), or None; ``database``: the release's
    ``cdcompact.duckdb`` (:func:`publish.database.write_database`), or None."""
    stopwatch = stopwatch or Stopwatch()
    began = time.perf_counter()
    names = sorted(written)
    counts = {t: written[t].rows for t in names}
    credits = _credits(figures.publishers, options)
    headline = figures.headline

    files: dict[str, bytes] = {}
    checksums: dict[str, dict[str, Any]] = {}
    resources = []
    for table in names:
        schema = dict(table_schema(table))
        csv, parquet = written[table].csv, written[table].parquet
        resources.append(
            {
                "name": table,
                "title": schema.pop("title", table),
                "description": schema.pop("description", ""),
                "path": csv.key,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "dialect": {"csv": {"delimiter": ",", "lineTerminator": "\r\n"}},
                "hash": f"sha256:{csv.sha256}",
                "bytes": csv.bytes,
                "rows": counts[table],
                "schema": {k: v for k, v in schema.items() if k != "name"},
                "parquet": {
                    "path": parquet.key,
                    "mediatype": "application/vnd.apache.parquet",
                    "hash": f"sha256:{parquet.sha256}",
                    "bytes": parquet.bytes,
                },
            }
        )
        for data_file in (csv, parquet):
            checksums[data_file.key] = {"sha256": data_file.sha256, "bytes": data_file.bytes}
    if database is not None:  # stored from its file, as the row extracts are
        sha256, size = file_digest(database)
        checksums[DATABASE] = {"sha256": sha256, "bytes": size}
    input_files = (
        [
            {
                "name": r.source_file,
                "uri": _plain(r.uri),
                "sha256": _plain(r.sha256),
                "status": r.status,
            }
            for r in sources.sort_values("source_file").itertuples(index=False)
        ]
        if sources is not None
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
    files["README.md"] = render_readme(version, options, counts, credits, published).encode()
    files["CITATION.cff"] = render_citation(version, options, published).encode()
    files["data-dictionary.md"] = render_data_dictionary(schema_dir()).encode()
    files["CHANGELOG.md"] = render_changelog(
        version,
        previous["version"] if previous else None,
        list(changes),
        previous.get("headline") if previous else None,
        headline,
        previous.get("schema_version") if previous else None,
        options.schema_version,
    ).encode()
    if quality is not None:
        files.update({f"quality/{path}": data for path, data in quality.files.items()})
    stopwatch.add("index/catalogue", began)
    began = time.perf_counter()
    profiles_entry: dict[str, Any] = {}
    if profiles is not None:
        built = profiles
        for path in built.rows:  # the row extracts stay on disk: stored from their files
            sha256, size = file_digest(built.rows.path(path))
            checksums[path] = {"sha256": sha256, "bytes": size}
        context = PageContext(
            version=version,
            title=options.title,
            published=published[:10],
            has_quality=quality is not None,
        )
        files.update(render_all(built.countries, built.partners, options.languages, context))
        profiles_entry = {
            "languages": list(options.languages),
            "countries": [
                {"code": p["code"], "name": p["name"], "path": f"countries/{p['slug']}.html"}
                for p in built.countries
            ],
            "partners": len(built.partners),
        }
    stopwatch.add("profile pages", began)
    began = time.perf_counter()
    languages = _languages(options)
    quality_languages = [x for x in languages if f"quality/{page_name('index', x)}" in files]
    for lang in languages:
        files[page_name("index", lang)] = render_release_html(
            options.title,
            version,
            published,
            [
                (
                    resource["name"],
                    resource["title"],
                    resource["rows"],
                    resource["bytes"],
                    resource["parquet"]["bytes"],
                )
                for resource in resources
            ],
            has_quality=quality is not None,
            has_profiles=profiles is not None,
            lang=lang,
            languages=languages,
            quality_languages=quality_languages,
        ).encode()
    checksums.update({p: {"sha256": sha256_hex(d), "bytes": len(d)} for p, d in files.items()})
    files["SHA256SUMS"] = "".join(
        f"{facts['sha256']}  {path}\n" for path, facts in sorted(checksums.items())
    ).encode()
    checksums["SHA256SUMS"] = {
        "sha256": sha256_hex(files["SHA256SUMS"]),
        "bytes": len(files["SHA256SUMS"]),
    }
    entry = {
        "version": version,
        "published": published,
        "date": published[:10],
        "schema_version": options.schema_version,
        "content_hash": digest,
        "path": f"{RELEASES}/{version}/",
        "row_counts": counts,
        "files": dict(sorted(checksums.items())),
        "headline": headline,
        "credits": credits,
        "countries": figures.countries,
        "quality": quality.summary if quality else {},
        "alignment": figures.alignment,
        "duplication": figures.duplication,
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
    stopwatch.add("index/catalogue", began)
    return files, entry


def _plain(value: Any) -> Any:
    """A JSON-ready cell: pandas' missing values become None."""
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and value != value)
        else value
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def _languages(options: ReleaseOptions) -> tuple[str, ...]:
    """The languages of the pages (the catalogue, each release's page, the profiles):
    English first, always."""
    return tuple(dict.fromkeys([DEFAULT_LOCALE, *options.languages]))


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
    languages = _languages(options)
    for lang in languages:
        wanted[page_name("index", lang)] = render_index_html(dict(catalog), lang, languages).encode(
            "utf-8"
        )
    if options.dictionary is not None and options.dictionary.exists():
        wanted["data-dictionary.md"] = options.dictionary.read_bytes()
    for key, data in wanted.items():
        if target.read_bytes(key) != data:
            target.write_bytes(key, data, content_type(key))


def publish_release(
    tables: StoredTables,
    target: Target,
    options: ReleaseOptions,
    *,
    now: dt.datetime | None = None,
) -> PublishOutcome:
    """Publish the stored tables as a new release when they changed; else record "no change"."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stopwatch = Stopwatch()
    catalog = read_json(target, CATALOG) or empty_catalog(options)
    releases = catalog.get("releases") or []
    reported = {"sources", "quarantine"} <= set(tables.names)
    history = read_history(target) if reported else []
    bundle: QualityBundle | None = None
    built: Profiles | None = None
    figures: ReleaseFigures | None = None
    with _workspace(options.work_dir) as work:
        with _warehouse(options, work) as con:
            tables = write_name_tables(con, tables, options.codelists, work / "names")
            sources = read_sources(tables, options.project_root)
            local = local_files(tables, options.project_root)
            data = ReleaseTables(con, tables, sources, work, stopwatch, local)
            digests = data.content_digests()
            digest = content_hash(digests)
            unchanged = bool(releases) and releases[0]["content_hash"] == digest
            if not unchanged:
                version = next_version(catalog, now.date())
                if version in {r["version"] for r in releases} or not _VERSION.match(version):
                    raise ReleaseError(f"version {version} is already published")
                prefix = f"{RELEASES}/{version}/"
                leftovers = target.delete_prefix(prefix)  # an unlisted, unfinished attempt
                previous = releases[0] if releases else None
                written = data.data_files(digests, previous)
                began = time.perf_counter()
                changes = _changes(data, written, target, previous, work)
                stopwatch.add("changelog", began)
                began = time.perf_counter()
                leaks = data.leaks(options.private)
                stopwatch.add("verification", began)
                began = time.perf_counter()
                database = _database(written, target, options, work)
                stopwatch.add("database", began)
            # the report, the profile pages and the figures read the tables as published
            data.views()
            if reported:
                began = time.perf_counter()
                bundle = quality_bundle(
                    con,
                    list(tables.names),
                    release=releases[0]["version"] if unchanged else version,
                    history=history,
                    inputs=options.quality,
                    now=now,
                    languages=options.languages,
                )
                stopwatch.add("quality report", began)
            if not unchanged and options.profiles is not None:
                began = time.perf_counter()
                built = build_profiles(con, options.profiles, work / "profiles")
                stopwatch.add("profile pages", began)
            if not unchanged:
                began = time.perf_counter()
                figures = release_figures(con, tables.names)
                stopwatch.add("index/catalogue", began)
        if unchanged:
            return _no_change(target, catalog, options, bundle, digest, stopwatch)

        assert figures is not None
        published = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        files, entry = build_release(
            figures,
            sources,
            written,
            version,
            options,
            published,
            changes,
            previous=previous,
            quality=bundle,
            profiles=built,
            digest=digest,
            stopwatch=stopwatch,
            database=database,
        )
        extracts = {path: built.rows.path(path) for path in built.rows} if built else {}
        extracts[DATABASE] = database
        began = time.perf_counter()
        check_private(files, options.private, prefix, leaks, extracts)
        stopwatch.add("verification", began)

        began = time.perf_counter()
        _store(target, prefix, files, written, extracts)
        stopwatch.add("storing", began)
        began = time.perf_counter()
        with _warehouse(options, work) as con:
            problems = read_back(con, target, prefix, entry, written, work / "stored")
        stopwatch.add("verification", began)
        if problems:
            shown = "; ".join(str(p) for p in problems[:10])
            more = f" (and {len(problems) - 10:,} more)" if len(problems) > 10 else ""
            raise ReleaseError(f"{target.location}/{prefix}: verification failed: {shown}{more}")

    began = time.perf_counter()
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
    stopwatch.add("index/catalogue", began)
    return PublishOutcome(
        "published",
        version,
        digest,
        target.url(f"{prefix}datapackage.json"),
        len(entry["files"]),
        dict(entry["row_counts"]),
        files["CHANGELOG.md"].decode(),
        cleared_leftovers=leftovers,
        quality=bundle,
        timings=stopwatch.seconds,
    )


def _no_change(
    target: Target,
    catalog: Mapping[str, Any],
    options: ReleaseOptions,
    bundle: QualityBundle | None,
    digest: str,
    stopwatch: Stopwatch,
) -> PublishOutcome:
    """The data equals the latest release: complete its catalogue files, refresh the
    quality report (``bundle``: tonight's, made for the latest release)."""
    began = time.perf_counter()
    write_catalogue_files(target, catalog, options)
    stopwatch.add("index/catalogue", began)
    latest = catalog["releases"][0]
    if bundle is not None:
        began = time.perf_counter()
        write_latest_quality(target, bundle)
        stopwatch.add("quality report", began)
    return PublishOutcome(
        "no_change",
        latest["version"],
        digest,
        target.url(f"{latest['path']}datapackage.json"),
        row_counts=dict(latest["row_counts"]),
        quality=bundle,
        timings=stopwatch.seconds,
    )


def _changes(
    data: ReleaseTables,
    written: Mapping[str, TableFiles],
    target: Target,
    previous: Mapping[str, Any] | None,
    work: Path,
) -> list[TableChange]:
    """Each table's changes since the previous release, whose Parquet files are read from
    the target (a table copied from it has none)."""
    changes = []
    for table in sorted(written):
        if written[table].reused:
            changes.append(TableChange(table))
            continue
        old = None
        if previous is not None and table in previous.get("row_counts", {}):
            path = target.fetch(f"{previous['path']}data/{table}.parquet", work / "previous")
            old = parquet_relation(table, path) if path is not None else None
        changes.append(compare_table(data.con, table, old, data.relation(table)))
    return changes


def _store(
    target: Target,
    prefix: str,
    files: Mapping[str, bytes],
    written: Mapping[str, TableFiles],
    local: Mapping[str, Path],
) -> None:
    """Every file under ``prefix``, in the order of their paths: bytes written, files on
    disk (``local``: the row extracts) and data files streamed from the work folder, or
    data files copied from the previous release."""
    data_files = {f.key: f for table in written.values() for f in (table.csv, table.parquet)}
    for path in sorted({*files, *local, *data_files}):
        key = prefix + path
        if path in files:
            target.write_bytes(key, files[path], content_type(path))
            continue
        if path in local:
            target.write_file(key, local[path], content_type(path))
            continue
        data_file = data_files[path]
        if data_file.copy_of is not None:
            target.copy(data_file.copy_of, key, content_type(path))
        else:
            assert data_file.path is not None
            target.write_file(key, data_file.path, content_type(path))


@contextmanager
def _workspace(parent: Path | None) -> Iterator[Path]:
    """A fresh folder for one release's files (in ``parent``, where earlier runs' leftovers
    are removed first), removed afterwards."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
        for leftover in parent.glob("release-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix="release-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _database(
    written: Mapping[str, TableFiles], target: Target, options: ReleaseOptions, work: Path
) -> Path:
    """The release's ``cdcompact.duckdb``, written in ``work`` from its Parquet files (those
    copied from the previous release fetched from the target first)."""
    parquet: dict[str, Path] = {}
    for table, table_files in written.items():
        data_file = table_files.parquet
        if data_file.path is not None:
            parquet[table] = data_file.path
            continue
        assert data_file.copy_of is not None
        fetched = target.fetch(data_file.copy_of, work / "previous-data")
        if fetched is None:
            raise ReleaseError(f"{target.location}/{data_file.copy_of}: not found")
        parquet[table] = fetched
    path = work / "database" / DATABASE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_database(parquet, path, _config(options, work))
    return path


def _config(options: ReleaseOptions, work: Path) -> dict[str, Any]:
    """DuckDB's settings while the release is made: the warehouse's limits."""
    return warehouse_config(
        options.warehouse, options.warehouse.temp_directory or work / "duckdb-tmp"
    )


@contextmanager
def _warehouse(options: ReleaseOptions, work: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(config=_config(options, work))
    try:
        set_up(con)
        yield con
    finally:
        con.close()
