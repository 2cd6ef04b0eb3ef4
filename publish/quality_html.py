"""The data-quality report as a small static website (``quality/`` of the publish root).

:func:`render_quality_site` turns the report dict of ``docs/quality-report.md``
(``report.json``) into ``index.html``, the overall report for the compact
secretariat, and ``contributors/<slug>.html``, one page per contributor that
can be sent to the contributor as it is.

The pages are pure functions of the report (same dict, same bytes) and are
self-contained: inline CSS and SVG, one small inline script that makes the
contributors and files tables sortable (a Content-Security-Policy allows that
script by its hash and nothing else: no fonts, images, styles or scripts from
anywhere), and relative links only. Every value of the report comes from
strangers (file names, messages, organisation names) and is escaped; a
contributor's ``slug`` is used as a file name only when it is made of
``[a-z0-9-]``. Every chart is an ``<svg role="img">`` with a ``<title>`` and has
its figures in a table beside it; the state of anything is written as text,
never shown by colour alone (colours are the Okabe–Ito colour-blind-safe
palette).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from expectations.quality import FREQUENCIES
from publish.formats import format_count, format_share, format_usd
from publish.formats import format_timestamp as _format_timestamp
from publish.formats import number as _number
from publish.html_strings import _esc
from publish.render import SITE_CSS as SITE_STYLE
from publish.site import href

INDEX = "index.html"
CONTRIBUTORS_DIR = "contributors"
DATA_DOCS = "data-docs/index.html"
DATA_DOCS_TEXT = "Great Expectations Data Docs: every expectation with its result"
REPORT_JSON = "report.json"
HISTORY_JSON = "history.json"

NA = '<span class="na">–</span>'
NUM = ' class="num"'
SLUG = re.compile(r"[a-z0-9-]{1,100}")
MAX_INDEX_FINDINGS = 5
FOLD_ROWS = 16  # a chart's figures table with more rows than this is folded

KINDS = {
    "publisher": ("IATI publisher", "IATI organisation identifier"),
    "country": ("Compact country", "Country code"),
    "partner": ("Development partner", "Partner organisation identifier"),
}
KIND_PLURALS = {
    "publisher": "IATI publishers",
    "country": "compact countries",
    "partner": "development partners",
}
SOURCES = {
    "iati": "IATI file",
    "country_report": "Country results report",
    "partner_submission": "Partner submission",
}

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
    "valid": ("✓", "valid", OKABE_ITO["green"]),
    "invalid": ("!", "invalid", OKABE_ITO["orange"]),
    "rejected": ("✗", "rejected", OKABE_ITO["vermillion"]),
}
STATE_RANK = {"rejected": 0, "invalid": 1, "valid": 2}
STATE_EXPLAINED = {
    "valid": "nothing was rejected and no schema error, codelist error or error-level "
    "expectation failure was found (warnings are allowed).",
    "invalid": "some of the data breaks a rule of severity error, but some of it was "
    "accepted into the release.",
    "rejected": "every file was rejected: none of the data is in the release.",
}
FRESHNESS: dict[str, tuple[str, str, str]] = {
    "up_to_date": ("✓", "up to date", OKABE_ITO["green"]),
    "due": ("◔", "due", OKABE_ITO["yellow"]),
    "overdue": ("◑", "overdue", OKABE_ITO["orange"]),
    "delinquent": ("✗", "delinquent", OKABE_ITO["vermillion"]),
    "unknown": ("?", "unknown", OKABE_ITO["grey"]),
}
FILE_STATUS: dict[str, tuple[str, str, str]] = {
    "ok": ("✓", "ok", OKABE_ITO["green"]),
    "partial": ("◐", "partly accepted", OKABE_ITO["orange"]),
    "rejected": ("✗", "rejected", OKABE_ITO["vermillion"]),
    "unchanged": ("=", "unchanged", OKABE_ITO["grey"]),
    "stale": ("⌛", "stale: fetch failed, last good copy used", OKABE_ITO["orange"]),
}
SEVERITY: dict[str, tuple[str, str, str]] = {
    "error": ("✗", "error", OKABE_ITO["vermillion"]),
    "warning": ("!", "warning", OKABE_ITO["orange"]),
}
CHECK: dict[str, tuple[str, str, str]] = {
    "passed": ("✓", "passed", OKABE_ITO["green"]),
    "failed": ("✗", "failed", OKABE_ITO["vermillion"]),
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

# (key, column heading, label, the things counted, what is missing: said of one, of several)
COMPLETENESS = (
    (
        "activities_with_sector",
        "Sector",
        "Activities with a sector",
        "activities",
        ("has no sector", "have no sector"),
    ),
    (
        "activities_with_recipient",
        "Recipient",
        "Activities with a recipient country or region",
        "activities",
        ("has no recipient country or region", "have no recipient country or region"),
    ),
    (
        "cd_activities_with_declaration",
        "Declaration",
        "CD activities with a partner declaration",
        "capacity-development activities",
        ("has no partner declaration", "have no partner declaration"),
    ),
    (
        "cd_activities_with_results",
        "CD results",
        "CD activities with an indicator that has a baseline and a target",
        "capacity-development activities",
        (
            "has no results indicator with both a baseline and a target",
            "have no results indicator with both a baseline and a target",
        ),
    ),
    (
        "results_with_baseline_and_target",
        "Baseline + target",
        "Results indicators with a baseline and a target",
        "results indicators",
        ("lacks a baseline or a target", "lack a baseline or a target"),
    ),
    (
        "transactions_with_value_date",
        "Value date",
        "Transactions with a value date",
        "transactions",
        ("has no value date", "have no value date"),
    ),
    (
        "transactions_with_usd",
        "USD",
        "Transactions converted to US dollars",
        "transactions",
        ("could not be converted to US dollars", "could not be converted to US dollars"),
    ),
)

#: The contributors table's column groups, which the reader picks between (kind, name,
#: state and freshness always show): 19 columns do not fit a laptop's screen, and a
#: squeezed table wraps names onto four lines.
COLUMN_GROUPS = (
    (
        "problems",
        "Records and errors",
        ("records", "quarantined", "schema-errors", "codelist-errors", "expectation-errors"),
    ),
    ("completeness", "Completeness", tuple(key.replace("_", "-") for key, *_ in COMPLETENESS)),
    ("flows", "Budgets and traceability", ("forward-budgets", "traceability")),
)


def _column_rules() -> str:
    """CSS that shows one group's columns while its radio button is checked. A browser
    without ``:has()`` ignores the rules and shows every column, which scrolls."""
    rules = []
    for group, _, _ in COLUMN_GROUPS:
        hidden = [key for other, _, keys in COLUMN_GROUPS if other != group for key in keys]
        cells = ",".join(f'[data-col="{key}"],[data-key="{key}"]' for key in hidden)
        rules.append(f"#contributors:has(#columns-{group}:checked) :is({cells}){{display:none}}")
    return "\n".join(rules)


PROBLEM_KINDS = {
    "rejected_file": "Rejected file",
    "schema": "XML Schema",
    "codelist": "Codelist",
    "quarantine": "Quarantined records",
    "expectation": "Expectation",
    "freshness": "Freshness",
}

# Chart geometry in SVG user units (the SVG scales with the page).
CHART_WIDTH = 720
LINE_STYLES = (  # (colour, dash pattern, marker): colour is never the only difference
    (OKABE_ITO["blue"], "", "circle"),
    (OKABE_ITO["vermillion"], "7 4", "square"),
    (OKABE_ITO["purple"], "2 3", "triangle"),
    (OKABE_ITO["orange"], "10 3 2 3", "diamond"),
)

SORT_SCRIPT = """(function(){"use strict";
function key(row,i){var c=row.cells[i];if(!c){return "";}var v=c.getAttribute("data-sort");
return v===null?c.textContent.trim().toLowerCase():v;}
function sortBy(table,i,desc){var head=table.tHead.rows[0].cells;
var numeric=head[i].getAttribute("data-type")==="number";var body=table.tBodies[0];
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a,i),y=key(b,i);if(x===y){return 0;}
if(x===""){return 1;}if(y===""){return -1;}
var r=numeric?parseFloat(x)-parseFloat(y):x.localeCompare(y);return desc?-r:r;});
rows.forEach(function(r){body.appendChild(r);});
for(var j=0;j<head.length;j++){
if(j===i){head[j].setAttribute("aria-sort",desc?"descending":"ascending");}else{head[j].removeAttribute("aria-sort");}}
table.setAttribute("data-sorted",head[i].getAttribute("data-key")+"-"+(desc?"desc":"asc"));}
function setup(table){var head=table.tHead.rows[0].cells;
Array.prototype.forEach.call(head,function(th,i){var name=th.getAttribute("data-key");
if(!name){return;}
var b=document.createElement("button");b.type="button";b.className="sort";
while(th.firstChild){b.appendChild(th.firstChild);}th.appendChild(b);
b.addEventListener("click",function(){var now=th.getAttribute("aria-sort");
var desc=now?now==="ascending":th.getAttribute("data-type")==="number";sortBy(table,i,desc);
if(table.id==="contributors-table"&&window.history&&history.replaceState){
try{history.replaceState(null,"","#sort="+name+"-"+(desc?"desc":"asc"));}catch(e){}}});});
table.classList.add("js-sortable");}
Array.prototype.forEach.call(document.querySelectorAll("table.sortable"),setup);
var m=/^#sort=([a-z0-9-]+)-(asc|desc)$/.exec(window.location.hash);
var t=document.getElementById("contributors-table");
if(m&&t){Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
if(th.getAttribute("data-key")===m[1]){sortBy(t,i,m[2]==="desc");}});}
window.addEventListener("beforeprint",function(){
Array.prototype.forEach.call(document.querySelectorAll("details"),function(d){d.open=true;});});
})();"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)

