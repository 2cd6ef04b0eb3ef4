"""The static catalogue page (``index.html``), each release folder's page and the DCAT-AP
description, from ``catalog.json``. The two pages are written in every language of the
release (``index.fr.html`` in French, :func:`publish.render.page_name`); their texts are
gettext messages, translated in ``publish/locale/``.

All are pure functions of the catalogue dict, so the pages can be rebuilt and tested
without publishing anything. This module gathers the figures as plain data; the markup
is in ``publish/templates/`` (``index.html``, ``release.html``), rendered by
:mod:`publish.render`, which escapes every value: titles and codes are data. The page
is self-contained (inline CSS and SVG, no JavaScript, fonts or CDNs) and every link in
it is relative, so the publish root works the same on disk (``file://``), over HTTP and
on S3.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from babel.numbers import format_percent

from publish.database import DATABASE
from publish.formats import blank as _blank
from publish.formats import number as _number
from publish.render import (
    DEFAULT_LOCALE,
    country_names_in,
    language_links,
    page_name,
    render,
    translations,
)

DATA_FORMATS = ("csv", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
    # DuckDB's database file has no registered media type
    "duckdb": "application/octet-stream",
}
FORMAT_LABELS = {"csv": "CSV", "parquet": "Parquet", "json": "JSON", "duckdb": "DuckDB"}
# The documents of a release, in the order the page lists them (their names are in
# the template); the descriptor is listed even when the catalogue does not say its size.
RELEASE_DOCUMENTS = (
    "datapackage.json",
    "README.md",
    "cdcompact.duckdb",
    "data-dictionary.md",
    "CITATION.cff",
    "CHANGELOG.md",
    "quality/index.html",
    "quality/report.json",
    "quality/report.md",
    "SHA256SUMS",
)
ROOT_FILES = ("catalog.json", "latest.json", "dcat.jsonld")
DATA_DICTIONARY = "data-dictionary.md"

# The headline figures (labels in the template) and how each is shown.
HEADLINE = (
    ("activities", "count"),
    ("cd_activities", "count"),
    ("publishers", "count"),
    ("countries", "count"),
    ("disbursement_usd", "usd"),
    ("cd_disbursement_usd", "usd"),
    ("cd_share", "share"),
)
QUALITY = (
    "files",
    "files_ok",
    "files_partial",
    "files_rejected",
    "records_quarantined",
    "warnings",
    "schema_errors",
    "codelist_errors",
    "checks_failed",
)
QUALITY_PROBLEMS = frozenset(
    {
        "files_partial",
        "files_rejected",
        "records_quarantined",
        "schema_errors",
        "codelist_errors",
        "checks_failed",
    }
)

# Alignment metrics (metrics.md): label and the framework the metric comes from.
ALIGNMENT_METRICS = {
    "cd_share": ("CD share of disbursements", "context"),
    "priority_alignment": ("Aligned with country CD priorities", "country-led priorities"),
    "results_framework_use": ("Indicators from a country results framework", "GPEDC 1a.2"),
    "objectives_from_country_framework": ("Objectives from a country framework", "GPEDC 1a.1"),
    "government_data_use": ("Indicators measured with government data", "GPEDC 1a.3"),
    "coordinated_tc": ("Coordinated technical cooperation", "Paris 4, target 50%"),
    "country_systems_use": ("Use of country systems", "Paris 5a/5b, GPEDC 9b"),
    "on_budget": ("On budget", "GPEDC 6, Paris 3"),
    "parallel_piu_count": ("Parallel implementation units (count)", "Paris 6"),
    "programme_based": ("Programme-based approaches", "Paris 9"),
    "traceability": ("Traceable incoming funds", "IATI traceability"),
    "results_reporting": ("Activities with baseline and target", "results focus"),
}
COUNT_METRICS = frozenset({"parallel_piu_count"})

DCAT_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "owl": "http://www.w3.org/2002/07/owl#",
}
DATA_PACKAGE_SPEC = "https://specs.frictionlessdata.io/data-package/"
KEYWORDS = ("capacity development", "development cooperation", "aid effectiveness", "IATI")


def _text(value: object) -> str:
    """A value as the page shows it verbatim: None is nothing."""
    return "" if value is None else str(value)


def _data(value: float | None) -> str:
    """A number for a ``data-value`` attribute (empty when missing)."""
    return "" if value is None else repr(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --------------------------------------------------------------- catalogue


def href(*parts: object) -> str:
    """A relative link built from ``/``-separated parts, each segment percent-encoded.

    Encoding every segment keeps a link relative whatever the catalogue says
    (``javascript:x`` becomes ``javascript%3Ax``); ``.`` and ``..`` are dropped
    so links stay inside the publish root.
    """
    segments: list[str] = []
    trailing = False
    for part in parts:
        text = "" if part is None else str(part)
        for segment in text.split("/"):
            if segment and segment not in {".", ".."}:
                segments.append(quote(segment, safe=""))
        trailing = text.endswith("/")
    return "/".join(segments) + ("/" if trailing and segments else "")


def _url(base_url: str | None, *parts: object) -> str:
    relative = href(*parts)
    if base_url is None:
        return relative
    return base_url.rstrip("/") + "/" + relative


@dataclass(frozen=True)
class DataFile:
    """One data file of a release (``data/{table}.{format}``)."""

    table: str
    format: str
    path: str
    sha256: str | None
    bytes: int | None


def releases(catalog: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The catalogue's releases (newest first, as published); malformed entries are skipped."""
    entries = catalog.get("releases") or []
    return [entry for entry in entries if isinstance(entry, Mapping)]


