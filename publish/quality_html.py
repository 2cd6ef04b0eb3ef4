"""The data-quality report as a small static website (``quality/`` of the publish root).

:func:`render_quality_site` turns the report dict of ``docs/quality-report.md``
(``report.json``) into ``index.html``, the overall report for the compact
secretariat, and ``contributors/{slug}.html``, one page per contributor that
can be sent to the contributor as it is.

This module turns the report into plain data (lists, dicts, numbers, strings) and
renders the templates ``quality_index.html`` and ``quality_contributor.html``
(:mod:`publish.render`); the markup, the texts and the figures' formats are there,
the charts' marks in ``charts.html``. Chart geometry (scale, ticks, positions) is
computed here as numbers.

The pages are pure functions of the report (same dict, same bytes) and are
self-contained: inline CSS and SVG, one small inline script
(``templates/quality_sort.js``) that makes the contributors and files tables
sortable (a Content-Security-Policy allows that script by its hash and nothing
else: no fonts, images, styles or scripts from anywhere), and relative links only.
Every value of the report comes from strangers (file names, messages, organisation
names) and is escaped by the templates; a contributor's ``slug`` is used as a file
name only when it is made of ``[a-z0-9-]``. Every chart is an SVG image (role img)
with a title and a description and has its figures in a table beside it; the state
of anything is written as text, never shown by colour alone (colours are the
Okabe–Ito colour-blind-safe palette).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from expectations.quality import FREQUENCIES, is_setup_finding
from publish.formats import format_timestamp
from publish.formats import number as _number
from publish.render import (
    DEFAULT_LOCALE,
    TEMPLATES,
    language_links,
    page_name,
    render,
    translations,
)
from publish.site import href

INDEX = "index.html"
CONTRIBUTORS_DIR = "contributors"
DATA_DOCS = "data-docs/index.html"

SLUG = re.compile(r"[a-z0-9-]{1,100}")
MAX_INDEX_FINDINGS = 5
FOLD_ROWS = 16  # a chart's figures table with more rows than this is folded


def N_(message: str) -> str:
    """``message`` as it is: marks an English text for ``pybabel extract`` (a default
    keyword); the page translates it (:func:`_translated`) when it shows it."""
    return message


# Okabe–Ito, safe for the common forms of colour blindness.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#8C8C8C",
}

# (symbol, label, colour) per state; the label is always written next to the colour.
STATES: dict[str, tuple[str, str, str]] = {
    "valid": ("✓", N_("valid"), OKABE_ITO["green"]),
    "invalid": ("!", N_("invalid"), OKABE_ITO["orange"]),
    "rejected": ("✗", N_("rejected"), OKABE_ITO["vermillion"]),
    "nothing_received": ("∅", N_("nothing received"), OKABE_ITO["purple"]),
}
STATE_RANK = {"nothing_received": -1, "rejected": 0, "invalid": 1, "valid": 2}
#: States of the contributors the secretariat has to chase: no usable data of theirs.
CHASE = ("nothing_received", "rejected")
#: The submission template (templates/<name>.xlsx, or the CSV folder templates/<name>/) of
#: each kind of contributor that sends submissions; publishers publish IATI files instead.
SUBMISSION_TEMPLATES = {"country": "country_report", "partner": "partner_submission"}
#: Activities named per completeness gap on a contributor's page; "and N more" after.
MAX_NAMED = 10
FRESHNESS: dict[str, tuple[str, str, str]] = {
    "up_to_date": ("✓", N_("up to date"), OKABE_ITO["green"]),
    "due": ("◔", N_("due"), OKABE_ITO["yellow"]),
    "overdue": ("◑", N_("overdue"), OKABE_ITO["orange"]),
    "delinquent": ("✗", N_("delinquent"), OKABE_ITO["vermillion"]),
    "unknown": ("?", N_("unknown"), OKABE_ITO["grey"]),
}
FILE_STATUS: dict[str, tuple[str, str, str]] = {
    "ok": ("✓", N_("ok"), OKABE_ITO["green"]),
    "partial": ("◐", N_("partly accepted"), OKABE_ITO["orange"]),
    "rejected": ("✗", N_("rejected"), OKABE_ITO["vermillion"]),
    "unchanged": ("=", N_("unchanged"), OKABE_ITO["grey"]),
    "stale": ("⌛", N_("stale: fetch failed, last good copy used"), OKABE_ITO["orange"]),
}
SEVERITY: dict[str, tuple[str, str, str]] = {
    "error": ("✗", N_("error"), OKABE_ITO["vermillion"]),
    "warning": ("!", N_("warning"), OKABE_ITO["orange"]),
}
CHECK: dict[str, tuple[str, str, str]] = {
    "passed": ("✓", N_("passed"), OKABE_ITO["green"]),
    "failed": ("✗", N_("failed"), OKABE_ITO["vermillion"]),
}
BADGES = {
    "check": CHECK,
    "state": STATES,
    "freshness": FRESHNESS,
    "status": FILE_STATUS,
    "severity": SEVERITY,
}

# HDX data freshness: days from which data is due, overdue and delinquent.
HDX_THRESHOLDS = FREQUENCIES

#: The completeness figures, in the pages' order (their texts are in quality_macros.html).
COMPLETENESS = (
    "activities_with_sector",
    "activities_with_recipient",
    "cd_activities_with_declaration",
    "cd_activities_with_results",
    "results_with_baseline_and_target",
    "transactions_with_value_date",
    "transactions_with_usd",
)

#: The contributors table's column groups, which the reader picks between (kind, name,
#: state and freshness always show): 19 columns do not fit a laptop's screen, and a
#: squeezed table wraps names onto four lines.
COLUMN_GROUPS = (
    (
        "problems",
        N_("Records and errors"),
        ("records", "quarantined", "schema-errors", "codelist-errors", "expectation-errors"),
    ),
    ("completeness", N_("Completeness"), tuple(key.replace("_", "-") for key in COMPLETENESS)),
    ("flows", N_("Budgets and traceability"), ("forward-budgets", "traceability")),
)


# Chart geometry in SVG user units (the SVG scales with the page).
CHART_WIDTH = 720
LINE_STYLES = (  # (colour, dash pattern, marker): colour is never the only difference
    (OKABE_ITO["blue"], "", "circle"),
    (OKABE_ITO["vermillion"], "7 4", "square"),
    (OKABE_ITO["purple"], "2 3", "triangle"),
    (OKABE_ITO["orange"], "10 3 2 3", "diamond"),
)

SORT_SCRIPT = (
    (files("publish") / TEMPLATES / "quality_sort.js").read_text("utf-8").removesuffix("\n")
)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)

INDEX_NAV = (
    ("figures", N_("Figures")),
    ("contributors", N_("Contributors")),
    ("chase", N_("Whom to chase")),
    ("problems", N_("Problems")),
    ("setup", N_("Setup")),
    ("files", N_("Files")),
    ("tables", N_("Tables")),
    ("completeness", N_("Completeness")),
    ("trend", N_("Trend")),
    ("distributions", N_("Distributions")),
    ("quarantine", N_("Quarantine")),
)
CONTRIBUTOR_NAV = (
    ("summary", N_("Summary")),
    ("problems", N_("Problems")),
    ("resubmit", N_("How to fix and resubmit")),
    ("files", N_("Files")),
    ("completeness", N_("Completeness")),
    ("timeliness", N_("Timeliness")),
    ("forward-budgets", N_("Forward budgets")),
    ("traceability", N_("Traceability")),
    ("quarantine", N_("Quarantine")),
    ("trend", N_("Trend")),
)


# ------------------------------------------------------------- report access


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _mappings(value: object) -> list[Mapping[str, Any]]:
    return [item for item in _list(value) if isinstance(item, Mapping)]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def safe_slug(value: object) -> str | None:
    """The contributor's slug when it is safe as a file name (``[a-z0-9-]``), else None."""
    text = value if isinstance(value, str) else ""
    return text if SLUG.fullmatch(text) and text.strip("-") else None