STYLE = (
    SITE_STYLE
    + _column_rules()
    + """
main{max-width:1280px}
.columns{border:0;padding:0;margin:0 0 8px;display:flex;flex-wrap:wrap;gap:4px 16px;
  align-items:center}
.columns legend{float:left;padding:0;margin-right:4px;font-weight:600}
.columns label{white-space:nowrap}
#contributors-table th,#contributors-table td{padding:6px}
#contributors-table th[data-col="contributor"]{min-width:14em}
header .facts{margin-top:10px}
.back{margin:16px 0 0;font-size:.92rem}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin:0}
.tiles h3{grid-column:1/-1;margin:.6em 0 0;font-size:1rem}
.tile{border-radius:8px;padding:8px 12px;background:#f0fdf4;border:1px solid #bbf7d0}
.tile.problem{background:#fef2f2;border-color:#fecaca}
.tile.neutral{background:var(--bg);border-color:var(--line)}
.tile dt{font-size:.85rem;color:var(--muted)}
.tile dd{margin:0;font-size:1.3rem;font-weight:700;font-variant-numeric:tabular-nums}
.tile.problem dd{color:var(--warn)}
.badge-state{display:inline-block;white-space:nowrap;border-radius:999px;padding:0 8px;
  font-size:.85rem;font-weight:600;border:1px solid;border-left-width:5px;background:#fff}
.is-valid,.is-up_to_date,.is-ok,.is-passed{background:#e6f5ef;border-color:#009E73;color:#00513a}
.is-invalid,.is-overdue,.is-partial,.is-warning{background:#fdf3dc;border-color:#E69F00;
  color:#6b4a00}
.is-due{background:#fdfbe0;border-color:#b8ad00;color:#4d4700}
.is-rejected,.is-delinquent,.is-error,.is-failed{background:#fbe9df;border-color:#D55E00;color:#7a3500}
.is-unknown,.is-unchanged{background:#f1f1f1;border-color:#8C8C8C;color:#3d3d3d}
.of{display:block;color:var(--muted);font-size:.78rem;white-space:nowrap}
.age{display:block;color:var(--muted);font-size:.78rem;white-space:nowrap}
.ref{display:block;color:var(--muted);font-size:.8rem}
.reason{display:block;font-weight:700;color:var(--warn)}
.callout{border-left:5px solid var(--warn);background:#fef2f2;padding:10px 14px;border-radius:6px;
  margin:10px 0}
.callout h3{margin-top:0}
.summary li{margin:.3em 0}
ol.findings{margin:0;padding-left:1.2em;font-size:.85rem;min-width:18em}
.line{font-weight:700;white-space:nowrap}
code{font-size:.85rem;overflow-wrap:break-word}
th[data-col=file]{min-width:12em}
table.sortable th button.sort{font:inherit;font-weight:700;background:none;border:0;padding:0;
  margin:0;color:inherit;cursor:pointer;text-align:inherit}
table.sortable th button.sort::after{content:"\\00a0↕";color:var(--muted)}
table.sortable th[aria-sort=ascending] button.sort::after{content:"\\00a0▲";color:var(--ink)}
table.sortable th[aria-sort=descending] button.sort::after{content:"\\00a0▼";color:var(--ink)}
tr.current{background:#eef6ff}
.chart-pair{display:block}
@media (min-width:900px){.chart-pair{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);
  gap:16px;align-items:start}}
svg.chart{min-width:480px;max-width:100%}
svg.chart text.axis{fill:#475569;font-size:12px}
svg.chart text.title{font-weight:600}
table.chart-data{font-size:.85rem}
dl.facts dd .badge-state{font-weight:600}
@media (max-width:640px){
  table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
  table.stack,table.stack tbody,table.stack tr,table.stack th,table.stack td{display:block}
  table.stack tr{border-bottom:2px solid var(--line);padding:6px 0}
  table.stack th,table.stack td{border:0;padding:2px 0;text-align:left}
  table.stack td[data-label]::before{content:attr(data-label) ": ";font-weight:600;
    color:var(--muted);font-size:.85rem}
  table.stack .ref{display:inline}
}
@media print{
  nav,.back,button.sort::after{display:none!important}
  body{background:#fff;font-size:11pt}
  main{max-width:none;padding:0}
  section{border:0;padding:0;margin:0 0 16px;break-inside:auto}
  .scroll{overflow:visible}
  table{font-size:9pt;page-break-inside:auto}
  thead{display:table-header-group}
  tr,figure,svg{break-inside:avoid;page-break-inside:avoid}
  svg.chart{min-width:0}
  .chart-pair{display:block}
  a{color:inherit}
  a[href]:not([href^="#"])::after{content:" (" attr(href) ")";font-size:.8em;color:#475569}
  table.sortable th button.sort{font-weight:700}
}
"""
)


# ---------------------------------------------------------------- formatting


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _mappings(value: object) -> list[Mapping[str, Any]]:
    return [item for item in _list(value) if isinstance(item, Mapping)]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _sort_value(value: float | None) -> str:
    return "" if value is None else repr(value)


def _time(value: object) -> str:
    if value is None or _text(value) == "":
        return '<span class="na">–</span>'
    return f'<time datetime="{_esc(value)}">{_esc(_format_timestamp(value))}</time>'


def _plural(count: float | None, singular: str, plural: str) -> str:
    return singular if count == 1 else plural


def _counted(value: object, noun: str) -> str:
    """``1 error``, ``3 errors``, ``– errors`` when missing."""
    number = _number(value)
    return f"{format_count(number)} {noun if number == 1 else noun + 's'}"


def _days(value: object) -> str:
    number = _number(value)
    if number is None:
        return "–"
    return f"{format_count(number)} {_plural(round(number), 'day', 'days')}"


def safe_slug(value: object) -> str | None:
    """The contributor's slug when it is safe as a file name (``[a-z0-9-]``), else None."""
    text = value if isinstance(value, str) else ""
    return text if SLUG.fullmatch(text) and text.strip("-") else None


def _badge(group: str, value: object, suffix: str = "") -> str:
    """A state written as a symbol and a word; the colour only repeats what the text says."""
    known = BADGES[group]
    key = value if isinstance(value, str) and value in known else None
    if key is None:
        text = "unknown" if value is None or _text(value) == "" else _text(value)
        return (
            f'<span class="badge-state is-unknown" data-{group}="{_esc(value)}">'
            f'<span aria-hidden="true">?</span> {_esc(text)}{_esc(suffix)}</span>'
        )
    symbol, label, _ = known[key]
    return (
        f'<span class="badge-state is-{key}" data-{group}="{key}">'
        f'<span aria-hidden="true">{symbol}</span> {_esc(label)}{_esc(suffix)}</span>'
    )


def _link(target: str, text: str, **attributes: object) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{_esc(v)}"' for key, v in attributes.items())
    return f'<a href="{_esc(target)}"{extra}>{_esc(text)}</a>'


def _section(section_id: str, title: str, body: str) -> str:
    return (
        f'<section id="{_esc(section_id)}" aria-labelledby="{_esc(section_id)}-h">'
        f'<h2 id="{_esc(section_id)}-h">{_esc(title)}</h2>{body}</section>'
    )


def _scroll(table: str) -> str:
    return f'<div class="scroll">{table}</div>'


def _num_cell(value: object, *, key: str | None = None, problem: bool = False) -> str:
    number = _number(value)
    attributes = f' data-sort="{_sort_value(number)}"'
    if key:
        attributes += f' data-col="{_esc(key)}"'
    cls = "num problem-cell" if problem and number else "num"
    return f'<td class="{cls}"{attributes}>{_esc(format_count(number))}</td>'


def _ratio(block: Mapping[str, Any], numerator: str, denominator: str) -> dict[str, Any]:
    """A share item ({share, numerator, denominator}) from a block with other key names."""
    if not block:
        return {}
    return {
        "share": block.get("share"),
        "numerator": block.get(numerator),
        "denominator": block.get(denominator),
    }


def _share_cell(item: object, key: str | None = None) -> str:
    """A share with its numerator and denominator; ``n/a`` when there was nothing to count."""
    entry = _mapping(item)
    share = _number(entry.get("share"))
    numerator, denominator = _number(entry.get("numerator")), _number(entry.get("denominator"))
    col = f' data-col="{_esc(key)}"' if key else ""
    if not entry:
        return f'<td class="num na" data-sort=""{col}>–</td>'
    shown = "n/a" if share is None else format_share(share)
    title = (
        "not applicable: nothing to count"
        if share is None
        else f"{format_count(numerator)} of {format_count(denominator)}"
    )
    return (
        f'<td class="num" data-sort="{_sort_value(share)}"{col} title="{_esc(title)}">'
        f'{_esc(shown)} <span class="of">{_esc(format_count(numerator))} of '
        f"{_esc(format_count(denominator))}</span></td>"
    )


def _head(*columns: tuple[str, str, str]) -> str:
    """Header cells ``(key, label, type)``; a key makes the column sortable by the script."""
    cells = []
    for key, label, kind in columns:
        cls = ' class="num"' if kind == "number" else ""
        data = f' data-key="{_esc(key)}" data-type="{kind}"' if key else ""
        cells.append(f'<th scope="col"{cls}{data}>{_esc(label)}</th>')
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


# ------------------------------------------------------------- report access


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


def _example(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    example = entry.get("example")
    if isinstance(example, Mapping):
        return example
    examples = _mappings(entry.get("examples"))
    return examples[0] if examples else entry


# --------------------------------------------------------------------- charts


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 4, 6, 8 × 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _ticks(maximum: float) -> list[float]:
    return [0.0, maximum] if maximum <= 1 else [0.0, maximum / 2, maximum]


def _svg(chart_id: str, label: str, height: float, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_esc(chart_id)}" '
        f'viewBox="0 0 {CHART_WIDTH} {height:.0f}" role="img" aria-label="{_esc(label)}">'
        f"<title>{_esc(label)}</title>{''.join(body)}</svg>"
    )


def _data_table(
    chart_id: str, caption: str, columns: Sequence[str], rows: Sequence[str], text_columns: int = 1
) -> str:
    """The chart's figures: ``rows`` are ``<tr>`` strings, the first column a row header.

    The first ``text_columns`` columns are text, the others numbers (aligned right).
    """
    head = "".join(
        f'<th scope="col"{"" if index < text_columns else NUM}>{_esc(label)}</th>'
        for index, label in enumerate(columns)
    )
    return (
        f'<table class="chart-data" data-chart="{_esc(chart_id)}"><caption>{_esc(caption)}'
        f"</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _figure(chart_id: str, caption: str, svg: str, table: str, note: str = "") -> str:
    """A chart with its figures beside it (below it on narrow screens).

    A long table (many runs) is folded in a ``<details>`` that opens for printing.
    """
    note_html = f'<p class="note">{note}</p>' if note else ""
    if table.count("<tr") > FOLD_ROWS:
        table = f"<details><summary>The figures of the chart</summary>{table}</details>"
    return (
        f'<figure class="chart-figure" id="{_esc(chart_id)}-figure">'
        f"<figcaption>{_esc(caption)}</figcaption>{note_html}"
        f'<div class="chart-pair"><div class="scroll">{svg}</div>'
        f'<div class="scroll">{table}</div></div></figure>'
    )


def _legend(items: Sequence[tuple[str, str, str, str]], y: float = 16) -> str:
    """Legend entries ``(colour, text, dash, marker)``; a line sample when dash/marker is set."""
    parts = []
    x = 56.0
    for colour, text, dash, marker in items:
        if marker:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{x:.0f}" y1="{y - 4:.0f}" x2="{x + 24:.0f}" y2="{y - 4:.0f}" '
                f'stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
                + _marker(marker, x + 12, y - 4, colour)
            )
            x += 30
        else:
            parts.append(
                f'<rect x="{x:.0f}" y="{y - 11:.0f}" width="12" height="12" rx="2" '
                f'fill="{colour}" stroke="#1f2937" stroke-width="0.5"/>'
            )
            x += 18
        parts.append(f'<text x="{x:.0f}" y="{y:.0f}" class="legend">{_esc(text)}</text>')
        x += 18 + 7.2 * len(text)
    return "".join(parts)