def latest_release(catalog: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The release ``catalog["latest"]`` names, else the newest one; None before any release."""
    entries = releases(catalog)
    for entry in entries:
        if entry.get("version") == catalog.get("latest"):
            return entry
    return entries[0] if entries else None


def release_path(release: Mapping[str, Any]) -> str:
    path = release.get("path")
    return str(path) if path else f"releases/{release.get('version', '')}/"


def _files(release: Mapping[str, Any]) -> Mapping[str, Any]:
    files = release.get("files")
    return files if isinstance(files, Mapping) else {}


def data_files(release: Mapping[str, Any]) -> dict[str, dict[str, DataFile]]:
    """The release's data files by table name (alphabetical), then by format (csv, parquet)."""
    tables: dict[str, dict[str, DataFile]] = {}
    for name, meta in _files(release).items():
        folder, _, file_name = str(name).partition("/")
        table, dot, extension = file_name.rpartition(".")
        if folder != "data" or not dot or "/" in file_name or extension not in DATA_FORMATS:
            continue
        info = meta if isinstance(meta, Mapping) else {}
        size = _number(info.get("bytes"))
        tables.setdefault(table, {})[extension] = DataFile(
            table=table,
            format=extension,
            path=str(name),
            sha256=None if _blank(info.get("sha256")) else str(info["sha256"]),
            bytes=None if size is None else int(size),
        )
    return {
        table: {fmt: tables[table][fmt] for fmt in DATA_FORMATS if fmt in tables[table]}
        for table in sorted(tables)
    }


def _credits(catalog: Mapping[str, Any]) -> list[str]:
    """``catalog["credits"]``: strings, or ``{"title": ...}`` like a data package's sources."""
    credits = catalog.get("credits") or []
    if isinstance(credits, str):
        credits = [credits]
    lines = []
    for credit in credits:
        if isinstance(credit, Mapping):
            credit = credit.get("title") or credit.get("name")
        if not _blank(credit):
            lines.append(str(credit))
    return lines


# ------------------------------------------------------- the page's figures


def _about(catalog: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """Title, description, licence and credits of the catalogue."""
    t = translations(lang)
    description = str(catalog.get("description") or "")
    licence = None
    license_ = _mapping(catalog.get("license"))
    if license_:
        path = str(license_.get("path") or "")
        licence = {
            "name": str(license_.get("title") or license_.get("name") or t.gettext("licence")),
            "href": path if path.startswith(("https://", "http://")) else href(path),
        }
    return {
        "title": str(catalog.get("title") or catalog.get("name") or t.gettext("Data catalogue")),
        "name": _text(catalog.get("name")),
        "summary": " ".join(description.split()),
        "paragraphs": [
            " ".join(block.split()) for block in description.split("\n\n") if block.strip()
        ],
        "licence": licence,
        "credits": _credits(catalog),
    }


def _hash(value: object) -> str:
    return "" if _blank(value) else str(value)


def _translated_page(files: Mapping[str, Any], path: str, lang: str) -> str:
    """``path`` (an English page of a release) in ``lang`` when the release holds it."""
    translated = page_name(path.removesuffix(".html"), lang)
    return translated if translated in files else path


def _downloads(latest: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The release's facts, documents and data files (with sizes and checksums)."""
    path = release_path(latest)
    files = _files(latest)
    documents = []
    for document in RELEASE_DOCUMENTS:
        if document != "datapackage.json" and document not in files:
            continue
        name = _translated_page(files, document, lang) if document.endswith(".html") else document
        meta = _mapping(files.get(name))
        documents.append(
            {
                "file": document,
                "path": name,
                "href": href(path, name),
                "sized": bool(meta),
                "bytes": meta.get("bytes"),
            }
        )
    counts = _mapping(latest.get("row_counts"))
    tables = [
        {
            "name": table,
            "rows": _text(counts.get(table, "")),
            "count": counts.get(table),
            "files": [
                None
                if item is None
                else {
                    "format": fmt,
                    "label": FORMAT_LABELS[fmt],
                    "href": href(path, item.path),
                    "bytes": item.bytes,
                    "sha256": item.sha256 or "",
                }
                for fmt in DATA_FORMATS
                for item in [formats.get(fmt)]
            ],
        }
        for table, formats in data_files(latest).items()
    ]
    return {
        "version": _text(latest.get("version")),
        "date": _text(latest.get("date")),
        "stamp": _text(latest.get("published") or latest.get("date")),
        "published": latest.get("published"),
        "schema_version": _text(latest.get("schema_version")),
        "content_hash": _hash(latest.get("content_hash")),
        "folder": href(path),
        "dictionary": href(DATA_DICTIONARY),
        "documents": documents,
        "tables": tables,
    }


def _headline(latest: Mapping[str, Any]) -> list[dict[str, Any]]:
    figures = _mapping(latest.get("headline"))
    return [
        {
            "key": key,
            "kind": kind,
            "value": figures.get(key),
            "data": _data(_number(figures.get(key))),
        }
        for key, kind in HEADLINE
    ]


def _country_label(country: Mapping[str, Any]) -> str:
    name = country.get("country_name")
    code = str(country.get("country_code", ""))
    return f"{code} {name}" if name else code


def _countries(release: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Countries by disbursement, largest first: their label, code and figures."""
    entries = [row for row in release.get("countries") or [] if isinstance(row, Mapping)]
    entries.sort(
        key=lambda row: (
            -(_number(row.get("disbursement_usd")) or 0.0),
            str(row.get("country_code")),
        )
    )
    return [
        {
            "code": _text(row.get("country_code")),
            "label": _country_label(row),
            "values": {
                "all": _number(row.get("disbursement_usd")),
                "cd": _number(row.get("cd_disbursement_usd")),
                "cd_share": _number(row.get("cd_share")),
            },
            "cd_activities": row.get("cd_activities"),
        }
        for row in entries
    ]


def _profiles(release: Mapping[str, Any], lang: str) -> dict[str, Any] | None:
    """Links to a release's country and partner profile pages (None when it has none):
    each in ``lang`` when the profiles are published in it, with links to the others."""
    profiles = _mapping(release.get("profiles"))
    countries = [c for c in profiles.get("countries") or [] if isinstance(c, Mapping)]
    if not countries:
        return None
    base = release_path(release)
    languages = [str(x) for x in profiles.get("languages") or [DEFAULT_LOCALE]]
    shown = lang if lang in languages else DEFAULT_LOCALE
    others = [x for x in languages if x != shown]

    def page(path: str, language: str) -> str:
        return page_name(re.sub(r"\.html$", "", path), language)

    return {
        "countries": [
            {
                "label": _country_label(
                    {"country_code": country.get("code"), "country_name": country.get("name")}
                ),
                "href": href(base, page(str(country.get("path")), shown)),
                "translations": [
                    {"lang": x, "href": href(base, page(str(country.get("path")), x))}
                    for x in others
                ],
            }
            for country in countries
        ],
        "countries_index": href(base, "countries", page_name("index", shown)),
        "partners_index": href(base, "partners", page_name("index", shown)),
        "partners": int(_number(profiles.get("partners")) or 0),
    }


def _rows(catalog: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    rows = catalog.get(key) or []
    return [row for row in rows if isinstance(row, Mapping) and not _blank(row.get("country_code"))]


def _year(row: Mapping[str, Any]) -> int | None:
    year = _number(row.get("year"))
    return None if year is None else int(year)


def _latest_year_per_country(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    years: dict[str, int] = {}
    for row in rows:
        year = _year(row)
        if year is not None:
            code = str(row["country_code"])
            years[code] = max(years.get(code, year), year)
    return years


def _message(lang: str, english: str) -> str:
    """``english``, a text the templates also write (their literal ``%`` doubled, as
    gettext's python-format messages have it), in ``lang``."""
    return translations(lang).gettext(english.replace("%", "%%")).replace("%%", "%")


def _alignment(rows: Sequence[Mapping[str, Any]], lang: str) -> dict[str, Any]:
    """Alignment metrics for all partners together, each country's latest year: one row
    per metric, one cell per country (None where the country has no value). The metrics'
    names and references are the profile pages' messages (``profile_parts.html``)."""
    overall = [row for row in rows if _blank(row.get("partner_org_ref"))]
    years = _latest_year_per_country(overall)
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in overall:
        code = str(row["country_code"])
        if _year(row) == years.get(code):
            cells[(str(row.get("metric")), code)] = row
    countries = sorted(years)
    present = {metric for metric, _ in cells}
    metrics = [m for m in ALIGNMENT_METRICS if m in present] + sorted(
        present - set(ALIGNMENT_METRICS)
    )

    def cell(metric: str, code: str) -> dict[str, Any] | None:
        row = cells.get((metric, code))
        if row is None:
            return None
        value = _number(row.get("value"))
        eligible, coverage = _number(row.get("n_activities_eligible")), _number(row.get("coverage"))
        return {
            "value": value,
            "data": _data(value),
            "count": metric in COUNT_METRICS,
            "fill": None if value is None else min(max(value, 0.0), 1.0) * 100,
            "numerator": row.get("numerator"),
            "denominator": row.get("denominator"),
            "activities": row.get("n_activities"),
            # the unknowns are left out of a share: the reader is told how many were known
            "eligible": eligible if eligible and coverage is not None and coverage < 1 else None,
            "coverage": coverage,
        }

    return {
        "countries": [{"code": code, "year": years[code]} for code in countries],
        "metrics": [
            {
                "key": metric,
                "label": _message(lang, ALIGNMENT_METRICS[metric][0])
                if metric in ALIGNMENT_METRICS
                else metric,
                "anchor": _message(lang, ALIGNMENT_METRICS[metric][1])
                if metric in ALIGNMENT_METRICS
                else "",
                "cells": [cell(metric, code) for code in countries],
            }
            for metric in metrics
        ],
    }


def _duplication(rows: Sequence[Mapping[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Effective partners and HHI per country × CD sector or priority, latest year per country."""
    years = _latest_year_per_country(rows)
    latest = [row for row in rows if _year(row) == years.get(str(row["country_code"]))]
    t = translations(lang)

    def cell_key(row: Mapping[str, Any]) -> str:
        """The English name: the rows keep one order in every language."""
        if not _blank(row.get("sector_code")):
            return f"sector {row['sector_code']}"
        if not _blank(row.get("priority_id")):
            return f"priority {row['priority_id']}"
        return "all CD"

    def cell_name(row: Mapping[str, Any]) -> str:
        if not _blank(row.get("sector_code")):
            return t.gettext("sector %(code)s") % {"code": row["sector_code"]}
        if not _blank(row.get("priority_id")):
            return t.gettext("priority %(id)s") % {"id": row["priority_id"]}
        return t.gettext("all CD")

    latest.sort(
        key=lambda row: (
            str(row["country_code"]),
            -(_number(row.get("cd_disbursement_usd")) or 0.0),
            cell_key(row),
        )
    )
    return [
        {
            "code": str(row["country_code"]),
            "name": cell_name(row),
            "label": f"{row['country_code']} · {cell_name(row)}",
            "year": _year(row),
            "hhi": _number(row.get("hhi")),
            "values": {"effective_partners": _number(row.get("effective_partners"))},
            **{
                key: row.get(key)
                for key in (
                    "n_partners",
                    "n_activities",
                    "cd_disbursement_usd",
                    "fragmentation_ratio",
                    "n_overlap_pairs",
                    "overlap_value_share",
                )
            },
        }
        for row in latest
    ]


def _quality(latest: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The run's quality counts (problems flagged) and links to the release's report (its
    page in ``lang`` when the release has one, and the latest run's at the root alike)."""
    quality = _mapping(latest.get("quality"))
    files = _files(latest)
    path = release_path(latest)
    page = _translated_page(files, "quality/index.html", lang)
    main = next((p for p in (page, "quality/report.md") if p in files), None)
    counts = []
    for key in QUALITY:
        value = _number(quality.get(key))
        counts.append(
            {"key": key, "value": value, "problem": key in QUALITY_PROBLEMS and (value or 0) > 0}
        )
    return {
        "counts": counts,
        "report": None if main is None else href(path, main),
        "latest": href(page),
        "report_json": href(path, "quality/report.json")
        if "quality/report.json" in files
        else None,
    }


def _latest(latest: Mapping[str, Any], lang: str) -> dict[str, Any]:
    alignment = _rows(latest, "alignment")
    duplication = _rows(latest, "duplication")
    return {
        **_downloads(latest, lang),
        "headline": _headline(latest),
        "countries": _countries(latest),
        "profiles": _profiles(latest, lang),
        "alignment": _alignment(alignment, lang) if alignment else None,
        "duplication": _duplication(duplication, lang) if duplication else None,
        "quality": _quality(latest, lang),
    }


def _release_rows(catalog: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in releases(catalog):
        path = release_path(entry)
        counts = _mapping(entry.get("row_counts"))
        rows.append(
            {
                "version": _text(entry.get("version")),
                "latest": entry.get("version") == catalog.get("latest"),
                "date": _text(entry.get("date")),
                "schema_version": _text(entry.get("schema_version")),
                "activities": counts.get("activities"),
                "transactions": counts.get("transactions"),
                "content_hash": _hash(entry.get("content_hash")),
                "folder": href(path),
                "package": href(path, "datapackage.json"),
            }
        )
    return rows


def render_index_html(
    catalog: Mapping[str, Any],
    lang: str = DEFAULT_LOCALE,
    languages: Sequence[str] = (DEFAULT_LOCALE,),
) -> str:
    """The catalogue page in ``lang`` (``index.html``, French ``index.fr.html``): latest
    release, downloads, figures, charts, quality and every release. ``languages``: the
    languages the catalogue is published in, linked from the page (hreflang and the
    language switch); with one language the page has neither."""
    translations(lang)  # an unknown language is refused before anything is rendered
    catalog = country_names_in(catalog, lang)  # CLDR's names in French (Sénégal)
    latest = latest_release(catalog)
    return render(
        "index.html",
        locale=lang,
        catalog=_about(catalog, lang),
        latest=None if latest is None else _latest(latest, lang),
        releases=_release_rows(catalog),
        root_files=ROOT_FILES,
        full_scale=format_percent(1, locale=lang),  # the top of the share chart's scale
        languages=language_links("index", lang, languages),
    )


def render_release_html(
    title: str,
    version: str,
    published: str,
    tables: Sequence[tuple[str, str, int, int, int]],
    *,
    has_quality: bool,
    has_profiles: bool,
    lang: str = DEFAULT_LOCALE,
    languages: Sequence[str] = (DEFAULT_LOCALE,),
    quality_languages: Collection[str] = (DEFAULT_LOCALE,),
) -> str:
    """A release folder's own page in ``lang`` (``releases/{version}/index.html``, French
    ``index.fr.html``): what the release holds, linked, for a reader who lands on the
    folder from a profile or quality page. ``tables``: (name, title, rows, CSV bytes,
    Parquet bytes) of each data table. ``languages``: the languages the catalogue and the
    profiles are published in (the page links to its own versions in each);
    ``quality_languages``: those the quality report is in (else it links the English one)."""
    translations(lang)
    quality = page_name("index", lang if lang in quality_languages else DEFAULT_LOCALE)
    return render(
        "release.html",
        locale=lang,
        languages=language_links("index", lang, languages),
        links={
            "catalogue": f"../../{page_name('index', lang)}",
            "quality": f"quality/{quality}",
            "countries": f"countries/{page_name('index', lang)}",
            "partners": f"partners/{page_name('index', lang)}",
        },
        title=title,
        version=version,
        published=published,
        tables=[
            {"name": name, "title": table_title, "rows": rows, "csv": csv, "parquet": parquet}
            for name, table_title, rows, csv, parquet in tables
        ],
        has_quality=has_quality,
        has_profiles=has_profiles,
    )


# ---------------------------------------------------------------------- DCAT


def _checksum(sha256: str) -> dict[str, Any]:
    return {
        "@type": "spdx:Checksum",
        "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
        "spdx:checksumValue": {"@value": sha256, "@type": "xsd:hexBinary"},
    }


def _distribution(
    url: str, title: str, fmt: str, sha256: str | None, size: int | None
) -> dict[str, Any]:
    distribution: dict[str, Any] = {
        "@id": url,
        "@type": "dcat:Distribution",
        "dct:title": title,
        "dct:format": FORMAT_LABELS[fmt],
        "dcat:mediaType": MEDIA_TYPES[fmt],
        "dcat:downloadURL": {"@id": url},
        "dcat:accessURL": {"@id": url},
    }
    if size is not None:
        distribution["dcat:byteSize"] = {"@value": size, "@type": "xsd:nonNegativeInteger"}
    if sha256:
        distribution["spdx:checksum"] = _checksum(sha256)
    return distribution


def render_dcat(catalog: Mapping[str, Any], base_url: str | None) -> dict[str, Any]:
    """A DCAT-AP style JSON-LD description: the catalogue, one dataset per release, its files.

    Download URLs are ``base_url`` + release path + file, or relative (to the
    publish root) when ``base_url`` is None.
    """
    title = str(catalog.get("title") or catalog.get("name") or "cdcompact")
    description = str(catalog.get("description") or "")
    license_ = catalog.get("license") if isinstance(catalog.get("license"), Mapping) else {}
    licence_url = str(license_.get("path") or "") if license_ else ""
    licence = {"@id": licence_url} if licence_url else None
    credits = _credits(catalog)
    publisher = {"@type": "foaf:Agent", "foaf:name": str(catalog.get("publisher") or title)}

    datasets: list[dict[str, Any]] = []
    entries = releases(catalog)
    for index, entry in enumerate(entries):
        version = str(entry.get("version", ""))
        path = release_path(entry)
        files = _files(entry)
        distributions = []
        package = (
            files.get("datapackage.json")
            if isinstance(files.get("datapackage.json"), Mapping)
            else {}
        )
        size = _number(package.get("bytes")) if package else None
        sha = package.get("sha256") if package else None
        data_package = _distribution(
            _url(base_url, path, "datapackage.json"),
            "datapackage.json (Frictionless data package descriptor)",
            "json",
            None if _blank(sha) else str(sha),
            None if size is None else int(size),
        )
        data_package["dct:conformsTo"] = {"@id": DATA_PACKAGE_SPEC}
        distributions.append(data_package)
        database = _mapping(files.get(DATABASE))
        if database:
            database_bytes = _number(database.get("bytes"))
            distributions.append(
                _distribution(
                    _url(base_url, path, DATABASE),
                    f"{DATABASE} (every table in one DuckDB database, names beside codes)",
                    "duckdb",
                    _text(database.get("sha256")) or None,
                    None if database_bytes is None else int(database_bytes),
                )
            )
        for table, formats in data_files(entry).items():
            for fmt, item in formats.items():
                distributions.append(
                    _distribution(
                        _url(base_url, path, item.path),
                        f"{table} ({FORMAT_LABELS[fmt]})",
                        fmt,
                        item.sha256,
                        item.bytes,
                    )
                )
        dataset: dict[str, Any] = {
            "@id": _url(base_url, path),
            "@type": "dcat:Dataset",
            "dct:identifier": version,
            "dct:title": f"{title} {version}",
            "dct:description": description,
            "dcat:version": version,
            "owl:versionInfo": version,
            "dct:conformsTo": {
                "@type": "dct:Standard",
                "dct:title": f"CD results schema {entry.get('schema_version', '')}",
                "owl:versionInfo": str(entry.get("schema_version", "")),
            },
            "dct:publisher": publisher,
            "dcat:keyword": list(KEYWORDS),
            "dcat:distribution": distributions,
        }
        if entry.get("published"):
            dataset["dct:issued"] = {"@value": str(entry["published"]), "@type": "xsd:dateTime"}
        elif entry.get("date"):
            dataset["dct:issued"] = {"@value": str(entry["date"]), "@type": "xsd:date"}
        if licence:
            dataset["dct:license"] = licence
        if credits:
            dataset["dct:source"] = credits
        if "README.md" in files:
            dataset["foaf:page"] = {"@id": _url(base_url, path, "README.md")}
        if index + 1 < len(entries):
            dataset["dcat:previousVersion"] = {
                "@id": _url(base_url, release_path(entries[index + 1]))
            }
        datasets.append(dataset)

    document: dict[str, Any] = {
        "@context": dict(DCAT_CONTEXT),
        "@id": base_url.rstrip("/") + "/" if base_url else "./",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dct:description": description,
        "dct:publisher": publisher,
        "foaf:homepage": {"@id": _url(base_url, "index.html")},
        "dcat:dataset": datasets,
    }
    if licence:
        document["dct:license"] = licence
    if credits:
        document["dct:source"] = credits
    latest = latest_release(catalog)
    if latest is not None and latest.get("published"):
        document["dct:modified"] = {"@value": str(latest["published"]), "@type": "xsd:dateTime"}
    return document