def _figures(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(entry.get("figures"))


def _validity(figures: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(figures.get("validity"))


def _timeliness(figures: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(figures.get("timeliness"))


def _contributors(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _mappings(report.get("contributors"))


def _files(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _mappings(report.get("files"))


def _trend(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _mappings(report.get("trend"))


def _pages(report: Mapping[str, Any]) -> dict[str, str]:
    """Contributor id → page slug, for contributors whose slug is safe (first one wins)."""
    pages: dict[str, str] = {}
    taken: set[str] = set()
    for contributor in _contributors(report):
        slug = safe_slug(contributor.get("slug"))
        ident = _text(contributor.get("id"))
        if slug is None or slug in taken or ident in pages:
            continue
        pages[ident] = slug
        taken.add(slug)
    return pages


def _forward_years(figures: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``forward_budgets`` as a list of per-year entries (``year`` included).

    Accepts a list of ``{"year", "current_activities", "activities_with_budget",
    "share", "value_usd"}``, a mapping ``{"years": [...]}`` or a mapping year →
    entry; ``current_activities`` given once for the block applies to every year.
    """
    block = figures.get("forward_budgets")
    common: Mapping[str, Any] = {}
    if isinstance(block, Mapping):
        common = {k: v for k, v in block.items() if not isinstance(v, Mapping | list | tuple)}
        years = block.get("years")
        if isinstance(years, list | tuple):
            entries = _mappings(years)
        else:
            source = years if isinstance(years, Mapping) else block
            entries = [
                {"year": year, **entry}
                for year, entry in source.items()
                if isinstance(entry, Mapping)
            ]
    else:
        entries = _mappings(block)
    return [{**common, **entry} for entry in entries]


def _forward_share(figures: Mapping[str, Any], as_of: object) -> Mapping[str, Any]:
    """The forward-budget entry of the ``as_of`` year (else the first year given)."""
    years = _forward_years(figures)
    year = _text(as_of)[:4]
    for entry in years:
        if _text(entry.get("year")) == year:
            return entry
    return years[0] if years else {}


def _by_rule(figures: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``quarantine.by_rule`` as a list of ``{"rule", "severity", "rows", "example"}``."""
    block = figures.get("quarantine")
    rules = block.get("by_rule") if isinstance(block, Mapping) else block
    if isinstance(rules, Mapping):
        return [
            {"rule": rule, **entry} for rule, entry in rules.items() if isinstance(entry, Mapping)
        ]
    return _mappings(rules)


def _rule_rows(entry: Mapping[str, Any]) -> float | None:
    for key in ("rows", "count", "n"):
        number = _number(entry.get(key))
        if number is not None:
            return number
    return None


def _rules(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Quarantine rules for the pages: rule, severity, rows, one example and where it is."""
    rules = []
    for entry in items:
        example = entry.get("example")
        if not isinstance(example, Mapping):
            examples = _mappings(entry.get("examples"))
            example = examples[0] if examples else entry
        place = (
            example.get("activity_id")  # an IATI activity by its identifier, not its pointer
            or example.get("place")
            or example.get("source_ref")
            or example.get("where")
        )
        rules.append(
            {
                "rule": entry.get("rule"),
                "severity": entry.get("severity"),
                "rows": _rule_rows(entry),
                "example": example,
                "place": place,
            }
        )
    return rules


def _ratio(block: Mapping[str, Any], numerator: str, denominator: str) -> dict[str, Any]:
    """A share item ({share, numerator, denominator}) from a block with other key names."""
    if not block:
        return {}
    return {
        "share": block.get("share"),
        "numerator": block.get(numerator),
        "denominator": block.get(denominator),
    }


def _unaccounted(validity: Mapping[str, Any]) -> int | None:
    """Records read minus accepted minus quarantined: 0 when every record is accounted for."""
    counts = [
        _number(validity.get(k)) for k in ("records", "records_accepted", "records_quarantined")
    ]
    if any(c is None for c in counts):
        return None
    records, accepted, quarantined = (int(c or 0) for c in counts)
    return records - accepted - quarantined


def _state_counts(contributors: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for contributor in contributors:
        state = _validity(_figures(contributor)).get("state")
        if isinstance(state, str) and state in counts:
            counts[state] += 1
    return counts


def _freshness_counts(contributors: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(FRESHNESS, 0)
    for contributor in contributors:
        state = _timeliness(_figures(contributor)).get("state")
        key = state if isinstance(state, str) and state in counts else "unknown"
        counts[key] += 1
    return counts


def _contributor_label(contributor: Mapping[str, Any]) -> str:
    return _text(contributor.get("name") or contributor.get("ref") or contributor.get("id"))


def _run_label(entry: Mapping[str, Any], lang: str = DEFAULT_LOCALE) -> str:
    return _text(entry.get("as_of") or format_timestamp(entry.get("generated_at"), lang) or "?")


def _release_target(release_link: str | None) -> str | None:
    """``release_link`` when it is a relative path or an http(s) URL; else nothing is linked."""
    if not release_link:
        return None
    parts = urlsplit(release_link)
    if parts.scheme not in {"", "http", "https"} or release_link.startswith("//"):
        return None
    return release_link


def _from_subfolder(target: str) -> str:
    """A link relative to ``quality/`` as seen from ``quality/contributors/``."""
    parts = urlsplit(target)
    return target if parts.scheme or target.startswith("/") else "../" + target


def _block(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The figures a contributor and the whole compact share, ready for the templates."""
    completeness = _mapping(figures.get("completeness"))
    return {
        "validity": _validity(figures),
        "completeness": {
            key: item for key, item in completeness.items() if isinstance(item, Mapping) and item
        },
        "forward_years": _forward_years(figures),
        "traceability": _mapping(figures.get("traceability")),
        "rules": _rules(_by_rule(figures)),
    }


# --------------------------------------------------------------------- charts
# Geometry in SVG user units (the SVG scales with the page), as plain numbers for the
# chart macros of charts.html; the marks themselves are written there.

PLOT = {"left": 56.0, "top": 32.0, "bottom": 214.0, "height": 250.0}


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 4, 6, 8 × 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _axes(maximum: float, runs: Sequence[str]) -> dict[str, Any]:
    """Grid lines with their values, and the labels of the runs (every n-th when crowded)."""
    left, top, bottom = PLOT["left"], PLOT["top"], PLOT["bottom"]
    slot = (CHART_WIDTH - left - 16) / max(len(runs), 1)
    ticks = [0.0, maximum] if maximum <= 1 else [0.0, maximum / 2, maximum]
    every = max(1, math.ceil(len(runs) * 84 / (CHART_WIDTH - left - 16)))
    return {
        "left": left,
        "right": CHART_WIDTH - 16,
        "bottom": bottom,
        "slot": slot,
        "ticks": [{"y": bottom - (bottom - top) * tick / maximum, "value": tick} for tick in ticks],
        "runs": [
            {"x": left + slot * (index + 0.5), "label": run}
            for index, run in enumerate(runs)
            if not index % every or index == len(runs) - 1
        ],
    }


def chart_columns(runs: Sequence[str], series: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stacked columns, one per run; ``series`` are ``{key, legend, colour, figures}``."""
    top, bottom = PLOT["top"], PLOT["bottom"]
    totals = [sum(_number(s["figures"][i]) or 0.0 for s in series) for i in range(len(runs))]
    maximum = _nice_max(max(totals, default=0.0))
    axes = _axes(maximum, runs)
    width = min(48.0, axes["slot"] * 0.6)
    columns = []
    for index, run in enumerate(runs):
        base, parts = bottom, []
        for item in series:
            value = _number(item["figures"][index])
            if not value:
                continue
            size = (bottom - top) * value / maximum
            base -= size
            parts.append(
                {
                    "key": item["key"],
                    "name": item["legend"],
                    "colour": item["colour"],
                    "value": value,
                    "y": base,
                    "height": size,
                }
            )
        columns.append(
            {
                "run": index,
                "label": run,
                "x": PLOT["left"] + axes["slot"] * (index + 0.5) - width / 2,
                "width": width,
                "top": base,
                "total": totals[index],
                "parts": parts,
            }
        )
    legend = list(series) if len(series) > 1 else []
    return {"height": PLOT["height"], "axes": axes, "columns": columns, "legend": legend}


def chart_lines(runs: Sequence[str], series: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Lines over runs; ``series`` are ``{key, legend, figures}``, each with its own colour,
    dash and marker. A missing value breaks the line instead of pretending it was 0."""
    top, bottom = PLOT["top"], PLOT["bottom"]
    every_value = [_number(v) or 0.0 for item in series for v in item["figures"]]
    maximum = _nice_max(max(every_value, default=0.0))
    axes = _axes(maximum, runs)
    lines = []
    for number, item in enumerate(series):
        colour, dash, marker = LINE_STYLES[number % len(LINE_STYLES)]
        points: list[dict[str, Any] | None] = []
        for index, run in enumerate(runs):
            figures = item["figures"]
            value = _number(figures[index]) if index < len(figures) else None
            points.append(
                None
                if value is None
                else {
                    "run": index,
                    "label": run,
                    "value": value,
                    "x": PLOT["left"] + axes["slot"] * (index + 0.5),
                    "y": bottom - (bottom - top) * value / maximum,
                }
            )
        segments: list[list[dict[str, Any]]] = [[]]
        for point in points:
            if point is None:
                segments.append([])
            else:
                segments[-1].append(point)
        lines.append(
            {
                "key": item["key"],
                "legend": item["legend"],
                "colour": colour,
                "dash": dash,
                "marker": marker,
                "segments": [segment for segment in segments if len(segment) > 1],
                "points": [point for point in points if point is not None],
            }
        )
    return {"height": PLOT["height"], "axes": axes, "lines": lines}


def chart_bars(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Horizontal bars for ``items`` (``{key, label, value, colour}``), scaled to the largest."""
    label_width = 16.0 + 7.8 * max((len(item["label"]) for item in items), default=2)
    label_width = min(label_width, CHART_WIDTH * 0.45)
    value_width, row_height, top = 70.0, 30.0, 6.0
    span = CHART_WIDTH - label_width - value_width
    maximum = max([_number(item["value"]) or 0.0 for item in items] or [0.0])
    bars = []
    for item in items:
        number = _number(item["value"])
        width = 0.0 if not number or maximum <= 0 else max(span * number / maximum, 1.5)
        bars.append({**item, "value": number, "width": width})
    return {
        "items": bars,
        "label_width": label_width,
        "row_height": row_height,
        "top": top,
        "height": top + row_height * len(items) + 6,
    }


# --------------------------------------------------------------------- pages


def _translated(lang: str) -> dict[str, dict[str, tuple[str, str, str]]]:
    """:data:`BADGES` with their words in ``lang``."""
    t = translations(lang)
    return {
        group: {
            key: (symbol, t.gettext(label), colour)
            for key, (symbol, label, colour) in known.items()
        }
        for group, known in BADGES.items()
    }


def _page(template: str, lang: str, nav: Sequence[tuple[str, str]], **data: Any) -> bytes:
    """A page of the report in ``lang``: the data every page needs, then the page's own."""
    t = translations(lang)
    return render(
        template,
        locale=lang,
        csp=CSP,
        badges=_translated(lang),
        completeness=[{"key": key, "column": key.replace("_", "-")} for key in COMPLETENESS],
        fold_rows=FOLD_ROWS,
        nav=[(key, t.gettext(text)) for key, text in nav],
        column_groups=[
            {
                "key": group,
                "label": t.gettext(label),
                "hidden": [k for other, _, keys in COLUMN_GROUPS if other != group for k in keys],
            }
            for group, label, _ in COLUMN_GROUPS
        ]
        + [{"key": "all", "label": t.gettext("All columns"), "hidden": []}],
        **data,
    ).encode()


def _release_page(release: str | None, lang: str) -> str | None:
    """The release's own page in ``lang``: its folder in English (the catalogue's index),
    ``index.{lang}.html`` in it in another language (published in the same languages)."""
    if not release or lang == DEFAULT_LOCALE or not release.endswith("/"):
        return release
    return release + page_name("index", lang)


def _contributor_href(slug: str | None, lang: str) -> str | None:
    return href(CONTRIBUTORS_DIR, page_name(slug, lang)) if slug else None


def _common(report: Mapping[str, Any], release: str | None, lang: str) -> dict[str, Any]:
    return {
        "as_of": report.get("as_of"),
        "generated_at": report.get("generated_at"),
        "version": report.get("release"),
        "release": release,
        "release_page": _release_page(release, lang),
        "index_page": page_name("index", lang),
    }


def _contributor_rows(
    report: Mapping[str, Any], pages: Mapping[str, str], lang: str
) -> list[dict[str, Any]]:
    rows = []
    for contributor in _contributors(report):
        ident = _text(contributor.get("id"))
        figures = _figures(contributor)
        state = _validity(figures).get("state")
        timeliness = _timeliness(figures)
        name = _contributor_label(contributor)
        slug = pages.get(ident)
        ref = contributor.get("ref")
        rows.append(
            {
                "id": ident,
                "kind": contributor.get("kind"),
                "name": name,
                "href": _contributor_href(slug, lang),
                "ref": ref if ref and ref != name else None,
                "state": state,
                "rank": STATE_RANK.get(_text(state), ""),
                "freshness": timeliness.get("state"),
                "age": timeliness.get("age_days"),
                **_block(figures),
                "forward": _ratio(
                    _forward_share(figures, report.get("as_of")),
                    "activities_with_budget",
                    "current_activities",
                ),
                "traceability": _ratio(
                    _mapping(figures.get("traceability")),
                    "traced_transactions",
                    "incoming_transactions",
                ),
            }
        )
    return rows


def _file_rows(
    report: Mapping[str, Any], pages: Mapping[str, str], lang: str
) -> list[dict[str, Any]]:
    by_id: dict[str, Mapping[str, Any]] = {}
    for contributor in _contributors(report):
        by_id.setdefault(_text(contributor.get("id")), contributor)
    rows = []
    for entry in _files(report):
        who = []
        for ident in _list(entry.get("contributors")):
            key = _text(ident)
            known = by_id.get(key)
            slug = pages.get(key)
            who.append(
                {
                    "label": _contributor_label(known) if known else key,
                    "href": _contributor_href(slug, lang),
                }
            )
        findings = _contributors_findings(entry.get("findings"))
        rows.append(
            {
                "entry": entry,
                "name": _text(entry.get("source_file")),
                "status": entry.get("status"),
                "contributors": who,
                "schema": _mapping(entry.get("schema")),
                "codelists": _mapping(entry.get("codelists")),
                "findings": findings[:MAX_INDEX_FINDINGS],
                "more": max(len(findings) - MAX_INDEX_FINDINGS, 0),
            }
        )
    return rows


def _contributors_findings(findings: object) -> list[Mapping[str, Any]]:
    """The findings about what a contributor sent: without those the compact's own setup
    caused (the setup section reports them once)."""
    return [finding for finding in _mappings(findings) if not is_setup_finding(finding)]


#: The warnings a contributor's page lists: records accepted with something set aside
#: (quarantine), schema and codelist findings of severity warning, rows failing a
#: warning-level expectation. What the compact's setup left unchecked is none of them.
WARNING_FIGURES = ("warnings", "schema_warnings", "codelist_warnings", "expectation_warnings")


def _warning_count(validity: Mapping[str, Any]) -> int | None:
    """The contributor page's Warnings card: every warning the page lists."""
    found = [_number(validity.get(key)) for key in WARNING_FIGURES]
    return None if all(n is None for n in found) else int(sum(n or 0 for n in found))


def _chase_rows(
    report: Mapping[str, Any], pages: Mapping[str, str], lang: str
) -> list[dict[str, Any]]:
    """The contributors with no usable data (nothing received, every file rejected), with
    their contacts: whom the secretariat writes to."""
    rows = []
    for contributor in _contributors(report):
        state = _text(_validity(_figures(contributor)).get("state"))
        if state not in CHASE:
            continue
        ident = _text(contributor.get("id"))
        name = _contributor_label(contributor)
        ref = contributor.get("ref")
        rows.append(
            {
                "id": ident,
                "kind": contributor.get("kind"),
                "name": name,
                "ref": ref if ref and ref != name else None,
                "href": _contributor_href(pages.get(ident), lang),
                "state": state,
                "contact": _mapping(contributor.get("contact")),
            }
        )
    rows.sort(
        key=lambda row: (STATE_RANK.get(_text(row["state"]), 9), _text(row["kind"]), row["name"])
    )
    return rows


def _table_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, raw in _mapping(report.get("tables")).items():
        info = _mapping(raw)
        conformance = _mapping(info.get("schema_conformance"))
        violations = _mapping(conformance.get("violations"))
        expectations = _mapping(info.get("expectations"))
        failed = _mappings(expectations.get("failed"))
        passed = conformance.get("passed")
        if conformance.get("checked") is False:
            state = "unchecked"
        elif passed is True or (passed is None and not violations):
            state = "passed"
        else:
            state = "failed"
        rows.append(
            {
                "name": _text(name),
                "rows": info.get("rows"),
                "conformance": state,
                "violations": list(violations.items()),
                "violation_rows": sum(_number(v) or 0 for v in violations.values()),
                "evaluated": expectations.get("evaluated"),
                "passed_errors": expectations.get("passed_errors"),
                "errors": sum(1 for f in failed if f.get("severity") == "error"),
                "warnings": sum(1 for f in failed if f.get("severity") != "error"),
                "failed": [{**f, "examples": _mappings(f.get("examples"))} for f in failed],
            }
        )
    return rows


def _runs(trend: Sequence[Mapping[str, Any]], lang: str) -> list[dict[str, Any]]:
    return [{"label": _run_label(entry, lang), "release": entry.get("release")} for entry in trend]


def _trend_data(report: Mapping[str, Any], lang: str) -> dict[str, Any] | None:
    trend = _trend(report)
    if not trend:
        return None
    t = translations(lang)
    runs = _runs(trend, lang)
    labels = [run["label"] for run in runs]
    overall = [_mapping(entry.get("overall")) for entry in trend]
    counts = [_mapping(entry.get("state_counts")) for entry in overall]
    states = [
        {
            "key": state,
            "legend": t.gettext(label),
            "colour": colour,
            "figures": [c.get(state) for c in counts],
        }
        for state, (_, label, colour) in STATES.items()
    ]
    quarantined = [entry.get("records_quarantined") for entry in overall]
    errors = [
        {"key": key, "legend": t.gettext(name), "figures": [entry.get(key) for entry in overall]}
        for key, name in (
            ("schema_errors", N_("schema errors")),
            ("codelist_errors", N_("codelist errors")),
            ("expectation_errors", N_("expectation errors")),
        )
    ]
    quarantine_series = {
        "key": "records_quarantined",
        "legend": t.gettext("records quarantined"),
        "colour": OKABE_ITO["orange"],
        "figures": quarantined,
    }
    return {
        "runs": runs,
        "states": states,
        "states_chart": chart_columns(labels, states),
        "records": [entry.get("records") for entry in overall],
        "quarantined": quarantined,
        "quarantined_chart": chart_columns(labels, [quarantine_series]),
        "errors": errors,
        "errors_chart": chart_lines(labels, errors),
    }


def _distributions(report: Mapping[str, Any], lang: str) -> dict[str, Any]:
    t = translations(lang)
    contributors = _contributors(report)
    states, fresh = _state_counts(contributors), _freshness_counts(contributors)
    settings = list(_mapping(_mapping(report.get("settings")).get("freshness")).items())
    return {
        "validity": chart_bars(
            [
                {
                    "key": key,
                    "label": t.gettext(label),
                    "value": float(states[key]),
                    "colour": colour,
                }
                for key, (_, label, colour) in STATES.items()
            ]
        ),
        "freshness": chart_bars(
            [
                {
                    "key": key,
                    "label": t.gettext(label),
                    "value": float(fresh[key]),
                    "colour": colour,
                }
                for key, (_, label, colour) in FRESHNESS.items()
                if key != "unknown" or fresh[key]
            ]
        ),
        "expected": settings,
    }


def _severity(value: object, lang: str) -> str:
    """A severity in words (the code itself when it is not one)."""
    known = SEVERITY.get(_text(value))
    return translations(lang).gettext(known[1]) if known else _text(value)


def _quarantine(figures: Mapping[str, Any], lang: str) -> dict[str, Any]:
    rules = _rules(_by_rule(figures))
    chart = chart_bars(
        [
            {
                "key": f"{_text(rule['rule'])}:{_text(rule['severity'])}",
                "label": f"{_text(rule['rule'])} ({_severity(rule['severity'], lang)})",
                "value": rule["rows"],
                "colour": OKABE_ITO["vermillion" if rule["severity"] == "error" else "orange"],
            }
            for rule in rules
        ]
    )
    return {"rules": rules, "chart": chart}


def render_index(
    report: Mapping[str, Any],
    *,
    data_docs: bool = False,
    release_link: str | None = None,
    lang: str = DEFAULT_LOCALE,
    languages: Iterable[str] = (),
) -> bytes:
    """``index.html`` (``index.{lang}.html``): the overall report for the secretariat, in
    ``lang``, linking its versions in ``languages`` (none when only ``lang``)."""
    t = translations(lang)
    pages = _pages(report)
    release = _release_target(release_link)
    contributors = _contributors(report)
    overall = _mapping(report.get("overall"))
    year = _text(report.get("as_of"))[:4] or t.gettext("this year")
    title = t.gettext("Data-quality report %(date)s") % {"date": _text(report.get("as_of"))}
    return _page(
        "quality_index.html",
        lang,
        INDEX_NAV,
        title=title.strip(),
        description=t.gettext(
            "How good the Capacity Development Compact's data is, contributor by contributor."
        ),
        root="",
        languages=language_links("index", lang, languages),
        data_docs=DATA_DOCS if data_docs else None,
        **_common(report, release, lang),
        overall=_block(overall),
        states=_state_counts(contributors),
        fresh=_freshness_counts(contributors),
        unaccounted=_unaccounted(_validity(overall)),
        year=year,
        contributors=_contributor_rows(report, pages, lang),
        problems=_mappings(report.get("problems")),
        chase=_chase_rows(report, pages, lang),
        setup=_mappings(report.get("setup")),
        files=_file_rows(report, pages, lang),
        tables=_table_rows(report),
        trend=_trend_data(report, lang),
        distributions=_distributions(report, lang),
        quarantine=_quarantine(overall, lang),
    )


# -------------------------------------------------------------- contributor


def _their_files(
    report: Mapping[str, Any], contributor: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    ident = _text(contributor.get("id"))
    names = {_text(name) for name in _list(contributor.get("files"))}
    return [
        entry
        for entry in _files(report)
        if _text(entry.get("source_file")) in names
        or ident in {_text(i) for i in _list(entry.get("contributors"))}
    ]


def _own_file(entry: Mapping[str, Any], ident: str) -> dict[str, Any]:
    """A file as its contributor sees it: of a file holding several publishers' activities,
    the contributor's own part (its activities and findings) and how many others share it."""
    parts = _mappings(entry.get("parts"))
    own = next((part for part in parts if _text(part.get("contributor")) == ident), None)
    shared = None
    if own is not None:
        shared = {"others": len(parts) - 1, "quarantined": entry.get("n_quarantined")}
        entry = {
            **entry,
            "n_records": own.get("n_accepted"),
            "n_accepted": own.get("n_accepted"),
            "n_quarantined": 0,
            "quarantine": own.get("quarantine"),
            "findings": own.get("findings"),
            "schema": {**_mapping(entry.get("schema")), **_mapping(own.get("schema"))},
            "codelists": {**_mapping(entry.get("codelists")), **_mapping(own.get("codelists"))},
        }
    return {
        "entry": entry,
        "shared": shared,
        "schema": _mapping(entry.get("schema")),
        "codelists": _mapping(entry.get("codelists")),
        "findings": _contributors_findings(entry.get("findings")),
        "quarantine": _rules(_mappings(entry.get("quarantine"))),
    }


def _summary(
    report: Mapping[str, Any], figures: Mapping[str, Any], files: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """What the summary's sentences say, most important first (the template words them)."""
    validity, timeliness = _validity(figures), _timeliness(figures)
    state = _text(validity.get("state"))
    records = _number(validity.get("records"))
    errors = [
        {"key": key, "value": _number(validity.get(key))}
        for key in ("schema_errors", "codelist_errors", "expectation_errors")
        if _number(validity.get(key))
    ]
    missing = []
    completeness = _mapping(figures.get("completeness"))
    for key in COMPLETENESS:
        item = _mapping(completeness.get(key))
        numerator, denominator = _number(item.get("numerator")), _number(item.get("denominator"))
        if numerator is None or not denominator or numerator >= denominator:
            continue
        named = [_text(i) for i in _list(item.get("missing"))][:MAX_NAMED]
        missing.append(
            {
                "key": key,
                "missing": denominator - numerator,
                "denominator": denominator,
                "named": named,
                "more": max(denominator - numerator - len(named), 0) if named else 0,
            }
        )
    age = _number(timeliness.get("age_days"))
    fresh_state = _text(timeliness.get("state"))
    fresh = None
    if fresh_state in FRESHNESS and fresh_state != "unknown" and age is not None:
        fresh = "known"
    elif fresh_state == "unknown" or (timeliness and age is None):
        fresh = "unknown"
    forward = _forward_share(figures, report.get("as_of"))
    summary = {
        "state": state if state in STATES else None,
        "rejected": [entry for entry in files if entry.get("status") == "rejected"],
        "records": records or None,
        "errors": errors,
        "missing": missing,
        "fresh": fresh,
        "forward": forward if forward and _number(forward.get("current_activities")) else None,
        "nothing": state == "nothing_received",
    }
    summary["any"] = any(summary.values())
    return summary


def _thresholds(timeliness: Mapping[str, Any]) -> str | dict[str, int] | None:
    """The freshness thresholds that apply: "unknown" when no date is known, None when the
    frequency is not one of HDX's."""
    state = _text(timeliness.get("state"))
    if state == "unknown" or (
        _number(timeliness.get("age_days")) is None and state not in FRESHNESS
    ):
        return "unknown"
    found = HDX_THRESHOLDS.get(_text(timeliness.get("frequency")))
    if found is None:
        return None
    due, overdue, delinquent = found
    return {"due": due, "overdue": overdue, "delinquent": delinquent}


def _their_trend(report: Mapping[str, Any], ident: str, lang: str) -> dict[str, Any] | None:
    trend = _trend(report)
    entries = [_mapping(_mapping(entry.get("contributors")).get(ident)) for entry in trend]
    if not any(entries):
        return None
    t = translations(lang)
    runs = _runs(trend, lang)
    series = [
        {"key": key, "legend": t.gettext(name), "figures": [entry.get(key) for entry in entries]}
        for key, name in (
            ("records_quarantined", N_("records quarantined")),
            ("schema_errors", N_("schema errors")),
            ("codelist_errors", N_("codelist errors")),
            ("expectation_errors", N_("expectation errors")),
        )
    ]
    return {
        "runs": runs,
        "entries": entries,
        "series": series,
        "chart": chart_lines([run["label"] for run in runs], series),
    }


def render_contributor(
    report: Mapping[str, Any],
    contributor: Mapping[str, Any],
    *,
    data_docs: bool = False,
    release_link: str | None = None,
    lang: str = DEFAULT_LOCALE,
    languages: Iterable[str] = (),
) -> bytes:
    """``contributors/{slug}.html`` (``{slug}.{lang}.html``): one contributor's page in
    ``lang``, understandable on its own, linking its versions in ``languages``."""
    t = translations(lang)
    release = _release_target(release_link)
    release = _from_subfolder(release) if release else None
    ident = _text(contributor.get("id"))
    slug = _pages(report).get(ident) or safe_slug(contributor.get("slug"))
    figures = _figures(contributor)
    timeliness = _timeliness(figures)
    kind = contributor.get("kind")
    name = _contributor_label(contributor)
    files = _their_files(report, contributor)
    as_of = _text(report.get("as_of"))
    frequency = timeliness.get("frequency")
    return _page(
        "quality_contributor.html",
        lang,
        CONTRIBUTOR_NAV,
        title=t.gettext("%(name)s: data-quality report %(date)s") % {"name": name, "date": as_of},
        description=t.gettext(
            "Data-quality report for %(name)s, a contributor to the Capacity Development Compact."
        )
        % {"name": name},
        root="../",
        languages=language_links(slug, lang, languages) if slug else [],
        data_docs="../" + DATA_DOCS if data_docs else None,
        **_common(report, release, lang),
        contributor=contributor,
        name=name,
        kind=kind,
        figures=_block(figures),
        validity=_validity(figures),
        warnings=_warning_count(_validity(figures)),
        timeliness=timeliness,
        summary=_summary(report, figures, files),
        problems=_mappings(contributor.get("problems")),
        files=[_own_file(entry, ident) for entry in files],
        thresholds=_thresholds(timeliness),
        frequencies=[
            {"name": key, "due": due, "overdue": overdue, "delinquent": delinquent}
            | {"current": key == frequency}
            for key, (due, overdue, delinquent) in HDX_THRESHOLDS.items()
        ],
        trend=_their_trend(report, ident, lang),
        contact=_mapping(contributor.get("contact")),
        resubmit=_resubmit(contributor, files),
    )


def _resubmit(contributor: Mapping[str, Any], files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the "how to fix and resubmit" section names: the template of the contributor's
    kind and its latest file to check; for a publisher with CD activities lacking a partner
    declaration, the partners' template."""
    kind = _text(contributor.get("kind"))
    completeness = _mapping(_figures(contributor).get("completeness"))
    declared = _mapping(completeness.get("cd_activities_with_declaration"))
    undeclared = (_number(declared.get("denominator")) or 0) > (
        _number(declared.get("numerator")) or 0
    )
    names = [_text(entry.get("source_file")) for entry in files]
    return {
        "template": SUBMISSION_TEMPLATES.get(kind),
        "file": names[-1] if names and kind in SUBMISSION_TEMPLATES else None,
        "declarations": SUBMISSION_TEMPLATES["partner"] if undeclared else None,
    }


def render_quality_site(
    report: Mapping[str, Any],
    *,
    data_docs: bool = False,
    release_link: str | None = None,
    languages: Iterable[str] = (DEFAULT_LOCALE,),
) -> dict[str, bytes]:
    """The quality website: ``{relative path: content}``, in each of ``languages``.

    ``index.html`` is the overall report; ``contributors/{slug}.html`` one page per
    contributor whose ``slug`` is made of ``[a-z0-9-]`` (others get no page and
    no link). In another language than English, ``index.{lang}.html`` and
    ``contributors/{slug}.{lang}.html``; every page links its other languages and links
    the report's pages in its own. ``data_docs`` links ``data-docs/index.html`` (the
    Great Expectations Data Docs, published next to these pages); ``release_link`` is the
    release folder holding the data, relative to ``index.html`` (e.g.
    ``../releases/2026.11.28/``) or an http(s) URL. Same report, same bytes.
    """
    codes = tuple(dict.fromkeys(languages)) or (DEFAULT_LOCALE,)
    for lang in codes:
        translations(lang)  # an unknown language is refused before anything is rendered
    options: dict[str, Any] = {
        "data_docs": data_docs,
        "release_link": release_link,
        "languages": codes,
    }
    site: dict[str, bytes] = {}
    pages = _pages(report)
    for lang in codes:
        site[page_name("index", lang)] = render_index(report, lang=lang, **options)
        done: set[str] = set()
        for contributor in _contributors(report):
            slug = pages.get(_text(contributor.get("id")))
            if slug is None or slug in done:
                continue
            done.add(slug)
            site[f"{CONTRIBUTORS_DIR}/{page_name(slug, lang)}"] = render_contributor(
                report, contributor, lang=lang, **options
            )
    return site