def _marker(kind: str, x: float, y: float, colour: str, tooltip: str = "", **data: object) -> str:
    attributes = "".join(f' data-{key}="{_esc(value)}"' for key, value in data.items())
    title = f"<title>{_esc(tooltip)}</title>" if tooltip else ""
    common = f'fill="{colour}" stroke="#fff" stroke-width="1"{attributes}'
    if kind == "square":
        shape = f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" {common}>'
        return f"{shape}{title}</rect>"
    if kind == "triangle":
        points = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
        return f'<polygon points="{points}" {common}>{title}</polygon>'
    if kind == "diamond":
        points = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{points}" {common}>{title}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" {common}>{title}</circle>'


def _axes(
    left: float, top: float, bottom: float, maximum: float, runs: Sequence[str], slot: float
) -> list[str]:
    """Horizontal grid lines with their values, and the run labels under the plot."""
    parts = []
    height = bottom - top
    for tick in _ticks(maximum):
        y = bottom - height * tick / maximum
        parts.append(
            f'<line x1="{left:.0f}" y1="{y:.1f}" x2="{CHART_WIDTH - 16}" y2="{y:.1f}" '
            f'stroke="#e2e8f0"/><text x="{left - 8:.0f}" y="{y + 4:.1f}" class="axis" '
            f'text-anchor="end">{_esc(format_count(tick))}</text>'
        )
    every = max(1, math.ceil(len(runs) * 84 / (CHART_WIDTH - left - 16)))
    for index, run in enumerate(runs):
        if index % every and index != len(runs) - 1:
            continue
        x = left + slot * (index + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 20:.0f}" class="axis" text-anchor="middle">'
            f"{_esc(run)}</text>"
        )
    return parts


def chart_columns(
    chart_id: str,
    label: str,
    runs: Sequence[str],
    series: Sequence[tuple[str, str, str, Sequence[float | None]]],
) -> str:
    """Stacked columns, one per run; ``series`` are ``(key, name, colour, values)``."""
    left, top, bottom, height = 56.0, 32.0, 214.0, 250.0
    totals = [
        sum(_number(values[i]) or 0.0 for _, _, _, values in series) for i in range(len(runs))
    ]
    maximum = _nice_max(max(totals, default=0.0))
    slot = (CHART_WIDTH - left - 16) / max(len(runs), 1)
    width = min(48.0, slot * 0.6)
    body = (
        [_legend([(colour, name, "", "") for _, name, colour, _ in series])]
        if len(series) > 1
        else []
    )
    body += _axes(left, top, bottom, maximum, runs, slot)
    for index, run in enumerate(runs):
        x = left + slot * (index + 0.5) - width / 2
        base = bottom
        for key, name, colour, values in series:
            value = _number(values[index])
            if not value:
                continue
            size = (bottom - top) * value / maximum
            base -= size
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" '
                f'height="{size:.1f}" fill="{colour}" stroke="#fff" stroke-width="1" '
                f'data-series="{_esc(key)}" data-run="{index}" data-value="{_sort_value(value)}">'
                f"<title>{_esc(run)}: {_esc(format_count(value))} {_esc(name)}</title></rect>"
            )
        body.append(
            f'<text x="{x + width / 2:.1f}" y="{base - 6:.1f}" class="value" '
            f'text-anchor="middle">{_esc(format_count(totals[index]))}</text>'
        )
    return _svg(chart_id, label, height, body)


def chart_lines(
    chart_id: str,
    label: str,
    runs: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
) -> str:
    """Lines over runs; ``series`` are ``(key, name, values)``, each with its own dash and marker.

    A missing value breaks the line instead of pretending it was 0.
    """
    left, top, bottom, height = 56.0, 32.0, 214.0, 250.0
    values_all = [_number(v) or 0.0 for _, _, values in series for v in values]
    maximum = _nice_max(max(values_all, default=0.0))
    slot = (CHART_WIDTH - left - 16) / max(len(runs), 1)
    styles = [LINE_STYLES[i % len(LINE_STYLES)] for i in range(len(series))]
    body = [
        _legend(
            [
                (colour, name, dash, marker)
                for (_, name, _), (colour, dash, marker) in zip(series, styles, strict=True)
            ]
        )
    ]
    body += _axes(left, top, bottom, maximum, runs, slot)
    for (key, name, values), (colour, dash, marker) in zip(series, styles, strict=True):
        points: list[tuple[float, float] | None] = []
        for index in range(len(runs)):
            value = _number(values[index]) if index < len(values) else None
            if value is None:
                points.append(None)
                continue
            points.append((left + slot * (index + 0.5), bottom - (bottom - top) * value / maximum))
        segments: list[list[tuple[float, float]]] = [[]]
        for point in points:
            if point is None:
                segments.append([])
            else:
                segments[-1].append(point)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for segment in segments:
            if len(segment) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
                body.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.5"{dash_attr} data-series="{_esc(key)}"/>'
                )
        for index, point in enumerate(points):
            if point is None:
                continue
            value = _number(values[index])
            body.append(
                _marker(
                    marker,
                    point[0],
                    point[1],
                    colour,
                    f"{runs[index]}: {format_count(value)} {name}",
                    series=key,
                    run=index,
                    value=_sort_value(value),
                )
            )
    return _svg(chart_id, label, height, body)


def chart_bars(
    chart_id: str, label: str, items: Sequence[tuple[str, str, float | None, str]]
) -> str:
    """Horizontal bars ``(key, label, value, colour)``, each labelled with its value."""
    label_width = 16.0 + 7.8 * max((len(text) for _, text, _, _ in items), default=2)
    label_width = min(label_width, CHART_WIDTH * 0.45)
    value_width, row_height, top = 70.0, 30.0, 6.0
    span = CHART_WIDTH - label_width - value_width
    maximum = max([_number(value) or 0.0 for _, _, value, _ in items] or [0.0])
    body = []
    for index, (key, text, value, colour) in enumerate(items):
        y = top + index * row_height
        number = _number(value)
        width = 0.0 if not number or maximum <= 0 else max(span * number / maximum, 1.5)
        shown = format_count(number)
        body.append(
            f'<text x="{label_width - 10:.0f}" y="{y + 17:.0f}" class="label" '
            f'text-anchor="end">{_esc(text)}</text>'
            f'<rect class="bar" x="{label_width:.0f}" y="{y + 4:.1f}" width="{width:.1f}" '
            f'height="18" rx="2" fill="{colour}" stroke="#1f2937" stroke-width="0.5" '
            f'data-key="{_esc(key)}" data-value="{_sort_value(number)}">'
            f"<title>{_esc(text)}: {_esc(shown)}</title></rect>"
            f'<text x="{label_width + width + 6:.1f}" y="{y + 17.5:.1f}" class="value">'
            f"{_esc(shown)}</text>"
        )
    return _svg(chart_id, label, top + row_height * len(items) + 6, body)


# ------------------------------------------------------------------ shared parts


def _tile(key: str, label: str, value: object, *, bad: bool = False, neutral: bool = False) -> str:
    number = _number(value)
    cls = "tile neutral" if neutral else ("tile problem" if bad and number else "tile")
    return (
        f'<div class="{cls}"><dt>{_esc(label)}</dt>'
        f'<dd data-figure="{_esc(key)}" data-value="{_sort_value(number)}">'
        f"{_esc(format_count(number))}</dd></div>"
    )


def _completeness_table(figures: Mapping[str, Any], table_id: str) -> str:
    block = _mapping(figures.get("completeness"))
    rows = []
    for key, _, label, _, _ in COMPLETENESS:
        item = _mapping(block.get(key))
        if not item:
            continue
        share = _number(item.get("share"))
        fill = 0.0 if share is None else min(max(share, 0.0), 1.0) * 100
        shown = "n/a (nothing to count)" if share is None else format_share(share)
        meter = (
            ""
            if share is None
            else '<span class="meter" aria-hidden="true">'
            f'<span style="width:{fill:.1f}%"></span></span>'
        )
        rows.append(
            f'<tr data-item="{key}"><th scope="row">{_esc(label)}</th>'
            f'<td class="num" data-part="numerator">{_esc(format_count(item.get("numerator")))}'
            f'</td><td class="num" data-part="denominator">'
            f"{_esc(format_count(item.get('denominator')))}</td>"
            f'<td class="num" data-part="share">{meter}{_esc(shown)}</td></tr>'
        )
    if not rows:
        return '<p class="empty">No completeness figures in this report.</p>'
    return _scroll(
        f'<table id="{_esc(table_id)}" class="metrics"><thead><tr><th scope="col">Field</th>'
        '<th scope="col" class="num">With it</th><th scope="col" class="num">Of</th>'
        f'<th scope="col" class="num">Share</th></tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table>"
    )


