"""The static catalogue page (``index.html``) and its DCAT-AP description, from ``catalog.json``.

Both are pure functions of the catalogue dict, so the page can be rebuilt and
tested without publishing anything. The page is self-contained (inline CSS and
SVG, no JavaScript, fonts or CDNs) and every link in it is relative, so the
publish root works the same on disk (``file://``), over HTTP and on S3. Every
string that comes from the catalogue is escaped: titles and codes are data.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

SHORT_HASH = 12
DATA_FORMATS = ("csv", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
}
FORMAT_LABELS = {"csv": "CSV", "parquet": "Parquet", "json": "JSON"}
# The documents of a release, in the order the page lists them.
RELEASE_DOCUMENTS = (
    ("datapackage.json", "Data package descriptor (datapackage.json)"),
    ("README.md", "README"),
    ("CHANGELOG.md", "Changes since the previous release"),
    ("quality/index.html", "Data-quality report"),
    ("quality/report.json", "Data-quality report (JSON)"),
    ("quality/report.md", "Data-quality report (text digest)"),
    ("SHA256SUMS", "Checksums (SHA256SUMS)"),
)
ROOT_FILES = ("catalog.json", "latest.json", "dcat.jsonld")
DATA_DICTIONARY = "data-dictionary.md"

HEADLINE = (
    ("activities", "Activities", "count"),
    ("cd_activities", "CD activities", "count"),
    ("publishers", "Publishers", "count"),
    ("countries", "Countries", "count"),
    ("disbursement_usd", "Disbursements", "usd"),
    ("cd_disbursement_usd", "CD disbursements", "usd"),
    ("cd_share", "CD share of disbursements", "share"),
)
QUALITY = (
    ("files", "Files read"),
    ("files_ok", "Files OK"),
    ("files_partial", "Files partly accepted"),
    ("files_rejected", "Files rejected"),
    ("records_quarantined", "Records quarantined"),
    ("warnings", "Warnings"),
    ("schema_errors", "IATI schema errors"),
    ("codelist_errors", "Codelist errors"),
    ("checks_failed", "Checks failed"),
)
QUALITY_PROBLEMS = (
    "files_partial",
    "files_rejected",
    "records_quarantined",
    "schema_errors",
    "codelist_errors",
    "checks_failed",
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
NOT_COMPUTED = "Alignment and duplication metrics are not computed yet."

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

# Chart geometry, in SVG user units (the SVG scales to the page width).
CHART_WIDTH = 900
COLOURS = {"all": "#94a3b8", "cd": "#0f766e", "track": "#e2e8f0", "partners": "#b45309"}


# ---------------------------------------------------------------- formatting


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: object) -> float | None:
    """A finite float, or None for missing values (None, "", NaN, text that is no number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _blank(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def format_count(value: object) -> str:
    """A whole number with thousands separators (``12,345``); ``–`` when missing."""
    number = _number(value)
    return "–" if number is None else f"{round(number):,}"


def format_usd(value: object) -> str:
    """US dollars for humans: ``USD 10.6 million`` when large, else ``USD 329,644``."""
    number = _number(value)
    if number is None:
        return "–"
    if abs(number) >= 1e9:
        return f"USD {number / 1e9:,.1f} billion"
    if abs(number) >= 1e6:
        return f"USD {number / 1e6:,.1f} million"
    return f"USD {number:,.0f}"


def format_share(value: object) -> str:
    """A 0..1 share as a percentage with one decimal (``66.9%``); ``–`` when missing."""
    number = _number(value)
    return "–" if number is None else f"{number * 100:.1f}%"


def format_bytes(value: object) -> str:
    """A file size in SI units (``1.2 MB``)."""
    number = _number(value)
    if number is None:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if number >= size:
            return f"{number / size:.1f} {unit}"
    return f"{number:.0f} B"


def _format_plain(value: object) -> str:
    number = _number(value)
    if number is None:
        return "–"
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"


def _format_timestamp(value: object) -> str:
    """``2026-11-28T04:20:00Z`` → ``2026-11-28 04:20 UTC`` (the raw text when unparseable)."""
    text = "" if value is None else str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.isoformat(sep=" ", timespec="minutes")


def short_hash(value: object) -> str:
    text = "" if value is None else str(value)
    return text[:SHORT_HASH] + "…" if len(text) > SHORT_HASH else text


def _hash_code(value: object) -> str:
    if _blank(value):
        return '<span class="na">–</span>'
    return f'<code class="sha" title="{_esc(value)}">{_esc(short_hash(value))}</code>'


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
    """One data file of a release (``data/<table>.<format>``)."""

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


# -------------------------------------------------------------------- charts


def _svg(height: float, label: str, body: Iterable[str], chart_id: str) -> str:
    """An inline SVG chart; it scrolls sideways on narrow screens rather than shrink its text."""
    return (
        '<div class="scroll">'
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_esc(chart_id)}" '
        f'viewBox="0 0 {CHART_WIDTH} {height:.0f}" role="img" aria-label="{_esc(label)}">'
        f"<title>{_esc(label)}</title>{''.join(body)}</svg></div>"
    )


def _legend(items: Sequence[tuple[str, str]], y: float = 14) -> str:
    parts = []
    x = 0.0
    for colour, text in items:
        parts.append(
            f'<rect x="{x:.0f}" y="{y - 10:.0f}" width="12" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{x + 18:.0f}" y="{y:.0f}" class="legend">{_esc(text)}</text>'
        )
        x += 30 + 7.5 * len(text)
    return "".join(parts)


def _bar(
    x: float,
    y: float,
    width: float,
    height: float,
    colour: str,
    attributes: Mapping[str, object],
    tooltip: str,
) -> str:
    data = "".join(f' data-{key}="{_esc(value)}"' for key, value in attributes.items())
    return (
        f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'rx="2" fill="{colour}"{data}><title>{_esc(tooltip)}</title></rect>'
    )


def _label_width(labels: Iterable[str]) -> float:
    """Room for the longest bar label (bold 13px text, about 8 units a character)."""
    return 16.0 + 8.0 * max((len(label) for label in labels), default=2)


def _bar_width(value: float | None, maximum: float, span: float) -> float:
    if value is None or value <= 0 or maximum <= 0:
        return 0.0
    return max(span * value / maximum, 1.5)


def _country_label(country: Mapping[str, Any]) -> str:
    name = country.get("country_name")
    code = str(country.get("country_code", ""))
    return f"{code} {name}" if name else code


def _countries(catalog: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = [row for row in catalog.get("countries") or [] if isinstance(row, Mapping)]
    return sorted(
        entries,
        key=lambda row: (
            -(_number(row.get("disbursement_usd")) or 0.0),
            str(row.get("country_code")),
        ),
    )


def chart_disbursements(countries: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars per country: all disbursements and CD disbursements, labelled."""
    label_width = _label_width(_country_label(row) for row in countries)
    value_width, row_height, top = 150.0, 46.0, 30.0
    span = CHART_WIDTH - label_width - value_width
    maximum = max(
        [
            _number(row.get(key)) or 0.0
            for row in countries
            for key in ("disbursement_usd", "cd_disbursement_usd")
        ]
        or [0.0]
    )
    body = [_legend([(COLOURS["all"], "All disbursements"), (COLOURS["cd"], "CD disbursements")])]
    for index, row in enumerate(countries):
        code = str(row.get("country_code", ""))
        y = top + index * row_height
        body.append(
            f'<text x="{label_width - 10:.0f}" y="{y + 22:.0f}" class="label" '
            f'text-anchor="end">{_esc(_country_label(row))}</text>'
        )
        for offset, series, key, text in (
            (4, "all", "disbursement_usd", "all disbursements"),
            (22, "cd", "cd_disbursement_usd", "CD disbursements"),
        ):
            value = _number(row.get(key))
            width = _bar_width(value, maximum, span)
            shown = format_usd(value)
            body.append(
                _bar(
                    label_width,
                    y + offset,
                    width,
                    16,
                    COLOURS[series],
                    {"country": code, "series": series, "value": "" if value is None else value},
                    f"{code} {text}: {shown}",
                )
            )
            body.append(
                f'<text x="{label_width + width + 6:.1f}" y="{y + offset + 12.5:.1f}" '
                f'class="value">{_esc(shown)}</text>'
            )
    height = top + row_height * len(countries) + 4
    return _svg(
        height, "CD disbursements and all disbursements per country", body, "chart-disbursements"
    )


def chart_cd_share(countries: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars per country: the CD share of disbursements (0–100%)."""
    label_width = _label_width(_country_label(row) for row in countries)
    value_width, row_height, top = 150.0, 28.0, 8.0
    span = CHART_WIDTH - label_width - value_width
    body = []
    for index, row in enumerate(countries):
        code = str(row.get("country_code", ""))
        share = _number(row.get("cd_share"))
        y = top + index * row_height
        shown = format_share(share) if share is not None else "no disbursements"
        width = _bar_width(share, 1.0, span)
        body.append(
            f'<text x="{label_width - 10:.0f}" y="{y + 14:.0f}" class="label" '
            f'text-anchor="end">{_esc(_country_label(row))}</text>'
            f'<rect x="{label_width:.0f}" y="{y + 2:.1f}" width="{span:.1f}" height="16" rx="2" '
            f'fill="{COLOURS["track"]}"/>'
        )
        body.append(
            _bar(
                label_width,
                y + 2,
                width,
                16,
                COLOURS["cd"],
                {"country": code, "series": "cd_share", "value": "" if share is None else share},
                f"{code} CD share: {shown}",
            )
        )
        body.append(
            f'<text x="{label_width + span + 8:.1f}" y="{y + 14.5:.1f}" class="value">'
            f"{_esc(shown)}</text>"
        )
    height = top + row_height * len(countries) + 4
    return _svg(height, "CD share of disbursements per country", body, "chart-cd-share")


# ------------------------------------------------------------------ sections


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _data(value: float | None) -> str:
    """A number for a ``data-value`` attribute (empty when missing)."""
    return "" if value is None else repr(value)


def _head_cells(*labels: str) -> str:
    return "".join(f'<th scope="col" class="num">{_esc(label)}</th>' for label in labels)


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{_esc(section_id)}"><h2>{_esc(title)}</h2>{body}</section>'


def _link(target: str, text: str, **attributes: object) -> str:
    extra = "".join(
        f' {key.replace("_", "-")}="{_esc(value)}"' for key, value in attributes.items()
    )
    return f'<a href="{_esc(target)}"{extra}>{_esc(text)}</a>'


def _header(catalog: Mapping[str, Any], latest: Mapping[str, Any] | None) -> str:
    title = catalog.get("title") or catalog.get("name") or "Data catalogue"
    paragraphs = [
        f"<p>{_esc(' '.join(block.split()))}</p>"
        for block in str(catalog.get("description") or "").split("\n\n")
        if block.strip()
    ]
    license_ = catalog.get("license") if isinstance(catalog.get("license"), Mapping) else {}
    licence = ""
    if license_:
        name = license_.get("title") or license_.get("name") or "licence"
        path = str(license_.get("path") or "")
        target = path if path.startswith(("https://", "http://")) else href(path)
        licence = (
            f'<p class="licence">Licence: {_link(target, str(name), rel="license")}'
            if target
            else f'<p class="licence">Licence: {_esc(name)}'
        ) + "</p>"
    credits = _credits(catalog)
    credit_html = (
        '<p class="credits">Sources: '
        + "; ".join(f'<span class="credit">{_esc(credit)}</span>' for credit in credits)
        + "</p>"
        if credits
        else ""
    )
    summary = ""
    if latest is not None:
        stamp = latest.get("published") or latest.get("date")
        summary = (
            '<p class="latest-line">Latest release '
            f'<strong id="latest-version">{_esc(latest.get("version"))}</strong>, '
            f'<time id="latest-date" datetime="{_esc(stamp)}">'
            f"{_esc(latest.get('date'))}</time></p>"
        )
    return (
        f'<header><p class="kicker">Open data · {_esc(catalog.get("name") or "")}</p>'
        f'<h1 id="title">{_esc(title)}</h1>{summary}<div class="description">'
        f"{''.join(paragraphs)}</div>{licence}{credit_html}</header>"
    )


def _nav(has_metrics: bool) -> str:
    items = [
        ("downloads", "Download"),
        ("headline", "Figures"),
        ("countries", "Countries"),
        ("metrics", "Alignment & duplication") if has_metrics else ("metrics", "Metrics"),
        ("quality", "Data quality"),
        ("releases", "All releases"),
    ]
    return (
        '<nav aria-label="Sections"><ul>'
        + "".join(f'<li><a href="#{key}">{_esc(text)}</a></li>' for key, text in items)
        + "</ul></nav>"
    )


def _downloads(latest: Mapping[str, Any]) -> str:
    path = release_path(latest)
    files = _files(latest)
    version = latest.get("version")
    facts = (
        '<dl class="facts">'
        f'<div><dt>Version</dt><dd data-field="version">{_esc(version)}</dd></div>'
        f'<div><dt>Date</dt><dd data-field="date">{_esc(latest.get("date"))}</dd></div>'
        f'<div><dt>Published</dt><dd data-field="published">'
        f"{_esc(_format_timestamp(latest.get('published')))}</dd></div>"
        '<div><dt>Schema version</dt><dd id="schema-version">'
        f"{_esc(latest.get('schema_version'))}</dd></div>"
        f"<div><dt>Content hash</dt><dd>{_hash_code(latest.get('content_hash'))}</dd></div>"
        "</dl>"
    )
    documents = []
    for name, text in RELEASE_DOCUMENTS:
        if name != "datapackage.json" and name not in files:
            continue
        meta = files.get(name) if isinstance(files.get(name), Mapping) else {}
        size = f' <span class="size">{_esc(format_bytes(meta.get("bytes")))}</span>' if meta else ""
        documents.append(f"<li>{_link(href(path, name), text, data_file=name)}{size}</li>")
    dictionary = _link(
        href(DATA_DICTIONARY), "Data dictionary (every table and field)", id="data-dictionary"
    )
    documents.append(f"<li>{dictionary}</li>")
    documents.append(f"<li>{_link(href(path), 'The release folder', data_file='')}</li>")
    rows = []
    counts = _mapping(latest.get("row_counts"))
    for table, formats in data_files(latest).items():
        cells = [
            f'<th scope="row"><code>{_esc(table)}</code></th>',
            f'<td class="num" data-rows="{_esc(counts.get(table, ""))}">'
            f"{_esc(format_count(counts.get(table)))}</td>",
        ]
        for fmt in DATA_FORMATS:
            item = formats.get(fmt)
            if item is None:
                cells.append('<td class="na">–</td>')
                continue
            cells.append(
                f'<td class="nowrap">'
                f"{_link(href(path, item.path), FORMAT_LABELS[fmt], data_format=fmt)} "
                f'<span class="size">{_esc(format_bytes(item.bytes))}</span></td>'
            )
        for fmt in DATA_FORMATS:
            item = formats.get(fmt)
            cells.append(f"<td>{_hash_code(item.sha256 if item else None)}</td>")
        rows.append(f'<tr data-table="{_esc(table)}">{"".join(cells)}</tr>')
    table_html = (
        '<div class="scroll"><table id="data-files"><caption>Data files of release '
        f"{_esc(version)}: one table, two formats (CSV and Parquet)</caption><thead><tr>"
        '<th scope="col">Table</th><th scope="col" class="num">Rows</th><th scope="col">CSV</th>'
        '<th scope="col">Parquet</th><th scope="col">SHA-256 (CSV)</th>'
        '<th scope="col">SHA-256 (Parquet)</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
        if rows
        else '<p class="empty">This release lists no data files.</p>'
    )
    return _section(
        "downloads",
        "Download the latest release",
        f'{facts}<ul class="documents">{"".join(documents)}</ul>{table_html}',
    )


def _headline(latest: Mapping[str, Any]) -> str:
    figures = _mapping(latest.get("headline"))
    formatters = {"count": format_count, "usd": format_usd, "share": format_share}
    cards = []
    for key, label, kind in HEADLINE:
        value = figures.get(key)
        number = _number(value)
        cards.append(
            f'<div class="figure" data-figure="{key}" data-value="{_data(number)}">'
            f'<span class="figure-value">{_esc(formatters[kind](value))}</span>'
            f'<span class="figure-label">{_esc(label)}</span></div>'
        )
    note = (
        '<p class="note">Disbursements are transaction types 3 (disbursement) and 4 '
        "(expenditure) that count toward totals, in US dollars at the value date; "
        "CD = capacity development.</p>"
    )
    return _section(
        "headline", "Headline figures", f'<div class="figures">{"".join(cards)}</div>{note}'
    )


def _country_table(countries: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f'<tr data-country="{_esc(row.get("country_code"))}">'
        f'<th scope="row">{_esc(_country_label(row))}</th>'
        f'<td class="num">{_esc(format_usd(row.get("disbursement_usd")))}</td>'
        f'<td class="num">{_esc(format_usd(row.get("cd_disbursement_usd")))}</td>'
        f'<td class="num">{_esc(format_share(row.get("cd_share")))}</td>'
        f'<td class="num">{_esc(format_count(row.get("cd_activities")))}</td></tr>'
        for row in countries
    )
    return (
        '<details><summary>The same figures as a table</summary><div class="scroll">'
        '<table id="country-table"><thead><tr><th scope="col">Country</th>'
        f"{_head_cells('Disbursements', 'CD disbursements', 'CD share', 'CD activities')}"
        f"</tr></thead><tbody>{rows}</tbody></table></div></details>"
    )


def _profile_links(release: Mapping[str, Any]) -> str:
    """Links to a release's country and partner profile pages (if it has them)."""
    profiles = _mapping(release.get("profiles"))
    countries = [c for c in profiles.get("countries") or [] if isinstance(c, Mapping)]
    if not countries:
        return ""
    base = release_path(release)
    languages = [str(x) for x in profiles.get("languages") or ["en"]]
    others = languages[1:]

    def page(path: str, language: str | None) -> str:
        return path if language is None else re.sub(r"\.html$", f".{language}.html", path)

    items = []
    for country in countries:
        path = str(country.get("path"))
        label = _country_label(
            {"country_code": country.get("code"), "country_name": country.get("name")}
        )
        translations = "".join(
            f" ({_link(href(base, page(path, x)), x.upper(), hreflang=x, lang=x)})" for x in others
        )
        items.append(f"<li>{_link(href(base, page(path, None)), label)}{translations}</li>")
    partners = int(_number(profiles.get("partners")) or 0)
    return (
        '<div id="profiles"><h3>Country and partner profiles</h3>'
        "<p>Each country's page shows its capacity-development money by partner, modality "
        "and sector, its priorities and who funds them, its results, every alignment metric "
        "beside its peers, duplication hotspots and the quality of the data behind it. "
        f"{_link(href(base, 'countries/index.html'), 'All country profiles')} · "
        f"{_link(href(base, 'partners/index.html'), f'All {partners} partner profiles')}</p>"
        f'<ul class="profiles">{"".join(items)}</ul></div>'
    )


def _countries_section(release: Mapping[str, Any]) -> str:
    countries = _countries(release)
    if not countries:
        return _section(
            "countries",
            "By country",
            '<p class="empty">No disbursements by country in this release.</p>'
            + _profile_links(release),
        )
    body = (
        "<figure><figcaption>CD disbursements and all disbursements per recipient country "
        "(US dollars)</figcaption>"
        f"{chart_disbursements(countries)}</figure>"
        "<figure><figcaption>CD share of each country's disbursements</figcaption>"
        f"{chart_cd_share(countries)}</figure>{_country_table(countries)}"
        f"{_profile_links(release)}"
    )
    return _section("countries", "By country", body)


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


def _alignment(rows: Sequence[Mapping[str, Any]]) -> str:
    """Alignment metrics for all partners together, each country's latest year."""
    overall = [row for row in rows if _blank(row.get("partner_org_ref"))]
    years = _latest_year_per_country(overall)
    if not years:
        return (
            '<p class="empty" data-empty="alignment">Alignment metrics for all partners together '
            "are not computed yet.</p>"
        )
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
    head = "".join(
        f'<th scope="col" class="num" data-country="{_esc(code)}">{_esc(code)}'
        f'<span class="year">{years[code]}</span></th>'
        for code in countries
    )
    body = []
    for metric in metrics:
        label, anchor = ALIGNMENT_METRICS.get(metric, (metric, ""))
        tds = []
        for code in countries:
            cell = cells.get((metric, code))
            if cell is None:
                tds.append(f'<td class="num na" data-country="{_esc(code)}">–</td>')
                continue
            value = _number(cell.get("value"))
            detail = (
                f"{_format_plain(cell.get('numerator'))} ÷ {_format_plain(cell.get('denominator'))}"
                f" · {format_count(cell.get('n_activities'))} activities"
            )
            eligible, coverage = (
                _number(cell.get("n_activities_eligible")),
                _number(cell.get("coverage")),
            )
            if eligible and coverage is not None and coverage < 1:
                detail += (
                    f" of {format_count(eligible)} ({format_share(coverage)} known;"
                    " the unknowns are left out)"
                )
            if value is None:
                shown, meter = "n/a", ""
            elif metric in COUNT_METRICS:
                shown, meter = format_count(value), ""
            else:
                shown = format_share(value)
                fill = min(max(value, 0.0), 1.0) * 100
                meter = (
                    '<span class="meter" aria-hidden="true">'
                    f'<span style="width:{fill:.1f}%"></span></span>'
                )
            tds.append(
                f'<td class="num" data-country="{_esc(code)}" data-metric="{_esc(metric)}" '
                f'data-value="{_data(value)}" title="{_esc(detail)}">'
                f"{meter}{_esc(shown)}</td>"
            )
        anchor_html = f'<span class="anchor">{_esc(anchor)}</span>' if anchor else ""
        body.append(
            f'<tr data-metric="{_esc(metric)}"><th scope="row">{_esc(label)}{anchor_html}</th>'
            f"{''.join(tds)}</tr>"
        )
    return (
        "<h3>Alignment</h3>"
        '<p class="note">All development partners together, each country\'s latest year. '
        "Shares leave out activities whose declaration is unknown; hover a value for its "
        "numerator, denominator and number of activities.</p>"
        '<div class="scroll"><table id="alignment-table" class="metrics">'
        f'<thead><tr><th scope="col">Metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _duplication(rows: Sequence[Mapping[str, Any]]) -> str:
    """Effective partners and HHI per country × CD sector or priority, latest year per country."""
    years = _latest_year_per_country(rows)
    latest = [row for row in rows if _year(row) == years.get(str(row["country_code"]))]

    def cell_name(row: Mapping[str, Any]) -> str:
        if not _blank(row.get("sector_code")):
            return f"sector {row['sector_code']}"
        if not _blank(row.get("priority_id")):
            return f"priority {row['priority_id']}"
        return "all CD"

    latest.sort(
        key=lambda row: (
            str(row["country_code"]),
            -(_number(row.get("cd_disbursement_usd")) or 0.0),
            cell_name(row),
        )
    )
    label_width = _label_width(f"{row['country_code']} · {cell_name(row)}" for row in latest)
    value_width, row_height, top = 170.0, 26.0, 8.0
    span = CHART_WIDTH - label_width - value_width
    maximum = max([_number(row.get("effective_partners")) or 0.0 for row in latest] or [0.0])
    bars = []
    table_rows = []
    for index, row in enumerate(latest):
        code = str(row["country_code"])
        name = cell_name(row)
        partners = _number(row.get("effective_partners"))
        hhi = _number(row.get("hhi"))
        y = top + index * row_height
        shown = ("–" if partners is None else f"{partners:.1f}") + (
            "" if hhi is None else f" (HHI {hhi:.2f})"
        )
        width = _bar_width(partners, maximum, span)
        bars.append(
            f'<text x="{label_width - 10:.0f}" y="{y + 14:.0f}" class="label" text-anchor="end">'
            f"{_esc(code)} · {_esc(name)}</text>"
            + _bar(
                label_width,
                y + 2,
                width,
                16,
                COLOURS["partners"],
                {
                    "country": code,
                    "series": "effective_partners",
                    "value": "" if partners is None else partners,
                },
                f"{code} {name}: {shown} effective partners",
            )
            + f'<text x="{label_width + width + 6:.1f}" y="{y + 14.5:.1f}" class="value">'
            f"{_esc(shown)}</text>"
        )
        table_rows.append(
            f'<tr data-country="{_esc(code)}"><th scope="row">{_esc(code)}</th>'
            f'<td class="nowrap">{_esc(name)}</td>'
            f'<td class="num">{_esc(_year(row) or "–")}</td>'
            f'<td class="num">{_esc(format_count(row.get("n_partners")))}</td>'
            f'<td class="num">{_esc(format_count(row.get("n_activities")))}</td>'
            f'<td class="num">{_esc(format_usd(row.get("cd_disbursement_usd")))}</td>'
            f'<td class="num">{"–" if hhi is None else f"{hhi:.2f}"}</td>'
            f'<td class="num">{"–" if partners is None else f"{partners:.1f}"}</td>'
            f'<td class="num">{_esc(format_share(row.get("fragmentation_ratio")))}</td>'
            f'<td class="num">{_esc(format_count(row.get("n_overlap_pairs")))}</td>'
            f'<td class="num">{_esc(format_share(row.get("overlap_value_share")))}</td></tr>'
        )
    chart = _svg(
        top + row_height * len(latest) + 4,
        "Effective number of partners per country and CD sector or priority",
        bars,
        "chart-effective-partners",
    )
    return (
        "<h3>Duplication and fragmentation</h3>"
        "<figure><figcaption>Effective number of partners per country and CD sector or "
        f"priority</figcaption>{chart}</figure>"
        '<p class="note">Effective partners = 1 ÷ HHI, the concentration of CD disbursement '
        "over partners: 1 means a single partner, higher means CD is spread over more partners. "
        "Each country's latest year.</p>"
        '<div class="scroll"><table id="duplication-table" class="metrics"><thead><tr>'
        '<th scope="col">Country</th><th scope="col">Sector or priority</th>'
        + _head_cells(
            "Year",
            "Partners",
            "Activities",
            "CD disbursements",
            "HHI",
            "Effective partners",
            "Fragmentation ratio",
            "Overlap pairs",
            "Overlap value share",
        )
        + "</tr></thead>"
        f"<tbody>{''.join(table_rows)}</tbody></table></div>"
    )


def _metrics_section(latest: Mapping[str, Any]) -> str:
    alignment = _rows(latest, "alignment")
    duplication = _rows(latest, "duplication")
    if not alignment and not duplication:
        return _section(
            "metrics",
            "Alignment and duplication",
            f'<p class="empty" id="metrics-not-computed">{_esc(NOT_COMPUTED)}</p>',
        )
    parts = [
        _alignment(alignment)
        if alignment
        else '<p class="empty" data-empty="alignment">Alignment metrics are not computed yet.</p>',
        _duplication(duplication)
        if duplication
        else '<p class="empty" data-empty="duplication">'
        "Duplication metrics are not computed yet.</p>",
    ]
    return _section("metrics", "Alignment and duplication", "".join(parts))


def _quality(latest: Mapping[str, Any]) -> str:
    quality = _mapping(latest.get("quality"))
    items = []
    for key, label in QUALITY:
        value = _number(quality.get(key))
        problem = key in QUALITY_PROBLEMS and value is not None and value > 0
        items.append(
            f'<div class="{"problem" if problem else "ok"}"><dt>{_esc(label)}</dt>'
            f'<dd data-quality="{key}">{_esc(format_count(value))}</dd></div>'
        )
    files = _files(latest)
    path = release_path(latest)
    main = next((p for p in ("quality/index.html", "quality/report.md") if p in files), None)
    report = (
        f"<p>Every rejected file and quarantined record is listed with its reason in the "
        f"{_link(href(path, main), 'data-quality report')}"
        + (
            f" ({_link(href(path, 'quality/report.json'), 'JSON')})"
            if "quality/report.json" in files
            else ""
        )
        + ", with a page for every contributor. "
        + "The latest run's report, with freshness judged on its day: "
        + _link("quality/index.html", "quality/")
        + ".</p>"
        if main
        else ""
    )
    return _section("quality", "Data quality", f'<dl class="quality">{"".join(items)}</dl>{report}')


def _releases_table(catalog: Mapping[str, Any]) -> str:
    rows = []
    latest = catalog.get("latest")
    for entry in releases(catalog):
        path = release_path(entry)
        counts = _mapping(entry.get("row_counts"))
        version = entry.get("version")
        marker = ' <span class="badge">latest</span>' if version == latest else ""
        rows.append(
            f'<tr data-version="{_esc(version)}"><th scope="row">{_esc(version)}{marker}</th>'
            f"<td>{_esc(entry.get('date'))}</td><td>{_esc(entry.get('schema_version'))}</td>"
            f'<td class="num">{_esc(format_count(counts.get("activities")))}</td>'
            f'<td class="num">{_esc(format_count(counts.get("transactions")))}</td>'
            f"<td>{_hash_code(entry.get('content_hash'))}</td>"
            f"<td>{_link(href(path), 'folder')} · "
            f"{_link(href(path, 'datapackage.json'), 'datapackage.json')}</td></tr>"
        )
    if not rows:
        return _section(
            "releases", "All releases", '<p class="empty">No release has been published yet.</p>'
        )
    machine = " · ".join(_link(href(name), name) for name in ROOT_FILES)
    return _section(
        "releases",
        "All releases",
        '<p class="note">Releases are immutable; a new one is published only when the data '
        "changed. "
        f"Machine-readable: {machine}.</p>"
        '<div class="scroll"><table id="releases-table"><thead><tr><th scope="col">Version</th>'
        '<th scope="col">Date</th><th scope="col">Schema</th>'
        + _head_cells("Activities", "Transactions")
        + '<th scope="col">Content hash</th>'
        f'<th scope="col">Files</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>',
    )


STYLE = """
:root{--ink:#0f172a;--muted:#475569;--line:#e2e8f0;--accent:#0f766e;--bg:#f8fafc;--warn:#b91c1c}
*{box-sizing:border-box}
body{margin:0;
  font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--ink);background:var(--bg)}
main{max-width:1080px;margin:0 auto;padding:0 20px 48px}
header{padding:32px 0 8px}
h1{font-size:2rem;line-height:1.2;margin:.2em 0}
h2{font-size:1.35rem;margin:0 0 .6em;padding-bottom:.3em;border-bottom:2px solid var(--line)}
h3{font-size:1.1rem;margin:1.4em 0 .4em}
a{color:#0e7490}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 24px;
  margin:20px 0}
.kicker{text-transform:uppercase;letter-spacing:.08em;font-size:.8rem;color:var(--muted);
  margin:0}
.latest-line{font-size:1.1rem;margin:.2em 0 .6em}
.description p{max-width:75ch;margin:.4em 0}
.licence,.credits,.note{color:var(--muted);font-size:.92rem}
nav ul{display:flex;flex-wrap:wrap;gap:6px 18px;list-style:none;padding:0;margin:8px 0 0}
nav a{text-decoration:none;font-weight:600}
.facts{display:flex;flex-wrap:wrap;gap:12px 32px;margin:0 0 12px}
.facts dt{font-size:.8rem;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.facts dd{margin:0;font-weight:600}
.documents{columns:2 320px;padding-left:1.2em}
.size{color:var(--muted);font-size:.85rem}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.figure{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:var(--bg)}
.figure-value{display:block;white-space:nowrap;font-size:1.4rem;font-weight:700;color:var(--accent);
  font-variant-numeric:tabular-nums}
.figure-label{display:block;color:var(--muted);font-size:.9rem}
.quality{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:10px;
  margin:0}
.quality div{border-radius:8px;padding:8px 12px;background:#f0fdf4;border:1px solid #bbf7d0}
.quality div.problem{background:#fef2f2;border-color:#fecaca}
.quality dt{font-size:.85rem;color:var(--muted)}
.quality dd{margin:0;font-size:1.3rem;font-weight:700}
.quality div.problem dd{color:var(--warn)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem;margin:8px 0}
table.metrics{width:auto;min-width:60%}
caption{text-align:left;color:var(--muted);padding:4px 0}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--bg);font-size:.85rem}
.num{text-align:right;font-variant-numeric:tabular-nums}
.na,.empty{color:var(--muted)}
.nowrap{white-space:nowrap}
.empty{font-style:italic}
code.sha{font-size:.85rem;cursor:help}
.badge{display:inline-block;background:var(--accent);color:#fff;border-radius:999px;
  font-size:.7rem;padding:0 8px;vertical-align:middle}
figure{margin:12px 0 20px}
figcaption{font-weight:600;margin-bottom:6px}
svg.chart{display:block;width:100%;max-width:900px;min-width:640px;height:auto}
svg.chart text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
  font-size:13px;fill:#0f172a}
svg.chart text.label{font-weight:600}
svg.chart text.value{fill:#334155}
.metrics th .anchor,.metrics th .year{display:block;font-weight:400;color:var(--muted);
  font-size:.78rem}
.meter{display:inline-block;width:60px;height:8px;background:var(--line);border-radius:4px;
  margin-right:8px;vertical-align:middle;overflow:hidden}
.meter span{display:block;height:100%;background:var(--accent)}
details{margin-top:8px}
summary{cursor:pointer;color:#0e7490}
@media (max-width:640px){main{padding:0 10px 32px}section{padding:14px 12px}h1{font-size:1.6rem}}
footer{color:var(--muted);font-size:.85rem;text-align:center;padding:12px}
"""


def render_index_html(catalog: Mapping[str, Any]) -> str:
    """The catalogue page: latest release, downloads, figures, charts, quality and every release."""
    latest = latest_release(catalog)
    title = str(catalog.get("title") or catalog.get("name") or "Data catalogue")
    sections: list[str] = []
    if latest is None:
        sections.append(
            _section(
                "downloads", "Downloads", '<p class="empty">No release has been published yet.</p>'
            )
        )
    else:
        sections += [
            _downloads(latest),
            _headline(latest),
            _countries_section(latest),
            _metrics_section(latest),
            _quality(latest),
        ]
    sections.append(_releases_table(catalog))
    has_metrics = latest is not None and bool(
        _rows(latest, "alignment") or _rows(latest, "duplication")
    )
    description = " ".join(str(catalog.get("description") or "").split())
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title>"
        f'<meta name="description" content="{_esc(description)}">'
        '<meta name="generator" content="cdcompact">'
        '<link rel="alternate" type="application/json" href="catalog.json">'
        '<link rel="alternate" type="application/ld+json" href="dcat.jsonld">'
        f"<style>{STYLE}</style></head><body><main>"
        f"{_header(catalog, latest)}{_nav(has_metrics)}"
        + "".join(sections)
        + '<footer>Generated by cdcompact from <a href="catalog.json">catalog.json</a>.</footer>'
        "</main></body></html>\n"
    )


def render_release_html(
    title: str,
    version: str,
    published: str,
    tables: Sequence[tuple[str, str, int, int, int]],
    *,
    has_quality: bool,
    has_profiles: bool,
) -> str:
    """A release folder's own ``index.html`` (``releases/<version>/``): what the release
    holds, linked, for a reader who lands on the folder from a profile or quality page.
    ``tables``: (name, title, rows, CSV bytes, Parquet bytes) of each data table."""
    about = [
        ("datapackage.json", "Data package descriptor (Frictionless): tables, schema, provenance"),
        ("README.md", "What this release is, and how to cite it"),
        ("CHANGELOG.md", "What changed since the previous release"),
        ("SHA256SUMS", "Checksums of every file (sha256sum -c SHA256SUMS)"),
    ]
    if has_quality:
        about.append(("quality/index.html", "Data-quality report"))
    if has_profiles:
        about += [
            ("countries/index.html", "Country profiles"),
            ("partners/index.html", "Development partner profiles"),
        ]
    items = "".join(f"<li>{_link(path, path)}: {_esc(text)}</li>" for path, text in about)
    rows = "".join(
        f'<tr data-table="{_esc(name)}"><th scope="row">{_esc(name)}</th>'
        f"<td>{_esc(table_title)}</td>"
        f'<td class="num">{_esc(format_count(count))}</td>'
        f"<td>{_link(f'data/{name}.csv', 'CSV')} ({_esc(format_bytes(csv_bytes))})</td>"
        f"<td>{_link(f'data/{name}.parquet', 'Parquet')} ({_esc(format_bytes(parquet_bytes))})"
        "</td></tr>"
        for name, table_title, count, csv_bytes, parquet_bytes in tables
    )
    table = (
        '<table id="table-release-files"><thead><tr><th scope="col">Table</th>'
        '<th scope="col">Title</th>'
        f'{_head_cells("Rows")}<th scope="col">CSV</th><th scope="col">Parquet</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )
    heading = f"{title} {version}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(heading)}</title>"
        '<meta name="generator" content="cdcompact">'
        '<link rel="alternate" type="application/json" href="datapackage.json">'
        f"<style>{STYLE}</style></head><body><main>"
        f"<header><h1>{_esc(heading)}</h1><p>Published {_esc(published[:10])} · "
        f"{_link('../../index.html', 'all releases (the catalogue)')}</p></header>"
        + _section("release", "This release", f"<ul>{items}</ul>")
        + _section("data", "Data tables", table)
        + '<footer>Generated by cdcompact from <a href="datapackage.json">datapackage.json'
        "</a>.</footer></main></body></html>\n"
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