def _forward_table(figures: Mapping[str, Any], table_id: str) -> str:
    rows = []
    for entry in _forward_years(figures):
        rows.append(
            f'<tr data-year="{_esc(entry.get("year"))}"><th scope="row">'
            f"{_esc(entry.get('year'))}</th>"
            f'<td class="num">{_esc(format_count(entry.get("activities_with_budget")))}</td>'
            f'<td class="num">{_esc(format_count(entry.get("current_activities")))}</td>'
            f'<td class="num">{_esc(_share_or_na(entry.get("share")))}</td>'
            f'<td class="num">{_esc(format_usd(entry.get("value_usd")))}</td></tr>'
        )
    if not rows:
        return '<p class="empty">No forward budget figures in this report.</p>'
    return (
        '<p class="note">Current activities are those not finished or cancelled whose end date '
        "is absent or not before this year. A year counts when an activity has a budget whose "
        "period overlaps it (the IATI Dashboard's forward-looking indicator).</p>"
        + _scroll(
            f'<table id="{_esc(table_id)}" class="metrics"><thead><tr>'
            '<th scope="col">Year</th><th scope="col" class="num">Activities with a budget</th>'
            '<th scope="col" class="num">Current activities</th>'
            '<th scope="col" class="num">Share</th>'
            '<th scope="col" class="num">Budgeted (USD)</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    )


def _source_label(entry: Mapping[str, Any]) -> str:
    source = _text(entry.get("source"))
    return SOURCES.get(source, source)


def _share_or_na(value: object) -> str:
    return "n/a" if _number(value) is None else format_share(value)


def _traceability_table(figures: Mapping[str, Any], table_id: str) -> str:
    block = _mapping(figures.get("traceability"))
    if not block:
        return '<p class="empty">No traceability figures in this report.</p>'
    return (
        '<p class="note">Incoming funds (transaction types 1, 11 and 13) that name the '
        "funder's activity (<code>provider-activity-id</code>), so the money can be traced "
        "back to where it came from.</p>"
        + _scroll(
            f'<table id="{_esc(table_id)}" class="metrics"><thead><tr><th scope="col"></th>'
            '<th scope="col" class="num">Traced</th><th scope="col" class="num">Incoming</th>'
            '<th scope="col" class="num">Share</th></tr></thead><tbody>'
            '<tr data-item="count"><th scope="row">Transactions</th>'
            f'<td class="num">{_esc(format_count(block.get("traced_transactions")))}</td>'
            f'<td class="num">{_esc(format_count(block.get("incoming_transactions")))}</td>'
            f'<td class="num">{_esc(_share_or_na(block.get("share")))}</td></tr>'
            '<tr data-item="value"><th scope="row">Value (USD)</th>'
            f'<td class="num">{_esc(format_usd(block.get("traced_value_usd")))}</td>'
            f'<td class="num">{_esc(format_usd(block.get("incoming_value_usd")))}</td>'
            f'<td class="num">{_esc(_share_or_na(block.get("value_share")))}</td></tr>'
            "</tbody></table>"
        )
    )


def _quarantine_table(figures: Mapping[str, Any], table_id: str) -> str:
    rows = []
    for entry in _by_rule(figures):
        example = _example(entry)
        place = example.get("place") or example.get("source_ref") or example.get("where")
        rows.append(
            f'<tr data-rule="{_esc(entry.get("rule"))}"><th scope="row"><code>'
            f"{_esc(entry.get('rule'))}</code></th>"
            f'<td data-label="Severity">{_badge("severity", entry.get("severity"))}</td>'
            f'<td class="num" data-label="Rows">{_esc(format_count(_rule_rows(entry)))}</td>'
            f'<td data-label="File">{_esc(example.get("source_file"))}</td>'
            f'<td data-label="Where"><code>{_esc(place)}</code></td>'
            f'<td data-label="Value"><code>{_esc(example.get("value"))}</code></td>'
            f'<td data-label="Message">{_esc(example.get("message"))}</td></tr>'
        )
    if not rows:
        return '<p class="empty">No record was quarantined.</p>'
    return _scroll(
        f'<table id="{_esc(table_id)}" class="stack"><thead><tr><th scope="col">Rule</th>'
        '<th scope="col">Severity</th><th scope="col" class="num">Rows</th>'
        '<th scope="col">Example: file</th><th scope="col">Where</th><th scope="col">Value</th>'
        f'<th scope="col">Message</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _finding_item(finding: Mapping[str, Any]) -> str:
    line = _number(finding.get("line"))
    where = (
        f'<span class="line">line {_esc(format_count(line))}</span>'
        if line is not None
        else '<span class="line">whole file</span>'
    )
    return (
        f'<li data-line="{_sort_value(line)}">{where} · {_esc(finding.get("severity"))} · '
        f"<code>{_esc(finding.get('rule'))}</code>: {_esc(finding.get('message'))}</li>"
    )


def _findings_table(findings: Sequence[Mapping[str, Any]], table_id: str) -> str:
    rows = []
    for finding in findings:
        line = _number(finding.get("line"))
        rows.append(
            f'<tr data-line="{_sort_value(line)}"><td class="num line" data-label="Line">'
            f"{_esc(format_count(line) if line is not None else 'whole file')}</td>"
            f'<td data-label="Severity">{_badge("severity", finding.get("severity"))}</td>'
            f'<td data-label="Rule"><code>{_esc(finding.get("rule"))}</code></td>'
            f'<td data-label="Message">{_esc(finding.get("message"))}</td>'
            f'<td data-label="Value"><code>{_esc(finding.get("value"))}</code></td>'
            f'<td data-label="Where"><code>{_esc(finding.get("path"))}</code></td>'
            f'<td data-label="Activity">{_esc(finding.get("activity_id"))}</td></tr>'
        )
    return _scroll(
        f'<table id="{_esc(table_id)}" class="findings stack"><thead><tr>'
        '<th scope="col" class="num">Line</th><th scope="col">Severity</th>'
        '<th scope="col">Rule</th><th scope="col">Message</th><th scope="col">Value</th>'
        '<th scope="col">Where in the file</th><th scope="col">Activity</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _run_label(entry: Mapping[str, Any]) -> str:
    return _text(entry.get("as_of") or _format_timestamp(entry.get("generated_at")) or "?")


def _thresholds_table(frequency: object) -> str:
    rows = []
    for name, (due, overdue, delinquent) in HDX_THRESHOLDS.items():
        current = name == frequency
        marker = ' class="current"' if current else ""
        yours = ' <strong class="yours">(expected of you)</strong>' if current else ""
        up_to = "0 days" if due == 1 else f"0–{due - 1} days"
        rows.append(
            f'<tr{marker} data-frequency="{name}"><th scope="row">{name}{yours}</th>'
            f'<td class="num">{up_to}</td><td class="num">{due}</td>'
            f'<td class="num">{overdue}</td><td class="num">{delinquent}</td></tr>'
        )
    return _scroll(
        '<table id="freshness-thresholds" class="metrics"><caption>Data freshness thresholds '
        "(as the Humanitarian Data Exchange computes them), in days since the last update"
        '</caption><thead><tr><th scope="col">Expected frequency</th>'
        '<th scope="col" class="num">Up to date</th><th scope="col" class="num">Due from</th>'
        '<th scope="col" class="num">Overdue from</th>'
        '<th scope="col" class="num">Delinquent from</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _freshness_sentence(timeliness: Mapping[str, Any]) -> str:
    """Plain words for the freshness state and the thresholds that apply."""
    frequency = _text(timeliness.get("frequency"))
    state = _text(timeliness.get("state"))
    thresholds = HDX_THRESHOLDS.get(frequency)
    if state == "unknown" or (
        _number(timeliness.get("age_days")) is None and state not in FRESHNESS
    ):
        return "No update date is known, so freshness cannot be judged."
    if thresholds is None:
        return f"Expected update frequency: {_esc(frequency or 'not set')}."
    due, overdue, delinquent = thresholds
    up_to = "the same day" if due == 1 else f"0–{due - 1} days"
    return (
        f"With <strong>{_esc(frequency)}</strong> updates expected, data is up to date for "
        f"{up_to} after its last update, due from {due} days, overdue from {overdue} days and "
        f"delinquent from {delinquent} days."
    )


def _page(
    title: str,
    description: str,
    body: str,
    *,
    root: str,
    nav: Sequence[tuple[str, str]],
) -> bytes:
    nav_html = (
        '<nav aria-label="Sections"><ul>'
        + "".join(f'<li><a href="#{key}">{_esc(text)}</a></li>' for key, text in nav)
        + "</ul></nav>"
    )
    footer = (
        f"<footer>Generated by cdcompact from {_link(root + REPORT_JSON, 'report.json')} "
        f"(the trend: {_link(root + HISTORY_JSON, 'history.json')}).</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(CSP)}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_esc(title)}</title>"
        f'<meta name="description" content="{_esc(description)}">'
        '<meta name="generator" content="cdcompact">'
        f"<style>{STYLE}</style></head><body><main>"
        + body.replace("<!--nav-->", nav_html, 1)
        + footer
        + f"</main><script>{SORT_SCRIPT}</script></body></html>\n"
    ).encode()


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


def _facts(items: Sequence[tuple[str, str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f'<div><dt>{_esc(k)}</dt><dd id="{_esc(i)}">{v}</dd></div>' for i, k, v in items)
        + "</dl>"
    )


def _release_fact(report: Mapping[str, Any], release: str | None) -> str:
    version = report.get("release")
    if version is None or _text(version) == "":
        text = "not in a release yet"
        return f'<span class="na">{text}</span>' if release is None else _link(release, text)
    return _link(release, _text(version)) if release else _esc(version)


def _links_paragraph(data_docs: bool, release: str | None, report: Mapping[str, Any]) -> str:
    links = []
    if data_docs:
        links.append(_link(DATA_DOCS, DATA_DOCS_TEXT, id="data-docs-link"))
    if release:
        version = _text(report.get("release")) or "the release"
        links.append(_link(release, f"The release holding this data ({version})", id="release"))
    if not links:
        return ""
    return '<ul class="documents">' + "".join(f"<li>{link}</li>" for link in links) + "</ul>"


# -------------------------------------------------------------------- index


def _header_index(report: Mapping[str, Any], release: str | None) -> str:
    return (
        '<header><p class="kicker">Data quality · Capacity Development Compact</p>'
        '<h1 id="title">Data-quality report</h1>'
        + _facts(
            [
                ("as-of", "As of", f"<time>{_esc(report.get('as_of'))}</time>"),
                ("generated-at", "Generated", _time(report.get("generated_at"))),
                ("release-version", "Release", _release_fact(report, release)),
            ]
        )
        + '<p class="note">How good the compact\'s data is, contributor by contributor: what was '
        "rejected or set aside and why, which fields the metrics need are missing, and how "
        "fresh each contributor's data is. Each contributor has a page of its own that can be "
        "sent to it as it is.</p><!--nav--></header>"
    )


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


def _unaccounted(validity: Mapping[str, Any]) -> int | None:
    """Records read minus accepted minus quarantined: 0 when every record is accounted for."""
    counts = [
        _number(validity.get(k)) for k in ("records", "records_accepted", "records_quarantined")
    ]
    if any(c is None for c in counts):
        return None
    records, accepted, quarantined = (int(c or 0) for c in counts)
    return records - accepted - quarantined


def _tiles(report: Mapping[str, Any]) -> str:
    contributors = _contributors(report)
    validity = _validity(_figures({"figures": report.get("overall")}))
    states = _state_counts(contributors)
    fresh = _freshness_counts(contributors)
    tiles = [
        "<h3>Contributors by state</h3>",
        _tile("contributors", "Contributors", len(contributors), neutral=True),
        _tile("state_valid", "Valid", states["valid"]),
        _tile("state_invalid", "Invalid", states["invalid"], bad=True),
        _tile("state_rejected", "Rejected", states["rejected"], bad=True),
        "<h3>Files and records</h3>",
        _tile("files", "Files", validity.get("files"), neutral=True),
        _tile("files_rejected", "Files rejected", validity.get("files_rejected"), bad=True),
        _tile("files_stale", "Files stale", validity.get("files_stale"), bad=True),
        _tile("records", "Records read", validity.get("records"), neutral=True),
        _tile("records_accepted", "Records accepted", validity.get("records_accepted")),
        _tile(
            "records_quarantined",
            "Records quarantined",
            validity.get("records_quarantined"),
            bad=True,
        ),
        _tile(
            "records_unaccounted",
            "Records neither accepted nor quarantined",
            _unaccounted(validity),
            bad=True,
        ),
        _tile("schema_errors", "Schema errors", validity.get("schema_errors"), bad=True),
        _tile("codelist_errors", "Codelist errors", validity.get("codelist_errors"), bad=True),
        _tile(
            "expectation_errors", "Expectation errors", validity.get("expectation_errors"), bad=True
        ),
        "<h3>Freshness</h3>",
        _tile("fresh_up_to_date", "Up to date", fresh["up_to_date"]),
        _tile("fresh_due", "Due", fresh["due"], bad=True),
        _tile("fresh_overdue", "Overdue", fresh["overdue"], bad=True),
        _tile("fresh_delinquent", "Delinquent", fresh["delinquent"], bad=True),
    ]
    if fresh["unknown"]:
        tiles.append(_tile("fresh_unknown", "No date known", fresh["unknown"], bad=True))
    note = (
        '<p class="note">Valid: nothing rejected and no error-level finding (warnings allowed). '
        "Invalid: some data breaks a rule of severity error but some was accepted. Rejected: "
        "every file rejected. Freshness follows the Humanitarian Data Exchange's thresholds "
        "for the update frequency expected of each kind of contributor.</p>"
    )
    return _section("figures", "Headline figures", f'<dl class="tiles">{"".join(tiles)}</dl>{note}')


def _contributor_label(contributor: Mapping[str, Any]) -> str:
    return _text(contributor.get("name") or contributor.get("ref") or contributor.get("id"))


def _kind_label(kind: object) -> str:
    return KINDS[kind][0] if isinstance(kind, str) and kind in KINDS else _text(kind)


def _forward_share(figures: Mapping[str, Any], as_of: object) -> Mapping[str, Any]:
    """The forward-budget entry of the ``as_of`` year (else the first year given)."""
    years = _forward_years(figures)
    year = _text(as_of)[:4]
    for entry in years:
        if _text(entry.get("year")) == year:
            return entry
    return years[0] if years else {}


def _column_picker() -> str:
    """Radio buttons for the contributors table's column groups (no script: CSS)."""
    options = [(group, label) for group, label, _ in COLUMN_GROUPS] + [("all", "All columns")]
    buttons = "".join(
        f'<label><input type="radio" name="contributor-columns" id="columns-{group}" '
        f'value="{group}"{" checked" if number == 0 else ""}> {_esc(label)}</label>'
        for number, (group, label) in enumerate(options)
    )
    return f'<fieldset class="columns"><legend>Show</legend>{buttons}</fieldset>'


def _contributors_table(report: Mapping[str, Any], pages: Mapping[str, str]) -> str:
    contributors = _contributors(report)
    if not contributors:
        return _section(
            "contributors", "Contributors", '<p class="empty">No contributor in this report.</p>'
        )
    as_of = report.get("as_of")
    rows = []
    for contributor in contributors:
        ident = _text(contributor.get("id"))
        figures = _figures(contributor)
        validity, timeliness = _validity(figures), _timeliness(figures)
        name = _contributor_label(contributor)
        slug = pages.get(ident)
        name_html = (
            _link(href(CONTRIBUTORS_DIR, f"{slug}.html"), name, data_contributor=ident)
            if slug
            else f'{_esc(name)} <span class="na">(no page)</span>'
        )
        ref = contributor.get("ref")
        ref_html = f' <span class="ref">{_esc(ref)}</span>' if ref and ref != name else ""
        state = validity.get("state")
        fresh = timeliness.get("state")
        age = _number(timeliness.get("age_days"))
        completeness = _mapping(figures.get("completeness"))
        forward = _forward_share(figures, as_of)
        trace = _mapping(figures.get("traceability"))
        cells = [
            f'<td data-col="kind">{_esc(_kind_label(contributor.get("kind")))}</td>',
            f'<th scope="row" data-col="contributor" data-sort="{_esc(name.lower())}">'
            f"{name_html}{ref_html}</th>",
            f'<td data-col="state" data-sort="{STATE_RANK.get(_text(state), "")}">'
            f"{_badge('state', state)}</td>",
            f'<td data-col="freshness" data-sort="{_sort_value(age)}">{_badge("freshness", fresh)}'
            f' <span class="age">{_esc(_days(age))}</span></td>',
            _num_cell(validity.get("records"), key="records"),
            _num_cell(validity.get("records_quarantined"), key="quarantined", problem=True),
            _num_cell(validity.get("schema_errors"), key="schema-errors", problem=True),
            _num_cell(validity.get("codelist_errors"), key="codelist-errors", problem=True),
            _num_cell(validity.get("expectation_errors"), key="expectation-errors", problem=True),
        ]
        cells += [
            _share_cell(completeness.get(key), key.replace("_", "-")) for key, *_ in COMPLETENESS
        ]
        cells.append(
            _share_cell(
                _ratio(forward, "activities_with_budget", "current_activities"), "forward-budgets"
            )
        )
        cells.append(
            _share_cell(
                _ratio(trace, "traced_transactions", "incoming_transactions"), "traceability"
            )
        )
        rows.append(
            f'<tr data-contributor="{_esc(ident)}" data-state="{_esc(state)}">{"".join(cells)}</tr>'
        )
    year = _text(as_of)[:4] or "this year"
    head = _head(
        ("kind", "Kind", "text"),
        ("contributor", "Contributor", "text"),
        ("state", "State", "number"),
        ("freshness", "Freshness", "number"),
        ("records", "Records", "number"),
        ("quarantined", "Quarantined", "number"),
        ("schema-errors", "Schema errors", "number"),
        ("codelist-errors", "Codelist errors", "number"),
        ("expectation-errors", "Expectation errors", "number"),
        *[(key.replace("_", "-"), heading, "number") for key, heading, *_ in COMPLETENESS],
        ("forward-budgets", f"Budget {year}", "number"),
        ("traceability", "Traceable", "number"),
    )
    note = (
        '<p class="note">Pick the columns to show below (All columns on a wide screen); click '
        "a column heading to sort (state sorts worst first, freshness by age). Completeness "
        "columns: the share of activities with a sector, with a recipient "
        "country, of CD activities with a partner declaration, of CD activities with a results "
        "indicator with baseline and target, of results indicators with both, of transactions "
        f"with a value date and of transactions converted to USD. Budget {_esc(year)}: current "
        "activities with a budget for the year. Traceable: incoming funds naming the funder's "
        "activity. n/a: nothing to count.</p>"
    )
    return _section(
        "contributors",
        "Contributors",
        note
        + _column_picker()
        + _scroll(
            '<table id="contributors-table" class="sortable">'
            f"<caption>{len(contributors)} contributors</caption>{head}"
            f"<tbody>{''.join(rows)}</tbody></table>"
        ),
    )


def _file_contributors(
    entry: Mapping[str, Any],
    by_id: Mapping[str, Mapping[str, Any]],
    pages: Mapping[str, str],
    root: str,
) -> str:
    links = []
    for ident in _list(entry.get("contributors")):
        key = _text(ident)
        contributor = by_id.get(key)
        label = _contributor_label(contributor) if contributor else key
        slug = pages.get(key)
        links.append(
            _link(root + href(CONTRIBUTORS_DIR, f"{slug}.html"), label) if slug else _esc(label)
        )
    return "<br>".join(links) if links else '<span class="na">none known</span>'


def _schema_cell(entry: Mapping[str, Any]) -> str:
    schema = _mapping(entry.get("schema"))
    errors = _number(schema.get("errors"))
    if schema and schema.get("checked") is False:
        return '<td class="num" data-sort="">not checked</td>'
    return (
        f'<td class="num" data-sort="{_sort_value(errors)}">{_esc(format_count(errors))}'
        f' <span class="of">{_esc(format_count(schema.get("warnings")))} warnings</span></td>'
    )


def _files_section(
    report: Mapping[str, Any], pages: Mapping[str, str], by_id: Mapping[str, Mapping[str, Any]]
) -> str:
    files = _files(report)
    if not files:
        return _section("files", "Files", '<p class="empty">No file in this report.</p>')
    rejected = [entry for entry in files if entry.get("status") == "rejected"]
    callout = ""
    if rejected:
        items = "".join(
            f'<li data-file="{_esc(entry.get("source_file"))}"><strong>'
            f"{_esc(entry.get('source_file'))}</strong>: "
            f'<span class="reason">{_esc(entry.get("reason") or "no reason given")}</span></li>'
            for entry in rejected
        )
        callout = (
            f'<div class="callout" id="rejected-files"><h3>{len(rejected)} '
            f"{_plural(len(rejected), 'file', 'files')} rejected</h3><ul>{items}</ul></div>"
        )
    rows = []
    for entry in files:
        status = entry.get("status")
        reason = entry.get("reason")
        reason_html = (
            f'<span class="reason">{_esc(reason or "no reason given")}</span>'
            if status == "rejected"
            else _esc(reason)
        )
        codelists = _mapping(entry.get("codelists"))
        findings = _mappings(entry.get("findings"))
        shown = findings[:MAX_INDEX_FINDINGS]
        more = len(findings) - len(shown)
        findings_html = (
            '<ol class="findings">'
            + "".join(_finding_item(finding) for finding in shown)
            + (f"<li>and {more} more</li>" if more > 0 else "")
            + "</ol>"
            if shown
            else '<span class="na">none</span>'
        )
        version = entry.get("iati_version")
        rows.append(
            f'<tr data-file="{_esc(entry.get("source_file"))}" data-status="{_esc(status)}">'
            f'<th scope="row" data-col="file"><code>{_esc(entry.get("source_file"))}</code>'
            + (f' <span class="ref">IATI {_esc(version)}</span>' if version else "")
            + "</th>"
            f'<td data-col="source">{_esc(_source_label(entry))}</td>'
            f'<td data-col="status" data-sort="{_esc(status)}">{_badge("status", status)}</td>'
            f'<td data-col="reason">{reason_html}</td>'
            f'<td data-col="contributors">{_file_contributors(entry, by_id, pages, "")}</td>'
            + _num_cell(entry.get("n_records"), key="records")
            + _num_cell(entry.get("n_accepted"), key="accepted")
            + _num_cell(entry.get("n_quarantined"), key="quarantined", problem=True)
            + _schema_cell(entry)
            + f'<td class="num" data-sort="{_sort_value(_number(codelists.get("errors")))}">'
            f"{_esc(format_count(codelists.get('errors')))}"
            f' <span class="of">{_esc(format_count(codelists.get("warnings")))} warnings'
            "</span></td>"
            f'<td data-col="findings">{findings_html}</td></tr>'
        )
    head = _head(
        ("file", "File", "text"),
        ("source", "Source", "text"),
        ("status", "Status", "text"),
        ("", "Reason", "text"),
        ("", "Contributors", "text"),
        ("records", "Records", "number"),
        ("accepted", "Accepted", "number"),
        ("quarantined", "Quarantined", "number"),
        ("schema-errors", "Schema errors", "number"),
        ("codelist-errors", "Codelist errors", "number"),
        ("", "First findings (with line numbers)", "text"),
    )
    return _section(
        "files",
        "Files",
        callout
        + '<p class="note">Every input file of this run with its status. Findings are what the '
        "official IATI XML Schema and codelists say about the file as published; the "
        "contributor's page lists all of them.</p>"
        + _scroll(
            f'<table id="files-table" class="sortable"><caption>{len(files)} files</caption>'
            f"{head}<tbody>{''.join(rows)}</tbody></table>"
        ),
    )


def _pass_text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format_count(value)


def _tables_section(report: Mapping[str, Any]) -> str:
    tables = _mapping(report.get("tables"))
    if not tables:
        return _section("tables", "Tables", '<p class="empty">No table checks in this report.</p>')
    rows = []
    details = []
    for name, raw in tables.items():
        info = _mapping(raw)
        conformance = _mapping(info.get("schema_conformance"))
        violations = _mapping(conformance.get("violations"))
        expectations = _mapping(info.get("expectations"))
        failed = _mappings(expectations.get("failed"))
        errors = [f for f in failed if f.get("severity") == "error"]
        warnings = [f for f in failed if f.get("severity") != "error"]
        passed = conformance.get("passed")
        failed_rows_count = sum(_number(v) or 0 for v in violations.values())
        conformance_html = (
            '<span class="na">not checked</span>'
            if conformance.get("checked") is False
            else _badge("check", "passed")
            if passed is True or (passed is None and not violations)
            else _badge("check", "failed", f": {format_count(failed_rows_count)} violations")
        )
        rows.append(
            f'<tr data-table="{_esc(name)}"><th scope="row"><code>{_esc(name)}</code></th>'
            f'<td class="num">{_esc(format_count(info.get("rows")))}</td>'
            f"<td>{conformance_html}</td>"
            f'<td class="num">{_esc(format_count(expectations.get("evaluated")))}</td>'
            f'<td class="num">{_esc(_pass_text(expectations.get("passed_errors")))}</td>'
            f'<td class="num">{len(errors)}</td><td class="num">{len(warnings)}</td></tr>'
        )
        if not violations and not failed:
            continue
        parts = [f'<h3 id="table-{_esc(name)}"><code>{_esc(name)}</code></h3>']
        if violations:
            parts.append(
                "<p>Schema conformance: "
                + "; ".join(
                    f"<code>{_esc(rule)}</code> {_esc(format_count(count))} rows"
                    for rule, count in violations.items()
                )
                + ".</p>"
            )
        if failed:
            failed_rows = []
            for item in failed:
                examples = _mappings(item.get("examples"))
                example_html = (
                    "<ul>"
                    + "".join(
                        f"<li>row {_esc(format_count(ex.get('row')))}: "
                        f"<code>{_esc(ex.get('value'))}</code> · {_esc(ex.get('source_file'))}"
                        + (
                            f" <code>{_esc(ex.get('source_ref'))}</code>"
                            if ex.get("source_ref")
                            else ""
                        )
                        + "</li>"
                        for ex in examples
                    )
                    + "</ul>"
                    if examples
                    else '<span class="na">–</span>'
                )
                if item.get("error"):
                    example_html = (
                        f"<p>Could not be evaluated: {_esc(item.get('error'))}</p>{example_html}"
                    )
                failed_rows.append(
                    f'<tr data-rule="{_esc(item.get("rule"))}"><th scope="row"><code>'
                    f"{_esc(item.get('rule'))}</code></th>"
                    f"<td>{_badge('severity', item.get('severity'))}</td>"
                    f'<td class="num">{_esc(format_count(item.get("unexpected")))}</td>'
                    f"<td>{example_html}</td></tr>"
                )
            parts.append(
                _scroll(
                    f'<table class="failed-expectations" data-table="{_esc(name)}"><thead><tr>'
                    '<th scope="col">Failing rule</th><th scope="col">Severity</th>'
                    '<th scope="col" class="num">Rows</th><th scope="col">Examples</th></tr>'
                    f"</thead><tbody>{''.join(failed_rows)}</tbody></table>"
                )
            )
        details.append("".join(parts))
    summary = _scroll(
        '<table id="tables-table"><thead><tr><th scope="col">Table</th>'
        '<th scope="col" class="num">Rows</th><th scope="col">Schema conformance</th>'
        '<th scope="col" class="num">Expectations evaluated</th>'
        '<th scope="col" class="num">Error-level passed</th>'
        '<th scope="col" class="num">Failed (error)</th>'
        '<th scope="col" class="num">Failed (warning)</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    note = (
        '<p class="note">Every published table checked against its schema (schema/) and the '
        "Great Expectations suites (schema-derived and domain rules).</p>"
    )
    return _section("tables", "Tables", note + summary + "".join(details))


def _trend_section(report: Mapping[str, Any]) -> str:
    trend = _trend(report)
    if not trend:
        return _section("trend", "Trend", '<p class="empty">No run recorded yet.</p>')
    runs = [_run_label(entry) for entry in trend]
    overall = [_mapping(entry.get("overall")) for entry in trend]
    states = [_mapping(entry.get("state_counts")) for entry in overall]

    def run_header(index: int) -> str:
        entry = trend[index]
        release = entry.get("release")
        extra = f' <span class="ref">release {_esc(release)}</span>' if release else ""
        return f'<th scope="row">{_esc(runs[index])}{extra}</th>'

    state_series = [
        (state, label, colour, [_number(counts.get(state)) for counts in states])
        for state, (_, label, colour) in STATES.items()
    ]
    state_rows = [
        f'<tr data-run="{i}">{run_header(i)}'
        + "".join(
            f'<td class="num">{_esc(format_count(values[i]))}</td>'
            for _, _, _, values in state_series
        )
        + "</tr>"
        for i in range(len(runs))
    ]
    label = "Contributors by state per run (valid, invalid, rejected)"
    states_chart = _figure(
        "chart-trend-states",
        label,
        chart_columns("chart-trend-states", label, runs, state_series),
        _data_table(
            "chart-trend-states",
            "Contributors by state",
            ["Run", "Valid", "Invalid", "Rejected"],
            state_rows,
        ),
    )
    quarantined = [_number(entry.get("records_quarantined")) for entry in overall]
    records = [_number(entry.get("records")) for entry in overall]
    label = "Records quarantined per run"
    quarantine_chart = _figure(
        "chart-trend-quarantined",
        label,
        chart_columns(
            "chart-trend-quarantined",
            label,
            runs,
            [("records_quarantined", "records quarantined", OKABE_ITO["orange"], quarantined)],
        ),
        _data_table(
            "chart-trend-quarantined",
            "Records quarantined",
            ["Run", "Records read", "Quarantined"],
            [
                f'<tr data-run="{i}">{run_header(i)}'
                f'<td class="num">{_esc(format_count(records[i]))}</td>'
                f'<td class="num">{_esc(format_count(quarantined[i]))}</td></tr>'
                for i in range(len(runs))
            ],
        ),
    )
    error_series = [
        (key, name, [_number(entry.get(key)) for entry in overall])
        for key, name in (
            ("schema_errors", "schema errors"),
            ("codelist_errors", "codelist errors"),
            ("expectation_errors", "expectation errors"),
        )
    ]
    label = "Schema, codelist and expectation errors per run"
    errors_chart = _figure(
        "chart-trend-errors",
        label,
        chart_lines("chart-trend-errors", label, runs, error_series),
        _data_table(
            "chart-trend-errors",
            "Errors per run",
            ["Run", "Schema", "Codelist", "Expectation"],
            [
                f'<tr data-run="{i}">{run_header(i)}'
                + "".join(
                    f'<td class="num">{_esc(format_count(values[i]))}</td>'
                    for _, _, values in error_series
                )
                + "</tr>"
                for i in range(len(runs))
            ],
        ),
    )
    return _section(
        "trend",
        "Trend over runs",
        f'<p class="note">{len(runs)} {_plural(len(runs), "run", "runs")}, oldest first.</p>'
        + states_chart
        + quarantine_chart
        + errors_chart,
    )


def _distributions_section(report: Mapping[str, Any]) -> str:
    contributors = _contributors(report)
    states = _state_counts(contributors)
    fresh = _freshness_counts(contributors)
    state_items = [
        (key, label, float(states[key]), colour) for key, (_, label, colour) in STATES.items()
    ]
    fresh_items = [
        (key, label, float(fresh[key]), colour)
        for key, (_, label, colour) in FRESHNESS.items()
        if key != "unknown" or fresh[key]
    ]

    def table(chart_id: str, caption: str, items: Sequence[tuple[str, str, float, str]]) -> str:
        total = sum(value for _, _, value, _ in items)
        return _data_table(
            chart_id,
            caption,
            ["State", "Contributors", "Share"],
            [
                f'<tr data-key="{key}"><th scope="row">{_esc(label)}</th>'
                f'<td class="num">{_esc(format_count(value))}</td>'
                f'<td class="num">{_esc(format_share(value / total) if total else "n/a")}</td></tr>'
                for key, label, value, _ in items
            ],
        )

    label = "Contributors by validity state"
    validity = _figure(
        "chart-validity",
        label,
        chart_bars("chart-validity", label, state_items),
        table("chart-validity", "Contributors by validity state", state_items),
    )
    label = "Contributors by freshness state"
    settings = _mapping(_mapping(report.get("settings")).get("freshness"))
    expected = "; ".join(
        f"{_esc(KIND_PLURALS.get(_text(kind), _text(kind)))}: {_esc(frequency)}"
        for kind, frequency in settings.items()
    )
    freshness = _figure(
        "chart-freshness",
        label,
        chart_bars("chart-freshness", label, fresh_items),
        table("chart-freshness", "Contributors by freshness state", fresh_items),
        f"Updates expected of {expected}." if expected else "",
    )
    return _section("distributions", "Distributions", validity + freshness)


def _quarantine_section(report: Mapping[str, Any], release: str | None) -> str:
    figures = _mapping(report.get("overall"))
    rules = _by_rule(figures)
    chart = ""
    if rules:
        items = [
            (
                f"{_text(entry.get('rule'))}:{_text(entry.get('severity'))}",
                f"{_text(entry.get('rule'))} ({_text(entry.get('severity'))})",
                _rule_rows(entry),
                OKABE_ITO["vermillion"]
                if entry.get("severity") == "error"
                else OKABE_ITO["orange"],
            )
            for entry in rules
        ]
        label = "Quarantined rows by rule"
        chart = _figure(
            "chart-quarantine",
            label,
            chart_bars("chart-quarantine", label, items),
            _data_table(
                "chart-quarantine",
                "Rows by rule",
                ["Rule (severity)", "Rows"],
                [
                    f'<tr><th scope="row">{_esc(text)}</th>'
                    f'<td class="num">{_esc(format_count(value))}</td></tr>'
                    for _, text, value, _ in items
                ],
            ),
        )
    full = (
        " The full list is "
        + _link(release.rstrip("/") + "/data/quarantine.csv", "data/quarantine.csv")
        + " of the release."
        if release
        else " The full list is data/quarantine.csv of the release."
    )
    note = (
        '<p class="note">Records set aside: severity error = not accepted, warning = accepted '
        f"with something set aside. One example per rule.{full}</p>"
    )
    return _section(
        "quarantine",
        "Quarantine by rule",
        note + chart + _quarantine_table(figures, "quarantine-table"),
    )


def _overall_completeness(report: Mapping[str, Any]) -> str:
    figures = _mapping(report.get("overall"))
    return _section(
        "completeness",
        "Completeness, forward budgets and traceability (whole compact)",
        "<h3>Completeness of the fields the metrics need</h3>"
        + _completeness_table(figures, "completeness-table")
        + "<h3>Forward budgets</h3>"
        + _forward_table(figures, "forward-table")
        + "<h3>Traceability</h3>"
        + _traceability_table(figures, "traceability-table"),
    )


def render_index(
    report: Mapping[str, Any], *, data_docs: bool = False, release_link: str | None = None
) -> bytes:
    """``index.html``: the overall report for the secretariat."""
    pages = _pages(report)
    release = _release_target(release_link)
    by_id: dict[str, Mapping[str, Any]] = {}
    for contributor in _contributors(report):
        by_id.setdefault(_text(contributor.get("id")), contributor)
    nav = [
        ("figures", "Figures"),
        ("contributors", "Contributors"),
        ("problems", "Problems"),
        ("files", "Files"),
        ("tables", "Tables"),
        ("completeness", "Completeness"),
        ("trend", "Trend"),
        ("distributions", "Distributions"),
        ("quarantine", "Quarantine"),
    ]
    body = (
        _header_index(report, release)
        + _links_paragraph(data_docs, release, report)
        + _tiles(report)
        + _contributors_table(report, pages)
        + _problems_section(report, "Problems to fix (whole compact)", "No problem found.")
        + _files_section(report, pages, by_id)
        + _tables_section(report)
        + _overall_completeness(report)
        + _trend_section(report)
        + _distributions_section(report)
        + _quarantine_section(report, release)
    )
    as_of = _text(report.get("as_of"))
    return _page(
        f"Data-quality report {as_of}".strip(),
        "How good the Capacity Development Compact's data is, contributor by contributor.",
        body,
        root="",
        nav=nav,
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


def _summary_points(
    report: Mapping[str, Any], contributor: Mapping[str, Any], files: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Plain-language sentences, addressed to the contributor, most important first."""
    figures = _figures(contributor)
    validity = _validity(figures)
    timeliness = _timeliness(figures)
    points = []
    state = _text(validity.get("state"))
    if state in STATE_EXPLAINED:
        points.append(
            f"Your data is <strong>{_esc(STATES[state][1])}</strong>: "
            f"{_esc(STATE_EXPLAINED[state])}"
        )
    for entry in files:
        if entry.get("status") == "rejected":
            points.append(
                f"Your file <strong>{_esc(entry.get('source_file'))}</strong> was rejected: "
                f'<span class="reason">{_esc(entry.get("reason") or "no reason given")}</span>'
            )
    records = _number(validity.get("records"))
    if records:
        accepted = _number(validity.get("records_accepted"))
        quarantined = _number(validity.get("records_quarantined"))
        points.append(
            f"{_esc(format_count(accepted))} of {_esc(format_count(records))} "
            f"{_plural(records, 'record was', 'records were')} accepted; "
            f"{_esc(format_count(quarantined))} "
            f"{_plural(quarantined, 'was', 'were')} quarantined (not accepted)."
        )
    errors = [
        (validity.get("schema_errors"), "schema error", "schema errors"),
        (validity.get("codelist_errors"), "codelist error", "codelist errors"),
        (
            validity.get("expectation_errors"),
            "row failing an error-level check",
            "rows failing an error-level check",
        ),
    ]
    found = [
        f"{format_count(value)} {_plural(_number(value), one, many)}"
        for value, one, many in errors
        if _number(value)
    ]
    if found:
        points.append(
            "We found " + _esc(", ".join(found)) + "; the problems and files below say where."
        )
    completeness = _mapping(figures.get("completeness"))
    for key, _, _, things, (one, several) in COMPLETENESS:
        item = _mapping(completeness.get(key))
        numerator, denominator = _number(item.get("numerator")), _number(item.get("denominator"))
        if numerator is None or not denominator or numerator >= denominator:
            continue
        missing = denominator - numerator
        points.append(
            f"{_esc(format_count(missing))} of {_esc(format_count(denominator))} "
            f"{_esc(things)} {_esc(_plural(missing, one, several))}."
        )
    age = _number(timeliness.get("age_days"))
    fresh = _text(timeliness.get("state"))
    if fresh in FRESHNESS and fresh != "unknown" and age is not None:
        points.append(
            f"Your data was last updated {_esc(_days(age))} before {_esc(report.get('as_of'))}: "
            f"<strong>{_esc(FRESHNESS[fresh][1])}</strong> for "
            f"{_esc(timeliness.get('frequency') or 'the expected')} updates."
        )
    elif fresh == "unknown" or (timeliness and age is None):
        points.append("No update date of yours is known, so freshness cannot be judged.")
    forward = _forward_share(figures, report.get("as_of"))
    current = _number(forward.get("current_activities"))
    if forward and current:
        points.append(
            f"{_esc(format_count(forward.get('activities_with_budget')))} of "
            f"{_esc(format_count(current))} current "
            f"{_plural(current, 'activity has', 'activities have')} a budget for "
            f"{_esc(forward.get('year'))}."
        )
    return points


def _problems_section(
    contributor: Mapping[str, Any], title: str = "Problems to fix", empty: str = "None. Thank you!"
) -> str:
    problems = _mappings(contributor.get("problems"))
    if not problems:
        return _section("problems", title, f'<p class="empty">{_esc(empty)}</p>')
    rows = "".join(
        f'<tr data-kind="{_esc(problem.get("kind"))}">'
        f'<td data-label="Severity">{_badge("severity", problem.get("severity"))}</td>'
        f'<td data-label="What">'
        f"{_esc(PROBLEM_KINDS.get(_text(problem.get('kind')), problem.get('kind')))}"
        f' <span class="ref"><code>{_esc(problem.get("rule"))}</code></span></td>'
        f'<td class="message" data-label="Message">{_esc(problem.get("message"))}</td>'
        f'<td class="where" data-label="Where">{_esc(problem.get("where"))}</td>'
        f'<td class="num" data-label="Count">{_esc(format_count(problem.get("count")))}</td>'
        "</tr>"
        for problem in problems
    )
    return _section(
        "problems",
        title,
        '<p class="note">The first problems to fix, worst first.</p>'
        + _scroll(
            '<table id="problems-table" class="stack"><thead><tr><th scope="col">Severity</th>'
            '<th scope="col">What</th><th scope="col">Message</th><th scope="col">Where</th>'
            f'<th scope="col" class="num">Count</th></tr></thead><tbody>{rows}</tbody></table>'
        ),
    )


def _own_part(entry: Mapping[str, Any], ident: str | None) -> Mapping[str, Any] | None:
    """The contributor's part of a file holding several publishers' activities."""
    for part in _mappings(entry.get("parts")):
        if _text(part.get("contributor")) == ident:
            return part
    return None


def _their_files_section(files: Sequence[Mapping[str, Any]], ident: str | None = None) -> str:
    if not files:
        return _section("files", "Your files", '<p class="empty">No file in this run.</p>')
    parts = []
    for index, entry in enumerate(files):
        own = _own_part(entry, ident)
        if own is not None:  # a shared file: the contributor's own activities and findings
            others = len(_mappings(entry.get("parts"))) - 1
            shared_html = (
                f'<p class="note" data-shared="{others}">This file also holds the activities '
                f"of {format_count(others)} other publisher{'s' if others != 1 else ''}: the "
                f"figures below are your {format_count(own.get('n_accepted'))} accepted "
                "activities, with the findings about them and about the file as a whole"
                + (
                    f"; {format_count(entry.get('n_quarantined'))} activities of the file were "
                    "not accepted, and whose they are cannot be known"
                    if entry.get("n_quarantined")
                    else ""
                )
                + ".</p>"
            )
            entry = {
                **entry,
                "n_records": own.get("n_accepted"),
                "n_accepted": own.get("n_accepted"),
                "n_quarantined": 0,
                "quarantine": own.get("quarantine"),
                "findings": own.get("findings"),
                "schema": {**_mapping(entry.get("schema")), **_mapping(own.get("schema"))},
                "codelists": {
                    **_mapping(entry.get("codelists")),
                    **_mapping(own.get("codelists")),
                },
            }
        else:
            shared_html = ""
        status = entry.get("status")
        schema = _mapping(entry.get("schema"))
        codelists = _mapping(entry.get("codelists"))
        reason = entry.get("reason")
        reason_html = (
            f'<p class="callout">Rejected: <span class="reason">'
            f"{_esc(reason or 'no reason given')}</span></p>"
            if status == "rejected"
            else (f'<p class="note">Note: {_esc(reason)}</p>' if reason else "")
        )
        schema_text = (
            "not checked"
            if schema.get("checked") is False
            else f"{_counted(schema.get('errors'), 'error')}, "
            f"{_counted(schema.get('warnings'), 'warning')}"
            + (f" (IATI {schema.get('schema_version')})" if schema.get("schema_version") else "")
        )
        facts = (
            '<dl class="facts">'
            f"<div><dt>Status</dt><dd>{_badge('status', status)}</dd></div>"
            f"<div><dt>Source</dt><dd>"
            f"{_esc(_source_label(entry))}</dd></div>"
            f"<div><dt>Records</dt><dd>{_esc(format_count(entry.get('n_records')))}</dd></div>"
            f"<div><dt>Accepted</dt><dd>{_esc(format_count(entry.get('n_accepted')))}</dd></div>"
            f"<div><dt>Quarantined</dt><dd>{_esc(format_count(entry.get('n_quarantined')))}"
            "</dd></div>"
            f"<div><dt>XML Schema</dt><dd>{_esc(schema_text)}</dd></div>"
            f"<div><dt>Codelists</dt><dd>{_esc(_counted(codelists.get('errors'), 'error'))}, "
            f"{_esc(_counted(codelists.get('warnings'), 'warning'))}</dd></div></dl>"
        )
        findings = _mappings(entry.get("findings"))
        findings_html = (
            _findings_table(findings, f"findings-{index + 1}")
            if findings
            else '<p class="empty">No schema or codelist finding.</p>'
        )
        set_aside = _mappings(entry.get("quarantine"))
        set_aside_html = (
            "<p>Records set aside, by rule: "
            + "; ".join(
                f"<code>{_esc(item.get('rule'))}</code> ({_esc(item.get('severity'))}) "
                f"{_esc(format_count(_rule_rows(item)))}"
                for item in set_aside
            )
            + ".</p>"
            if set_aside
            else ""
        )
        parts.append(
            f'<div class="file" data-file="{_esc(entry.get("source_file"))}">'
            f"<h3><code>{_esc(entry.get('source_file'))}</code></h3>"
            f"{reason_html}{shared_html}{facts}{set_aside_html}{findings_html}</div>"
        )
    return _section(
        "files",
        "Your files",
        '<p class="note">Findings are what the official IATI XML Schema and codelists say about '
        "each file as published, with the line in the file.</p>" + "".join(parts),
    )


def _timeliness_section(figures: Mapping[str, Any], as_of: object) -> str:
    timeliness = _timeliness(figures)
    facts = _facts(
        [
            ("last-updated", "Last updated", _time(timeliness.get("last_updated"))),
            ("last-received", "Last received", _time(timeliness.get("last_received"))),
            ("age", f"Age on {_text(as_of)}", _esc(_days(timeliness.get("age_days")))),
            ("frequency", "Expected frequency", _esc(timeliness.get("frequency") or "–")),
            ("freshness-state", "State", _badge("freshness", timeliness.get("state"))),
        ]
    )
    return _section(
        "timeliness",
        "Timeliness",
        facts
        + f'<p id="freshness-explained">{_freshness_sentence(timeliness)} The age counts from the '
        "latest last-updated date of your IATI activities (or your latest submission), else "
        "from when we last received a file of yours.</p>"
        + _thresholds_table(timeliness.get("frequency")),
    )


def _their_trend(report: Mapping[str, Any], ident: str) -> str:
    trend = _trend(report)
    entries = [_mapping(_mapping(entry.get("contributors")).get(ident)) for entry in trend]
    if not any(entries):
        return _section("trend", "Your trend", '<p class="empty">No run recorded yet.</p>')
    runs = [_run_label(entry) for entry in trend]
    keys = (
        ("records_quarantined", "records quarantined"),
        ("schema_errors", "schema errors"),
        ("codelist_errors", "codelist errors"),
        ("expectation_errors", "expectation errors"),
    )
    series = [(key, name, [_number(entry.get(key)) for entry in entries]) for key, name in keys]
    label = "Your records quarantined and errors per run"
    rows = []
    for index, entry in enumerate(entries):
        state = entry.get("state") if entry else None
        rows.append(
            f'<tr data-run="{index}"><th scope="row">{_esc(runs[index])}</th>'
            f"<td>{_badge('state', state) if entry else NA}</td>"
            f"<td>{_badge('freshness', entry.get('freshness')) if entry else NA}</td>"
            f'<td class="num">{_esc(format_count(entry.get("records")))}</td>'
            + "".join(
                f'<td class="num">{_esc(format_count(values[index]))}</td>'
                for _, _, values in series
            )
            + "</tr>"
        )
    table = _data_table(
        "chart-contributor-trend",
        "Per run",
        [
            "Run",
            "State",
            "Freshness",
            "Records",
            "Quarantined",
            "Schema",
            "Codelist",
            "Expectation",
        ],
        rows,
        text_columns=3,
    )
    return _section(
        "trend",
        "Your trend",
        f'<p class="note">{len(runs)} {_plural(len(runs), "run", "runs")}, oldest first; '
        "– where you had no data in a run.</p>"
        + _figure(
            "chart-contributor-trend",
            label,
            chart_lines("chart-contributor-trend", label, runs, series),
            table,
        ),
    )


def render_contributor(
    report: Mapping[str, Any],
    contributor: Mapping[str, Any],
    *,
    data_docs: bool = False,
    release_link: str | None = None,
) -> bytes:
    """``contributors/<slug>.html``: one contributor's page, understandable on its own."""
    release = _release_target(release_link)
    release = _from_subfolder(release) if release else None
    ident = _text(contributor.get("id"))
    figures = _figures(contributor)
    validity = _validity(figures)
    kind = contributor.get("kind")
    name = _contributor_label(contributor)
    ref_label = KINDS[kind][1] if isinstance(kind, str) and kind in KINDS else "Identifier"
    files = _their_files(report, contributor)
    state = validity.get("state")
    header = (
        f'<header><p class="back">{_link("../" + INDEX, "← Back to the overall report")}</p>'
        f'<p class="kicker">Data-quality report · Capacity Development Compact · as of '
        f"{_esc(report.get('as_of'))}</p>"
        f'<h1 id="title">{_esc(name)}</h1>'
        + _facts(
            [
                ("kind", "Kind", _esc(_kind_label(kind))),
                ("ref", ref_label, f"<code>{_esc(contributor.get('ref'))}</code>"),
                ("state", "State", _badge("state", state)),
                ("as-of", "As of", f"<time>{_esc(report.get('as_of'))}</time>"),
                ("generated-at", "Generated", _time(report.get("generated_at"))),
                ("release-version", "Release", _release_fact(report, release)),
            ]
        )
        + "<!--nav--></header>"
    )
    points = _summary_points(report, contributor, files)
    summary = _section(
        "summary",
        "Summary",
        '<p class="note">This page reports how the data you contributed to the Capacity '
        "Development Compact looked in the run of "
        f"{_esc(_format_timestamp(report.get('generated_at')))}: what was accepted, what was "
        "set aside and why, which fields are missing and how fresh it is.</p>"
        + (
            '<ul class="summary" id="summary-points">'
            + "".join(f"<li>{point}</li>" for point in points)
            + "</ul>"
            if points
            else '<p class="empty">Nothing to report.</p>'
        )
        + '<dl class="tiles">'
        + _tile("records", "Records read", validity.get("records"), neutral=True)
        + _tile("records_accepted", "Accepted", validity.get("records_accepted"), neutral=True)
        + _tile("records_quarantined", "Quarantined", validity.get("records_quarantined"), bad=True)
        + _tile("warnings", "Warnings", validity.get("warnings"), bad=True)
        + _tile("files_rejected", "Files rejected", validity.get("files_rejected"), bad=True)
        + _tile("files_stale", "Files stale", validity.get("files_stale"), bad=True)
        + _tile("schema_errors", "Schema errors", validity.get("schema_errors"), bad=True)
        + _tile("codelist_errors", "Codelist errors", validity.get("codelist_errors"), bad=True)
        + _tile(
            "expectation_errors", "Expectation errors", validity.get("expectation_errors"), bad=True
        )
        + "</dl>",
    )
    links = []
    if data_docs:
        links.append(_link("../" + DATA_DOCS, DATA_DOCS_TEXT, id="data-docs-link"))
    if release:
        links.append(_link(release, "The release holding this data", id="release"))
    links_html = (
        '<ul class="documents">' + "".join(f"<li>{link}</li>" for link in links) + "</ul>"
        if links
        else ""
    )
    full = (
        " The full list is "
        + _link(release.rstrip("/") + "/data/quarantine.csv", "data/quarantine.csv")
        + " of the release."
        if release
        else ""
    )
    body = (
        header
        + summary
        + _problems_section(contributor)
        + _their_files_section(files, _text(contributor.get("id")))
        + _section(
            "completeness",
            "Completeness",
            '<p class="note">The fields the compact\'s metrics need: how many of your records '
            "have them.</p>" + _completeness_table(figures, "completeness-table"),
        )
        + _timeliness_section(figures, report.get("as_of"))
        + _section("forward-budgets", "Forward budgets", _forward_table(figures, "forward-table"))
        + _section(
            "traceability", "Traceability", _traceability_table(figures, "traceability-table")
        )
        + _section(
            "quarantine",
            "Quarantine by rule",
            '<p class="note">Records set aside: severity error = not accepted, warning = '
            f"accepted with something set aside. One example per rule.{full}</p>"
            + _quarantine_table(figures, "quarantine-table"),
        )
        + _their_trend(report, ident)
        + links_html
    )
    nav = [
        ("summary", "Summary"),
        ("problems", "Problems"),
        ("files", "Files"),
        ("completeness", "Completeness"),
        ("timeliness", "Timeliness"),
        ("forward-budgets", "Forward budgets"),
        ("traceability", "Traceability"),
        ("quarantine", "Quarantine"),
        ("trend", "Trend"),
    ]
    return _page(
        f"{name}: data-quality report {_text(report.get('as_of'))}",
        f"Data-quality report for {name}, a contributor to the Capacity Development Compact.",
        body,
        root="../",
        nav=nav,
    )


def render_quality_site(
    report: Mapping[str, Any], *, data_docs: bool = False, release_link: str | None = None
) -> dict[str, bytes]:
    """The quality website: ``{relative path: content}``.

    ``index.html`` is the overall report; ``contributors/<slug>.html`` one page per
    contributor whose ``slug`` is made of ``[a-z0-9-]`` (others get no page and
    no link). ``data_docs`` links ``data-docs/index.html`` (the Great Expectations
    Data Docs, published next to these pages); ``release_link`` is the release
    folder holding the data, relative to ``index.html`` (e.g.
    ``../releases/2026.11.28/``) or an http(s) URL. Same report, same bytes.
    """
    site = {INDEX: render_index(report, data_docs=data_docs, release_link=release_link)}
    pages = _pages(report)
    for contributor in _contributors(report):
        ident = _text(contributor.get("id"))
        slug = pages.get(ident)
        if slug is None or f"{CONTRIBUTORS_DIR}/{slug}.html" in site:
            continue
        site[f"{CONTRIBUTORS_DIR}/{slug}.html"] = render_contributor(
            report, contributor, data_docs=data_docs, release_link=release_link
        )
    return site
