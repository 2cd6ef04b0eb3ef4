"""Country and development-partner profile pages, in every language of ``publish/i18n/``.

The pages render the plain dicts that :mod:`publish.profiles` builds (the data contract
is in that module's docstring: country and partner profiles) and nothing else:
no table is read here. Missing keys are shown as "–" or as an empty section that says
so. One key beyond the contract is read when present: a peer entry's ``lower_is_better``
(rank 1 is then the lowest value, which the page says). :func:`render_all` gives every
page of a release, keyed by its release-relative path::

    countries/index.html  countries/index.fr.html  countries/<slug>.html  countries/<slug>.fr.html
    partners/index.html   partners/index.fr.html   partners/<slug>.html   partners/<slug>.fr.html

Like the catalogue page (:mod:`publish.site`, whose style sheet is reused) every
page is self-contained: inline CSS and inline SVG, no JavaScript, no font, image or
stylesheet from anywhere (a Content-Security-Policy says so to the browser), relative
links only. Every string of a profile is data and is escaped; slugs are checked before
they become file names. Every chart is an ``<svg role="img">`` labelled by its own
``<title>`` and ``<desc>`` (a one-sentence summary), drawn in the Okabe–Ito colour-blind
safe palette, with text on every bar and its figures in a table after it: nothing is
told by colour alone. Pages are pure functions of their input: same dicts, same bytes.

Translations
------------
Every word a reader sees comes from ``publish/i18n/<lang>.json``: one flat JSON object,
label key -> text, placeholders in braces (``"rank.text": "{ordinal} of {n}"``). Keys are
grouped by prefix: ``page.``/``nav.``/``link.`` (page frame), ``section.`` (``<h2>``
titles), ``empty.`` (what an empty section says), ``col.`` (table columns), ``chart.``
(chart titles and ``<desc>`` summaries), ``metric.<name>.label`` / ``.explain`` /
``.anchor`` (every alignment metric and the framework it comes from; the English labels and
anchors are those of :data:`publish.site.ALIGNMENT_METRICS`), ``modality.``, ``status.``,
``source.``, ``basis.``, ``field.`` and ``group_kind.`` (coded values), and
``format.``/``month.``/``ordinal.`` (how numbers, dates and ranks are written: decimal and
thousands separators, the percent, US-dollar and date patterns, ordinal suffixes). Ordinals:
``ordinal.first`` for 1, ``ordinal.end1``/``end2``/``end3`` for numbers ending in 1, 2 or 3
(not 11 to 13), ``ordinal.other`` for the rest; ``format.day_one`` writes the first day of a
month (``1er`` in French).

Adding a language = adding a file: copy ``en.json`` to ``<code>.json`` (an ISO 639
code), translate every value keeping the keys and the ``{placeholders}``, and pass the
code in ``languages`` to :func:`render_all`. English is the default: its pages have no
language suffix, every other language's pages are ``<stem>.<code>.html``, and every page
links to all its language versions. :func:`load_labels` refuses a file whose keys differ
from ``en.json``'s, and the tests check every shipped file has exactly the same keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from babel import Locale

from publish.formats import number as _number
from publish.html_strings import _esc, _link
from publish.render import SITE_CSS as SITE_STYLE
from publish.site import ALIGNMENT_METRICS, COUNT_METRICS, href

I18N_DIR = Path(__file__).with_name("i18n")
DEFAULT_LANGUAGE = "en"
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
SLUG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
KINDS = {"country": "countries", "partner": "partners"}

#: Okabe–Ito: distinguishable with every common colour-vision deficiency.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
OTHERS_COLOUR = "#000000"
SELF_COLOUR = "#D55E00"
PEER_COLOUR = "#56B4E9"
TRACK_COLOUR = "#e2e8f0"
MAX_SERIES = 7  # series drawn one by one in a money chart; the rest are summed as "other"
CHART_WIDTH = 900
LOW_COVERAGE = 0.5
MAX_LABEL_CHARS = 30  # per line; a longer name goes on two lines, then is shortened with …
STATUSES = ("ok", "partial", "rejected", "unchanged", "stale")
#: What an overlapping pair's score is made of (a partner's overlaps carry the first two).
PAIR_MEASURES = ("sector_overlap", "date_overlap", "title_similarity")
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = (
    SITE_STYLE
    + """
.skip{position:absolute;left:-10000px;top:0}
.skip:focus{left:8px;top:8px;z-index:10;background:#fff;padding:8px 12px;
  border:2px solid var(--accent);border-radius:6px}
:focus-visible{outline:3px solid #0072B2;outline-offset:2px}
body>header,body>footer{max-width:1080px;margin:0 auto;padding:24px 20px 0}
body>header nav ul{margin:0}
main{padding-top:0}
main:focus{outline:none}
.crumbs{font-size:.92rem}
.lang{margin:8px 0 0}
.lang [aria-current]{font-weight:700}
.sections{margin:12px 0 0}
h1 .code{font-weight:400;color:var(--muted);font-size:.6em;margin-left:.3em}
h4{font-size:1rem;margin:1.2em 0 .3em}
.explain{display:block;color:var(--muted);font-size:.82rem;font-weight:400}
.anchor{display:block;color:var(--muted);font-size:.78rem;font-weight:400}
.flag{display:block;color:var(--warn);font-weight:600;font-size:.85rem}
.data-links{font-size:.9rem;color:var(--muted)}
.scroll:focus-visible{outline:3px solid #0072B2}
svg.chart{width:100%;min-width:640px;height:auto}
svg.chart text.year{font-weight:700}
svg.chart text.self{font-weight:700}
svg.chart text.small{font-size:12px;fill:#475569}
tr.self th,tr.self td{font-weight:700;background:#fdf3dc}
tr.total th,tr.total td{font-weight:700;border-top:2px solid var(--line)}
.priority{border-top:1px solid var(--line);margin-top:12px;padding-top:4px}
.unfunded{border-left:5px solid #D55E00;background:#fbe9df;padding:6px 12px;border-radius:6px;
  font-weight:700;color:#7a3500}
.funded{font-weight:600;color:#00513a}
.status{display:inline-block;white-space:nowrap;border:1px solid;border-left-width:5px;
  border-radius:999px;padding:0 8px;font-size:.85rem;font-weight:600;background:#fff}
.status-ok{border-color:#009E73;color:#00513a}
.status-partial{border-color:#E69F00;color:#6b4a00}
.status-rejected{border-color:#D55E00;color:#7a3500}
.status-unchanged,.status-other{border-color:#8C8C8C;color:#3d3d3d}
.status-stale{border-color:#E69F00;color:#3d3d3d}
table th[scope=row]{min-width:8em}
.activities{margin:.3em 0;padding-left:1.2em}
.activities code,td code{font-size:.85rem;overflow-wrap:anywhere}
@media (max-width:640px){body>header,body>footer{padding:16px 10px 0}
  table{font-size:.85rem}th,td{padding:4px 6px}}
@media print{
  nav,.skip{display:none!important}
  body{background:#fff;font-size:11pt}
  body>header,main{max-width:none;padding:0}
  section{border:0;padding:0;margin:0 0 16px;break-inside:auto}
  h2,h3,h4{break-after:avoid;page-break-after:avoid}
  .scroll{overflow:visible}
  svg.chart{min-width:0}
  table{font-size:9pt}
  thead{display:table-header-group}
  tr,table,figure,svg,.figure,.priority{break-inside:avoid;page-break-inside:avoid}
  a{color:inherit}
  a[href]:not([href^="#"])::after{content:" (" attr(href) ")";font-size:.8em;color:#475569}
}
"""
)


# ------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Labels:
    """The texts of one language, and how that language writes numbers, dates and ranks."""

    lang: str
    texts: Mapping[str, str]

    def __call__(self, key: str, **params: object) -> str:
        try:
            template = self.texts[key]
        except KeyError:
            raise KeyError(f"no label {key!r} in publish/i18n/{self.lang}.json") from None
        return template.format_map(params) if params else template

    def get(self, key: str, default: str) -> str:
        return self.texts.get(key, default)

    @property
    def missing(self) -> str:
        return self("format.missing")

    def number(self, value: float, decimals: int = 0) -> str:
        text = f"{value:,.{decimals}f}"
        return text.translate(
            {ord(","): self("format.thousands"), ord("."): self("format.decimal")}
        )

    def count(self, value: object) -> str:
        number = _number(value)
        return self.missing if number is None else self.number(round(number))

    def plain(self, value: object) -> str:
        """A whole number as such, else two decimals (numerators and denominators)."""
        number = _number(value)
        if number is None:
            return self.missing
        return self.number(number, 0 if number.is_integer() else 2)

    def decimal(self, value: object, decimals: int = 2) -> str:
        number = _number(value)
        return self.missing if number is None else self.number(number, decimals)

    def usd(self, value: object) -> str:
        """Short US dollars (``USD 1.2 million``), as the catalogue page writes them."""
        number = _number(value)
        if number is None:
            return self.missing
        if abs(number) >= 1e9:
            return self("format.usd_billion", value=self.number(number / 1e9, 1))
        if abs(number) >= 1e6:
            return self("format.usd_million", value=self.number(number / 1e6, 1))
        return self("format.usd", value=self.number(number, 0))

    def usd_full(self, value: object) -> str:
        """Every dollar (``USD 1,234,567``), for tables."""
        number = _number(value)
        return self.missing if number is None else self("format.usd", value=self.number(number))

    def share(self, value: object) -> str:
        number = _number(value)
        if number is None:
            return self.missing
        return self("format.percent", value=self.number(number * 100, 1))

    def date(self, value: object) -> str:
        text = "" if value is None else str(value)
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            return text or self.missing
        number = self("format.day_one") if day.day == 1 else str(day.day)
        return self("format.date", day=number, month=self(f"month.{day.month}"), year=day.year)

    def ordinal(self, rank: int) -> str:
        if rank == 1:
            key = "ordinal.first"
        elif rank % 100 in (11, 12, 13) or rank % 10 not in (1, 2, 3):
            key = "ordinal.other"
        else:
            key = f"ordinal.end{rank % 10}"
        return self(key, n=rank)

    def rank(self, rank: object, n: object, tied: object = 1) -> str:
        """``2nd of 4``; ``joint 1st of 4`` when others share the rank (``tied`` > 1)."""
        position, size, sharing = _number(rank), _number(n), _number(tied)
        if position is None or size is None:
            return self.missing
        key = "rank.joint" if sharing is not None and sharing > 1 else "rank.text"
        return self(key, ordinal=self.ordinal(int(position)), n=int(size))

    def years(self, values: Iterable[object]) -> str:
        found = sorted({int(y) for y in (_number(v) for v in values) if y is not None})
        if not found:
            return self.missing
        if found[0] == found[-1]:
            return str(found[0])
        return self("format.year_range", first=found[0], last=found[-1])


def available_languages() -> tuple[str, ...]:
    """The languages with a translation file, the default first."""
    found = sorted(path.stem for path in I18N_DIR.glob("*.json"))
    return tuple(sorted(found, key=lambda code: code != DEFAULT_LANGUAGE))


def _read_texts(path: Path) -> dict[str, str]:
    texts = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(texts, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in texts.items()
    ):
        raise ValueError(f"{path.name}: a translation file is one JSON object of texts")
    return texts


@cache
def load_labels(lang: str) -> Labels:
    """The labels of ``lang`` from ``publish/i18n/<lang>.json`` (same keys as ``en.json``)."""
    if not LANGUAGE_CODE.fullmatch(lang):
        raise ValueError(f"not a language code: {lang!r} (two or three lowercase letters)")
    path = I18N_DIR / f"{lang}.json"
    if not path.is_file():
        raise ValueError(f"no translation for {lang!r}: add publish/i18n/{lang}.json")
    texts = _read_texts(path)
    reference = set(_read_texts(I18N_DIR / f"{DEFAULT_LANGUAGE}.json"))
    missing, extra = sorted(reference - set(texts)), sorted(set(texts) - reference)
    if missing or extra:
        raise ValueError(
            f"{path.name} must have the keys of {DEFAULT_LANGUAGE}.json: "
            f"missing {missing}, unknown {extra}"
        )
    return Labels(lang=lang, texts=MappingProxyType(texts))


# ------------------------------------------------------------------------ context


@dataclass(frozen=True)
class PageContext:
    """Where a profile page stands: its release, and the pages it links to.

    Paths are relative to the page (one folder below the release root, which is
    ``releases/<version>/`` under the publish root).
    """

    version: str
    title: str
    published: str
    release_root: str = "../"
    catalogue: str = "../../../index.html"
    quality: str = "../quality/index.html"
    #: Whether the release has its data-quality report (else it is not linked).
    has_quality: bool = True
    #: The languages every page is published in (and links to), the default first.
    languages: tuple[str, ...] = (DEFAULT_LANGUAGE, "fr")
    #: Partner code -> slug of its page: partner names link to their page when it exists.
    partner_pages: Mapping[str, str] = field(default_factory=dict)
    #: Country code -> slug of its page.
    country_pages: Mapping[str, str] = field(default_factory=dict)


def page_name(stem: str, lang: str) -> str:
    """``GH.html`` in the default language, ``GH.fr.html`` in French."""
    return f"{stem}.html" if lang == DEFAULT_LANGUAGE else f"{stem}.{lang}.html"


# ---------------------------------------------------------------------- plumbing


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _int(value: object) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _data(value: object) -> str:
    number = _number(value)
    return "" if number is None else repr(number)


def _section(section_id: str, title: str, body: str) -> str:
    return (
        f'<section id="{section_id}" aria-labelledby="{section_id}-h">'
        f'<h2 id="{section_id}-h">{_esc(title)}</h2>{body}</section>'
    )


def _empty(text: str, key: str) -> str:
    return f'<p class="empty" data-empty="{_esc(key)}">{_esc(text)}</p>'


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


def _scroll(content: str, label: str) -> str:
    """A horizontally scrollable region, reachable with the keyboard."""
    return (
        f'<div class="scroll" role="region" aria-label="{_esc(label)}" tabindex="0">{content}</div>'
    )


def _table(
    table_id: str,
    caption: str,
    columns: Sequence[tuple[str, bool]],
    rows: Sequence[str],
    css: str = "",
) -> str:
    """A table in a scrollable wrapper; ``columns`` are ``(label, numeric)``."""
    numeric_class = ' class="num"'
    head = "".join(
        f'<th scope="col"{numeric_class if numeric else ""}>{_esc(label)}</th>'
        for label, numeric in columns
    )
    klass = f' class="{css}"' if css else ""
    return _scroll(
        f'<table id="{_esc(table_id)}"{klass}><caption>{_esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
        caption,
    )


def _num(text: str, value: object = None) -> str:
    data = f' data-value="{_data(value)}"' if value is not None else ""
    return f'<td class="num"{data}>{_esc(text)}</td>'


def _cell(html_text: str) -> str:
    return f"<td>{html_text}</td>"


def _page_link(kind: str, code: str, name: str, labels: Labels, context: PageContext) -> str:
    """``name`` linked to its profile page in this language, or as plain text without one."""
    pages = context.country_pages if kind == "country" else context.partner_pages
    stem = pages.get(code)
    if not name:
        name = code or labels.missing
    if stem is None:
        return _esc(name)
    target = f"{context.release_root}{KINDS[kind]}/{href(page_name(stem, labels.lang))}"
    return _link(target, name, data_profile=kind)


def _partner_link(activity: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    code = _text(activity.get("partner_code"))
    return _page_link("partner", code, _text(activity.get("partner")), labels, context)


def _country_link(code: str, name: str, labels: Labels, context: PageContext) -> str:
    return _page_link("country", code, name, labels, context)


def _data_links(
    profile: Mapping[str, Any], tables: Sequence[str], labels: Labels, context: PageContext
) -> str:
    """Links to the rows behind a figure (the page's extract) and to the full tables."""
    rows = _map(profile.get("rows"))
    items = []
    for table in tables:
        extract = rows.get(table)
        if isinstance(extract, str) and extract:
            items.append(
                _link(
                    context.release_root + href(extract),
                    labels("data.rows", table=table),
                    data_rows=table,
                )
            )
        items.append(
            _link(
                f"{context.release_root}data/{table}.csv",
                labels("data.full", table=table),
                data_table=table,
            )
        )
    return f'<p class="data-links">{_esc(labels("data.intro"))} {" · ".join(items)}</p>'


def _metric_label(metric: str, labels: Labels) -> str:
    return labels.get(f"metric.{metric}.label", metric)


def _metric_order(metric: str) -> tuple[int, str]:
    names = list(ALIGNMENT_METRICS)
    return (names.index(metric) if metric in names else len(names), metric)


def _metric_value(metric: str, value: object, labels: Labels) -> str:
    return labels.count(value) if metric in COUNT_METRICS else labels.share(value)


def _metric_head(metric: str, labels: Labels) -> str:
    """The metric's label, its one-line explanation and the framework it comes from."""
    anchor = labels.get(f"metric.{metric}.anchor", "")
    explain = labels.get(f"metric.{metric}.explain", "")
    return (
        _esc(_metric_label(metric, labels))
        + (f'<span class="explain">{_esc(explain)}</span>' if explain else "")
        + (
            f'<span class="anchor">{_esc(labels("alignment.anchor", anchor=anchor))}</span>'
            if anchor
            else ""
        )
    )


def _coverage_cell(coverage: object, labels: Labels) -> str:
    number = _number(coverage)
    flag = ""
    if number is not None and number < LOW_COVERAGE:
        flag = f'<span class="flag" data-flag="low-coverage">{_esc(labels("alignment.low"))}</span>'
    return f'<td class="num" data-value="{_data(number)}">{_esc(labels.share(number))}{flag}</td>'


def _group_label(comparison: Mapping[str, Any], labels: Labels) -> str:
    kind = _text(comparison.get("group_kind"))
    if kind == "all":
        return labels("group.all")
    return labels(
        "group.named",
        kind=labels.get(f"group_kind.{kind}", kind),
        group=_text(comparison.get("group")),
    )


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _wrap(label: str) -> list[str]:
    """A bar's name on one line, or two when long (the rest shortened with …)."""
    if len(label) <= MAX_LABEL_CHARS:
        return [label]
    cut = label.rfind(" ", 0, MAX_LABEL_CHARS + 1)
    if cut <= 0:
        return [_short(label)]
    return [label[:cut], _short(label[cut + 1 :].strip())]


# ------------------------------------------------------------------------- charts


def _svg(chart_id: str, title: str, desc: str, height: float, body: Iterable[str]) -> str:
    """An inline SVG chart named by its ``<title>`` and summarised by its ``<desc>``."""
    return (
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {CHART_WIDTH} {height:.0f}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{_esc(title)}</title>'
        f'<desc id="{chart_id}-desc">{_esc(desc)}</desc>{"".join(body)}</svg>'
    )


def _figure(chart_id: str, label: str, svg: str, caption: str = "") -> str:
    """A chart in a scrollable region named ``label``; a visible caption when it adds to
    the heading above it."""
    shown = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure id="{chart_id}-figure">{shown}{_scroll(svg, label)}</figure>'


def _bar(
    x: float,
    y: float,
    width: float,
    height: float,
    fill: str,
    tooltip: str,
    outline: tuple[str, float] = ("#1f2937", 0.5),
    **data: object,
) -> str:
    attributes = "".join(f' data-{key}="{_esc(value)}"' for key, value in data.items())
    return (
        f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(width, 0.0):.1f}" '
        f'height="{height:.1f}" fill="{fill}" stroke="{outline[0]}" '
        f'stroke-width="{outline[1]}"{attributes}><title>{_esc(tooltip)}</title></rect>'
    )


def _text_at(x: float, y: float, text: str, css: str = "", anchor: str = "start") -> str:
    klass = f' class="{css}"' if css else ""
    anchor_attr = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{x:.1f}" y="{y:.1f}"{klass}{anchor_attr}>{_esc(text)}</text>'


def _label_width(labels: Iterable[str]) -> float:
    """Room for the longest line of the names (bold 13px text, about 8.4 units a character)."""
    longest = max((len(line) for label in labels for line in _wrap(label)), default=4)
    return 16.0 + 8.4 * longest


def _row_label(
    y: float, label: str, css: str, label_width: float, single: float
) -> tuple[str, float, float]:
    """The name of a bar row starting at ``y``, right-aligned before the bars.

    Returns its SVG, the row's height (taller for a name on two lines) and the row's
    middle, where the bar (15 units high) and its figure are centred.
    """
    lines = _wrap(label)
    height = single + 14.0 * (len(lines) - 1)
    middle = y + height / 2
    first = middle + 4.5 - 7.0 * (len(lines) - 1)
    spans = "".join(
        f'<tspan x="{label_width - 8:.1f}" y="{first + 14 * index:.1f}">{_esc(line)}</tspan>'
        for index, line in enumerate(lines)
    )
    return f'<text class="{css}" text-anchor="end">{spans}</text>', height, middle


def _width(value: float | None, maximum: float, span: float) -> float:
    if value is None or value <= 0 or maximum <= 0:
        return 0.0
    return max(span * min(value, maximum) / maximum, 1.5)


@dataclass
class _Series:
    key: str
    label: str
    values: dict[int, float]
    colour: str = OTHERS_COLOUR

    @property
    def total(self) -> float:
        return sum(self.values.values())


def _series(rows: Sequence[Mapping[str, Any]], name: Callable[[str, str], str]) -> list[_Series]:
    """Long rows ``{key, label, year, usd}`` as series, largest total first."""
    found: dict[str, _Series] = {}
    for row in rows:
        year, usd = _int(row.get("year")), _number(row.get("usd"))
        if year is None or usd is None:
            continue
        key = _text(row.get("key"))
        series = found.setdefault(key, _Series(key, name(key, _text(row.get("label"))), {}))
        series.values[year] = series.values.get(year, 0.0) + usd
    ordered = sorted(found.values(), key=lambda s: (-s.total, s.key))
    for index, series in enumerate(ordered):
        series.colour = PALETTE[index] if index < MAX_SERIES else OTHERS_COLOUR
    return ordered


def _money_chart(
    chart_id: str,
    title: str,
    series: Sequence[_Series],
    years: Sequence[int],
    labels: Labels,
) -> str:
    """Bars grouped by year, one per series, each labelled with its name and amount."""
    drawn = list(series[:MAX_SERIES])
    rest = series[MAX_SERIES:]
    if rest:
        other = _Series("_other", labels("money.other", n=len(rest)), {}, OTHERS_COLOUR)
        for item in rest:
            for year, usd in item.values.items():
                other.values[year] = other.values.get(year, 0.0) + usd
        drawn.append(other)
    label_width = _label_width(s.label for s in drawn)
    span = CHART_WIDTH - label_width - 170
    maximum = max((v for s in drawn for v in s.values.values()), default=0.0)
    body: list[str] = []
    y = 6.0
    for year in years:
        body.append(_text_at(0, y + 14, str(year), "year"))
        y += 22
        present = [s for s in drawn if s.values.get(year)]
        if not present:
            body.append(_text_at(label_width, y + 13, labels.missing, "value"))
            y += 22
        for item in present:
            usd = item.values[year]
            shown = labels.usd(usd)
            width = _width(usd, maximum, span)
            text, height, middle = _row_label(y, item.label, "label", label_width, 22)
            body.append(text)
            body.append(
                _bar(
                    label_width,
                    middle - 7.5,
                    width,
                    15,
                    item.colour,
                    labels("format.label_value", label=f"{item.label}, {year}", value=shown),
                    key=item.key,
                    year=year,
                    value=_data(usd),
                )
            )
            body.append(_text_at(label_width + width + 6, middle + 4.5, shown, "value"))
            y += height
        y += 6
    largest = series[0]
    desc = labels(
        "chart.money.desc",
        title=title,
        years=labels.years(years),
        name=largest.label,
        amount=labels.usd(largest.total),
    )
    return _svg(chart_id, title, desc, y + 4, body)


def _money_table(
    table_id: str,
    caption: str,
    head: str,
    series: Sequence[_Series],
    years: Sequence[int],
    labels: Labels,
) -> str:
    rows = []
    for item in series:
        cells = "".join(
            _num(labels.usd_full(item.values.get(year)) if year in item.values else labels.missing)
            for year in years
        )
        rows.append(
            f'<tr data-key="{_esc(item.key)}"><th scope="row">{_esc(item.label)}</th>{cells}'
            f"{_num(labels.usd_full(item.total), item.total)}</tr>"
        )
    totals = [sum(s.values.get(year, 0.0) for s in series) for year in years]
    rows.append(
        f'<tr class="total"><th scope="row">{_esc(labels("col.total"))}</th>'
        + "".join(_num(labels.usd_full(total)) for total in totals)
        + _num(labels.usd_full(sum(totals)), sum(totals))
        + "</tr>"
    )
    columns = [(head, False), *((str(year), True) for year in years), (labels("col.total"), True)]
    return _table(table_id, caption, columns, rows)


def _marker(shape: str, x: float, y: float, fill: str, tooltip: str) -> str:
    title = f"<title>{_esc(tooltip)}</title>"
    common = f'fill="{fill}" stroke="#fff" stroke-width="1.5"'
    if shape == "square":
        return (
            f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" {common}>{title}</rect>'
        )
    if shape == "diamond":
        points = f"{x:.1f},{y - 8:.1f} {x + 8:.1f},{y:.1f} {x:.1f},{y + 8:.1f} {x - 8:.1f},{y:.1f}"
        return f'<polygon points="{points}" {common}>{title}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" {common}>{title}</circle>'


def _anchor_at(x: float) -> str:
    if x < 200:
        return "start"
    return "end" if x > CHART_WIDTH - 200 else "middle"


def _progress_chart(chart_id: str, result: Mapping[str, Any], labels: Labels) -> str | None:
    """Baseline → latest actual → target on one horizontal scale; None without numbers."""
    baseline, target = _number(result.get("baseline_value")), _number(result.get("target_value"))
    latest = _number(result.get("latest_actual"))
    actuals = [
        (labels.date(a.get("period_end")), value)
        for a in _maps(result.get("actuals"))
        if (value := _number(a.get("value"))) is not None
    ]
    values = [v for v in (baseline, target, latest) if v is not None] + [v for _, v in actuals]
    if not values:
        return None
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1
    left, right, line = 24.0, CHART_WIDTH - 24.0, 58.0

    def x_of(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    body = [
        f'<line x1="{left:.0f}" y1="{line:.0f}" x2="{right:.0f}" y2="{line:.0f}" '
        f'stroke="#94a3b8" stroke-width="2"/>'
    ]
    if baseline is not None and latest is not None:
        start, end = sorted((x_of(baseline), x_of(latest)))
        body.append(
            f'<rect x="{start:.1f}" y="{line - 5:.0f}" width="{end - start:.1f}" height="10" '
            f'fill="{PEER_COLOUR}"/>'
        )
    for period, value in actuals:
        tooltip = labels("results.actual_at", value=labels.plain(value), period=period)
        body.append(
            f'<circle cx="{x_of(value):.1f}" cy="{line:.0f}" r="3" fill="#0072B2">'
            f"<title>{_esc(tooltip)}</title></circle>"
        )
    year_of = {"baseline": result.get("baseline_year"), "target": result.get("target_year")}
    last_period = actuals[-1][0] if actuals else ""
    points = (
        ("target", target, "square", "#D55E00", 18.0, _text(year_of["target"])),
        ("latest", latest, "diamond", "#0072B2", 38.0, last_period),
        ("baseline", baseline, "circle", "#000000", 90.0, _text(year_of["baseline"])),
    )
    said = []
    for key, value, shape, colour, text_y, when in points:
        if value is None:
            continue
        shown = labels(f"results.{key}_at", value=labels.plain(value), period=when or "–")
        said.append(shown)
        x = x_of(value)
        body.append(_marker(shape, x, line, colour, shown))
        body.append(_text_at(x, text_y, shown, "label", _anchor_at(x)))
    title = labels("chart.results.title", indicator=_text(result.get("indicator_title")))
    progress = _number(result.get("progress"))
    desc = "; ".join(reversed(said))
    if progress is not None:
        desc += "; " + labels("results.progress_text", share=labels.share(progress))
    return _svg(chart_id, title, desc, 100, body)


def _ranked_chart(
    chart_id: str,
    title: str,
    desc: str,
    members: Sequence[tuple[str, float | None, bool, str]],
    scale: float,
    median: float | None,
    median_text: str,
    labels: Labels,
) -> str:
    """Horizontal bars, best first; ``members`` are ``(name, value, is_self, shown)``.

    The highlighted member is told apart by more than its colour: a hatched bar with a
    black outline, a bold label with a ▶ marker and "(this country)".
    """
    names = [
        f"▶ {name} {labels('peers.self')}" if is_self else name for name, _, is_self, _ in members
    ]
    label_width = _label_width(names)
    span = CHART_WIDTH - label_width - 120
    top = 26.0
    body = [
        f'<defs><pattern id="{chart_id}-hatch" patternUnits="userSpaceOnUse" width="8" '
        f'height="8" patternTransform="rotate(45)"><rect width="8" height="8" '
        f'fill="{SELF_COLOUR}"/><line x1="0" y1="0" x2="0" y2="8" stroke="#fff" '
        'stroke-width="3"/></pattern></defs>'
    ]
    y = top
    for (name, value, is_self, shown), label in zip(members, names, strict=True):
        width = _width(value, scale, span)
        css = " self" if is_self else ""
        text, height, middle = _row_label(y, label, "label" + css, label_width, 24)
        body.append(text)
        body.append(
            _bar(
                label_width,
                middle - 7.5,
                width,
                15,
                f"url(#{chart_id}-hatch)" if is_self else PEER_COLOUR,
                labels("format.label_value", label=name, value=shown),
                ("#000", 2.0) if is_self else ("#1f2937", 0.5),
                self=str(is_self).lower(),
            )
        )
        body.append(_text_at(label_width + width + 6, middle + 4.5, shown, "value" + css))
        y += height
    if median is not None:
        x = label_width + _width(median, scale, span)
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 6:.0f}" x2="{x:.1f}" y2="{y:.0f}" '
            'stroke="#000" stroke-width="1.5" stroke-dasharray="5 3"/>'
            + _text_at(x, top - 10, median_text, "small", "middle")
        )
    return _svg(chart_id, title, desc, y + 6, body)


def _share_chart(
    chart_id: str,
    title: str,
    desc: str,
    items: Sequence[tuple[str, float | None, str]],
    labels: Labels,
) -> str:
    """Horizontal 0–100% bars over a grey track, each with its name and figure."""
    label_width = _label_width(name for name, _, _ in items)
    span = CHART_WIDTH - label_width - 200
    body = []
    y = 6.0
    for name, share, shown in items:
        text, height, middle = _row_label(y, name, "label", label_width, 26)
        body.append(
            text + f'<rect x="{label_width:.1f}" y="{middle - 7.5:.1f}" width="{span:.1f}" '
            f'height="15" fill="{TRACK_COLOUR}"/>'
            + _bar(
                label_width,
                middle - 7.5,
                _width(share, 1.0, span),
                15,
                PALETTE[2],
                labels("format.label_value", label=name, value=shown),
            )
            + _text_at(label_width + span + 8, middle + 4.5, shown, "value")
        )
        y += height
    return _svg(chart_id, title, desc, y + 6, body)


# ----------------------------------------------------------------------- sections


def _figures(items: Sequence[tuple[str, str, object]]) -> str:
    """Headline figure cards ``(key, label, shown)``, as on the catalogue page."""
    cards = "".join(
        f'<div class="figure" data-figure="{key}"><span class="figure-value">{_esc(shown)}</span>'
        f'<span class="figure-label">{_esc(label)}</span></div>'
        for key, label, shown in items
    )
    return f'<div class="figures">{cards}</div>'


def _money_name(kind: str, labels: Labels) -> Callable[[str, str], str]:
    def name(key: str, label: str) -> str:
        if kind == "by_modality":
            return labels.get(f"modality.{key or 'unknown'}", label or key)
        if key in ("", "unknown"):
            return labels(f"money.unknown.{kind}")
        return label or key

    return name


def _money_section(
    profile: Mapping[str, Any],
    page: str,
    kinds: Sequence[str],
    labels: Labels,
    context: PageContext,
) -> str:
    """CD money by year, broken down each of ``kinds`` way: a chart, its table, its rows."""
    money = _map(profile.get("money"))
    title = labels(f"section.{page}_money")
    breakdowns = {
        kind: _series(_maps(money.get(kind)), _money_name(kind, labels)) for kind in kinds
    }
    if not any(breakdowns.values()):
        return _section("money", title, _empty(labels(f"empty.money.{page}"), "money"))
    parts = [_note(labels("money.note"))]
    for kind, series in breakdowns.items():
        years = sorted(
            {int(y) for y in (_int(v) for v in profile.get("years") or []) if y is not None}
            | {year for s in series for year in s.values}
        )
        block_id = f"money-{kind.replace('_', '-')}"
        chart_title = labels(f"chart.money.{kind}")
        parts.append(f'<h3 id="{block_id}">{_esc(chart_title)}</h3>')
        if not series:
            parts.append(_empty(labels("empty.money_kind"), block_id))
            continue
        chart_id = f"chart-{block_id}"
        chart = _money_chart(chart_id, chart_title, series, years, labels)
        parts.append(_figure(chart_id, chart_title, chart))
        parts.append(
            _money_table(
                f"table-{block_id}",
                labels("table.money.caption", title=chart_title),
                labels(f"col.{kind}"),
                series,
                years,
                labels,
            )
        )
        parts.append(_data_links(profile, ("transactions",), labels, context))
    return _section("money", title, "".join(parts))


def _activity_html(activity: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    return (
        f"<code>{_esc(activity.get('activity_id'))}</code> "
        f'<span class="title">{_esc(activity.get("title") or labels.missing)}</span> · '
        f"{_partner_link(activity, labels, context)}"
    )


def _basis(value: object, labels: Labels) -> str:
    parts = [p.strip() for p in re.split(r"[;,]", _text(value)) if p.strip()]
    return ", ".join(labels.get(f"basis.{p}", p) for p in parts)


def _priorities_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    priorities = _maps(profile.get("priorities"))
    if not priorities:
        return _section(
            "priorities",
            labels("section.priorities"),
            _empty(labels("empty.priorities"), "priorities"),
        )
    rows, details = [], []
    for index, priority in enumerate(priorities):
        funded = bool(priority.get("funded"))
        status = (
            f'<span class="funded">{_esc(labels("priority.funded"))}</span>'
            if funded
            else f'<strong class="unfunded-word">{_esc(labels("priority.unfunded"))}</strong>'
        )
        pid = _text(priority.get("priority_id"))
        rows.append(
            f'<tr data-priority="{_esc(pid)}" data-funded="{str(funded).lower()}">'
            f'<th scope="row"><a href="#priority-{index}">{_esc(pid)}</a></th>'
            f"<td>{_esc(priority.get('title'))}</td>"
            + _num(labels.usd_full(priority.get("usd")), priority.get("usd"))
            + _num(labels.count(priority.get("n_activities")))
            + f"<td>{status}</td></tr>"
        )
        start, end = _int(priority.get("start_year")), _int(priority.get("end_year"))
        period = labels.years([y for y in (start, end) if y is not None])
        sector = _text(priority.get("sector_code")) or labels.missing
        facts = (
            '<dl class="facts">'
            f"<div><dt>{_esc(labels('col.sector'))}</dt><dd>{_esc(sector)}</dd></div>"
            f"<div><dt>{_esc(labels('col.period'))}</dt><dd>{_esc(period)}</dd></div>"
            f"<div><dt>{_esc(labels('col.cd_disbursements'))}</dt>"
            f"<dd>{_esc(labels.usd(priority.get('usd')))}</dd></div>"
            f"<div><dt>{_esc(labels('col.activities'))}</dt>"
            f"<dd>{_esc(labels.count(priority.get('n_activities')))}</dd></div></dl>"
        )
        activities = _maps(priority.get("activities"))
        if activities:
            listed = "".join(
                f"<li>{_activity_html(a, labels, context)}"
                + (
                    f' <span class="note">({_esc(labels("priority.basis"))} '
                    f"{_esc(_basis(a.get('basis'), labels))})</span>"
                    if a.get("basis")
                    else ""
                )
                + "</li>"
                for a in activities
            )
            linked = f'<ul class="activities">{listed}</ul>'
        else:
            linked = ""
        flag = (
            ""
            if funded
            else f'<p class="unfunded" data-flag="unfunded">{_esc(labels("priority.unfunded"))}</p>'
        )
        details.append(
            f'<div class="priority" id="priority-{index}" data-priority="{_esc(pid)}">'
            f"<h3>{_esc(pid)} · {_esc(priority.get('title'))}</h3>{flag}{facts}{linked}</div>"
        )
    table = _table(
        "table-priorities",
        labels("table.priorities.caption"),
        [
            (labels("col.priority"), False),
            (labels("col.title"), False),
            (labels("col.cd_disbursements"), True),
            (labels("col.activities"), True),
            (labels("col.status"), False),
        ],
        rows,
    )
    unfunded = sum(1 for p in priorities if not p.get("funded"))
    summary = _note(labels("priorities.summary", n=len(priorities), unfunded=unfunded))
    return _section(
        "priorities",
        labels("section.priorities"),
        summary
        + table
        + "".join(details)
        + _data_links(profile, ("cd_priorities", "alignment_links"), labels, context),
    )


def _results_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    results = _maps(profile.get("results"))
    if not results:
        return _section(
            "results", labels("section.results"), _empty(labels("empty.results"), "results")
        )
    parts = [_note(labels("results.note"))]
    for index, result in enumerate(results):
        title = _text(result.get("indicator_title")) or _text(result.get("indicator_id"))
        meta = [
            labels(
                "format.label_value",
                label=labels("col.indicator"),
                value=_text(result.get("indicator_id")) or labels.missing,
            )
        ]
        for key in ("priority_id", "activity_id", "measure"):
            if result.get(key):
                meta.append(
                    labels("format.label_value", label=labels(f"col.{key}"), value=result[key])
                )
        direction = result.get("ascending")
        if isinstance(direction, bool):
            meta.append(labels("results.ascending" if direction else "results.descending"))
        parts.append(
            f'<h3 id="result-{index}">{_esc(title)}</h3>'
            f'<p class="note">{_esc(" · ".join(meta))}</p>'
        )
        chart_id = f"chart-result-{index}"
        chart = _progress_chart(chart_id, result, labels)
        if chart is None:
            parts.append(_empty(labels("empty.result_numbers"), chart_id))
        else:
            caption = labels("chart.results.caption")
            parts.append(_figure(chart_id, caption, chart, caption))
        rows = [
            f'<tr data-point="baseline"><th scope="row">{_esc(labels("results.baseline"))}</th>'
            f"<td>{_esc(_text(result.get('baseline_year')) or labels.missing)}</td>"
            f"{_num(labels.plain(result.get('baseline_value')), result.get('baseline_value'))}</tr>"
        ]
        for actual in _maps(result.get("actuals")):
            rows.append(
                f'<tr data-point="actual"><th scope="row">{_esc(labels("results.actual"))}</th>'
                f"<td>{_esc(labels.date(actual.get('period_end')))}</td>"
                f"{_num(labels.plain(actual.get('value')), actual.get('value'))}</tr>"
            )
        rows.append(
            f'<tr data-point="target"><th scope="row">{_esc(labels("results.target"))}</th>'
            f"<td>{_esc(_text(result.get('target_year')) or labels.missing)}</td>"
            f"{_num(labels.plain(result.get('target_value')), result.get('target_value'))}</tr>"
        )
        rows.append(
            f'<tr class="total" data-point="progress"><th scope="row">'
            f"{_esc(labels('results.progress'))}</th><td></td>"
            f"{_num(labels.share(result.get('progress')), result.get('progress'))}</tr>"
        )
        parts.append(
            _table(
                f"table-result-{index}",
                labels("table.results.caption", indicator=title),
                [
                    (labels("col.point"), False),
                    (labels("col.when"), False),
                    (labels("col.value"), True),
                ],
                rows,
            )
        )
    parts.append(_data_links(profile, ("results",), labels, context))
    return _section("results", labels("section.results"), "".join(parts))


def _metric_cells(row: Mapping[str, Any], metric: str, labels: Labels) -> str:
    value = row.get("value")
    return (
        _num(_text(row.get("year")) or labels.missing)
        + _num(_metric_value(metric, value, labels), value)
        + _num(labels.plain(row.get("numerator")), row.get("numerator"))
        + _num(labels.plain(row.get("denominator")), row.get("denominator"))
        + _num(labels.count(row.get("n_activities")))
        + _num(labels.count(row.get("n_activities_eligible")))
        + _coverage_cell(row.get("coverage"), labels)
    )


def _metric_columns(first: str, labels: Labels) -> list[tuple[str, bool]]:
    return [
        (first, False),
        (labels("col.year"), True),
        (labels("col.value"), True),
        (labels("col.numerator"), True),
        (labels("col.denominator"), True),
        (labels("col.activities"), True),
        (labels("col.eligible"), True),
        (labels("col.coverage"), True),
    ]


def _alignment_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    metrics = sorted(
        _maps(profile.get("metrics")), key=lambda m: _metric_order(_text(m.get("metric")))
    )
    if not metrics:
        return _section(
            "alignment", labels("section.alignment"), _empty(labels("empty.alignment"), "alignment")
        )
    rows = [
        f'<tr data-metric="{_esc(m.get("metric"))}">'
        f'<th scope="row">{_metric_head(_text(m.get("metric")), labels)}</th>'
        f"{_metric_cells(m, _text(m.get('metric')), labels)}</tr>"
        for m in metrics
    ]
    body = (
        _note(labels("alignment.note"))
        + _table(
            "table-alignment",
            labels("table.alignment.caption"),
            _metric_columns(labels("col.metric"), labels),
            rows,
            "metrics",
        )
        + _data_links(profile, ("alignment_metrics",), labels, context)
    )
    return _section("alignment", labels("section.alignment"), body)


def _quantiles_row(
    group: str, comparison: Mapping[str, Any], fmt: Callable[[object], str], labels: Labels
) -> str:
    quantiles = _map(comparison.get("quantiles"))
    rank = labels.rank(comparison.get("rank"), comparison.get("n"), comparison.get("tied", 1))
    return (
        f'<tr data-group="{_esc(comparison.get("group_kind"))}"><th scope="row">{_esc(group)}</th>'
        + _num(labels.count(comparison.get("n")))
        + f'<td class="num rank">{_esc(rank)}'
        "</td>"
        + "".join(
            _num(fmt(quantiles.get(key)), quantiles.get(key))
            for key in ("min", "q25", "median", "q75", "max")
        )
        + "</tr>"
    )


def _quantile_columns(labels: Labels) -> list[tuple[str, bool]]:
    return [
        (labels("col.group"), False),
        (labels("col.countries"), True),
        (labels("col.rank"), True),
        *((labels(f"quantile.{key}"), True) for key in ("min", "q25", "median", "q75", "max")),
    ]


def _members_table(
    table_id: str,
    caption: str,
    members: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str, Callable[[object], str]]],
    labels: Labels,
    context: PageContext,
) -> str:
    """One row per country, the profile's own in bold and said in words."""
    self_class = ' class="self"'
    rows = []
    for member in members:
        is_self = bool(member.get("is_self"))
        code = _text(member.get("code"))
        name = _country_link(code, _text(member.get("name")) or code, labels, context)
        if is_self:
            own = _esc(member.get("name") or code)
            name = f"<strong>▶ {own}</strong> {_esc(labels('peers.self'))}"
        cells = "".join(_num(fmt(member.get(key)), member.get(key)) for _, key, fmt in columns)
        rows.append(
            f'<tr{self_class if is_self else ""} data-country="{_esc(code)}">'
            f'<th scope="row">{name}</th>{cells}</tr>'
        )
    return _table(
        table_id,
        caption,
        [(labels("col.country"), False), *((label, True) for label, _, _ in columns)],
        rows,
    )


def _peer_members(
    members: Sequence[Mapping[str, Any]], key: str, fmt: Callable[[object], str]
) -> list[tuple[str, float | None, bool, str]]:
    return [
        (
            _text(m.get("name")) or _text(m.get("code")),
            _number(m.get(key)),
            bool(m.get("is_self")),
            fmt(m.get(key)),
        )
        for m in members
    ]


def _peers_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    name = _text(profile.get("name")) or _text(profile.get("code"))
    peers = sorted(_maps(profile.get("peers")), key=lambda p: _metric_order(_text(p.get("metric"))))
    parts = [_note(labels("peers.note"))]
    if not peers:
        parts.append(_empty(labels("empty.peers"), "peers"))
    for i, peer in enumerate(peers):
        metric = _text(peer.get("metric"))
        label = _metric_label(metric, labels)

        def fmt(value: object, metric: str = metric) -> str:
            return _metric_value(metric, value, labels)

        parts.append(
            f'<h3 id="peers-{i}" data-metric="{_esc(metric)}">{_esc(label)}</h3>'
            + _note(
                labels(
                    "peers.value",
                    name=name,
                    value=fmt(peer.get("value")),
                    year=_text(peer.get("year")) or labels.missing,
                )
                + " "
                + labels("peers.lower" if peer.get("lower_is_better") else "peers.higher")
            )
        )
        comparisons = _maps(peer.get("comparisons"))
        if not comparisons:
            parts.append(_empty(labels("empty.comparisons"), f"peers-{i}"))
            continue
        quantile_rows = []
        for j, comparison in enumerate(comparisons):
            group = _group_label(comparison, labels)
            rank = labels.rank(
                comparison.get("rank"), comparison.get("n"), comparison.get("tied", 1)
            )
            members = _maps(comparison.get("members"))
            quantiles = _map(comparison.get("quantiles"))
            median = _number(quantiles.get("median"))
            chart_id = f"chart-peers-{i}-{j}"
            title = labels("chart.peers.title", metric=label, group=group)
            desc = labels(
                "chart.peers.desc",
                n=labels.count(comparison.get("n")),
                name=name,
                rank=rank,
                median=fmt(median),
            )
            values = [v for v in (_number(m.get("value")) for m in members) if v is not None]
            scale = max(values, default=0.0)
            if metric not in COUNT_METRICS:
                scale = max(scale, 1.0)
            parts.append(
                f'<h4 id="peers-{i}-{j}" data-rank="{_esc(comparison.get("rank"))}">'
                f"{_esc(labels('format.label_value', label=group, value=rank))}</h4>"
                + _figure(
                    chart_id,
                    title,
                    _ranked_chart(
                        chart_id,
                        title,
                        desc,
                        _peer_members(members, "value", fmt),
                        scale,
                        median,
                        labels("peers.median", value=fmt(median)),
                        labels,
                    ),
                )
                + _members_table(
                    f"table-peers-{i}-{j}",
                    labels("table.peers.members", metric=label, group=group),
                    members,
                    [
                        (labels("col.value"), "value", fmt),
                        (labels("col.year"), "year", lambda v: _text(v) or labels.missing),
                    ],
                    labels,
                    context,
                )
            )
            quantile_rows.append(_quantiles_row(group, comparison, fmt, labels))
        parts.append(
            _table(
                f"table-quantiles-{i}",
                labels("table.peers.quantiles", metric=label),
                _quantile_columns(labels),
                quantile_rows,
                "metrics",
            )
        )
    parts.append(_shared_indicators(profile, labels, context))
    parts.append(_data_links(profile, ("alignment_metrics", "results"), labels, context))
    return _section("peers", labels("section.peers"), "".join(parts))


def _shared_indicators(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    name = _text(profile.get("name")) or _text(profile.get("code"))
    shared = _maps(profile.get("shared_indicators"))
    parts = [f'<h3 id="shared-indicators">{_esc(labels("peers.shared"))}</h3>']
    if not shared:
        return parts[0] + _empty(labels("empty.shared"), "shared-indicators")
    parts.append(_note(labels("peers.shared_note")))
    for i, indicator in enumerate(shared):
        members = _maps(indicator.get("members"))
        title = _text(indicator.get("title")) or _text(indicator.get("reference"))
        rank = labels.rank(indicator.get("rank"), indicator.get("n"), indicator.get("tied", 1))
        quantiles = _map(indicator.get("quantiles"))
        median = quantiles.get("median")
        chart_id = f"chart-shared-{i}"
        chart_title = labels("chart.shared.title", indicator=title)
        desc = labels(
            "chart.peers.desc",
            n=labels.count(indicator.get("n")),
            name=name,
            rank=rank,
            median=labels.share(median),
        )
        quantile_row = (
            f'<tr><th scope="row">{_esc(labels("group.shared"))}</th>'
            + _num(labels.count(indicator.get("n")))
            + f'<td class="num rank">{_esc(rank)}</td>'
            + "".join(
                _num(labels.share(quantiles.get(key)), quantiles.get(key))
                for key in ("min", "q25", "median", "q75", "max")
            )
            + "</tr>"
        )
        parts.append(
            f'<h4 id="shared-{i}" data-rank="{_esc(indicator.get("rank"))}">'
            + _esc(
                labels(
                    "format.label_value",
                    label=f"{title} ({_text(indicator.get('reference'))})",
                    value=rank,
                )
            )
            + "</h4>"
            + _figure(
                chart_id,
                chart_title,
                _ranked_chart(
                    chart_id,
                    chart_title,
                    desc,
                    _peer_members(members, "progress", labels.share),
                    max(_number(quantiles.get("max")) or 0.0, 1.0),
                    median,
                    labels("peers.median", value=labels.share(median)),
                    labels,
                ),
            )
            + _members_table(
                f"table-shared-{i}",
                labels("table.shared.members", indicator=title),
                members,
                [
                    (labels("col.latest_actual"), "latest_actual", labels.plain),
                    (labels("col.target"), "target_value", labels.plain),
                    (labels("col.progress"), "progress", labels.share),
                ],
                labels,
                context,
            )
            + _table(
                f"table-shared-quantiles-{i}",
                labels("table.shared.quantiles", indicator=title),
                _quantile_columns(labels),
                [quantile_row],
                "metrics",
            )
        )
    return "".join(parts)


def _pair_rows(
    pairs: Sequence[Mapping[str, Any]],
    sides: tuple[str, str],
    labels: Labels,
    context: PageContext,
    with_country: bool,
    measures: Sequence[str],
) -> list[str]:
    """Overlapping pairs: score, (country,) both activities with their partner, ``measures``."""
    rows = []
    for pair in pairs:
        country = ""
        if with_country:
            code = _text(pair.get("country_code"))
            country = _cell(
                _country_link(code, _text(pair.get("country_name")) or code, labels, context)
            )
        rows.append(
            f'<tr data-pair="{_esc(pair.get("pair_id"))}">'
            f'<th scope="row" class="num">{_esc(labels.decimal(pair.get("score")))}</th>'
            + country
            + _cell(_activity_html(_map(pair.get(sides[0])), labels, context))
            + _cell(_activity_html(_map(pair.get(sides[1])), labels, context))
            + "".join(_num(labels.share(pair.get(key)), pair.get(key)) for key in measures)
            + "</tr>"
        )
    return rows


def _duplication_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    hotspots = _maps(profile.get("hotspots"))
    pairs = _maps(profile.get("pairs"))
    parts = [f'<h3 id="hotspots">{_esc(labels("duplication.hotspots"))}</h3>']
    if hotspots:
        rows = []
        for spot in hotspots:
            sector = _text(spot.get("sector_name")) or _text(spot.get("sector_code"))
            if spot.get("sector_code") and sector != spot.get("sector_code"):
                sector += f" ({spot.get('sector_code')})"
            rows.append(
                f'<tr data-sector="{_esc(spot.get("sector_code"))}">'
                f'<th scope="row">{_esc(sector)}</th>'
                f"<td>{_esc(spot.get('priority_id') or labels.missing)}</td>"
                + _num(_text(spot.get("year")) or labels.missing)
                + _num(labels.count(spot.get("n_partners")), spot.get("n_partners"))
                + _num(labels.count(spot.get("n_activities")))
                + _num(labels.usd_full(spot.get("cd_disbursement_usd")))
                + _num(labels.decimal(spot.get("hhi")))
                + _num(labels.decimal(spot.get("effective_partners"), 1))
                + _num(labels.share(spot.get("fragmentation_ratio")))
                + _num(labels.count(spot.get("n_overlap_pairs")))
                + _num(labels.share(spot.get("overlap_value_share")))
                + "</tr>"
            )
        parts.append(_note(labels("duplication.hotspots_note")))
        parts.append(
            _table(
                "table-hotspots",
                labels("table.hotspots.caption"),
                [
                    (labels("col.sector"), False),
                    (labels("col.priority"), False),
                    *(
                        (labels(f"col.{key}"), True)
                        for key in (
                            "year",
                            "partners",
                            "activities",
                            "cd_disbursements",
                            "hhi",
                            "effective_partners",
                            "fragmentation",
                            "overlap_pairs",
                            "overlap_share",
                        )
                    ),
                ],
                rows,
            )
        )
    else:
        parts.append(_empty(labels("empty.hotspots"), "hotspots"))
    parts.append(f'<h3 id="pairs">{_esc(labels("duplication.pairs"))}</h3>')
    if pairs:
        parts.append(_note(labels("duplication.pairs_note")))
        parts.append(
            _table(
                "table-pairs",
                labels("table.pairs.caption"),
                [
                    (labels("col.score"), True),
                    (labels("col.activity_a"), False),
                    (labels("col.activity_b"), False),
                    *((labels(f"col.{key}"), True) for key in PAIR_MEASURES),
                ],
                _pair_rows(pairs, ("a", "b"), labels, context, False, PAIR_MEASURES),
            )
        )
    else:
        parts.append(_empty(labels("empty.pairs"), "pairs"))
    parts.append(
        _data_links(profile, ("duplication_metrics", "duplication_pairs"), labels, context)
    )
    return _section("duplication", labels("section.duplication"), "".join(parts))


def _quality_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    sources = _maps(profile.get("quality"))
    report = (
        f'<p class="quality-link">{_esc(labels("quality.note"))} '
        f"{_link(context.quality, labels('link.quality'), data_link='quality')}</p>"
        if context.has_quality
        else ""
    )
    if not sources:
        return _section(
            "quality",
            labels("section.quality"),
            _empty(labels("empty.quality"), "quality") + report,
        )
    rows = []
    for source in sources:
        status = _text(source.get("status"))
        css = status if status in STATUSES else "other"
        kind = _text(source.get("source"))
        rows.append(
            f'<tr data-status="{_esc(status)}"><th scope="row"><code>'
            f"{_esc(source.get('source_file'))}</code></th>"
            f"<td>{_esc(labels.get(f'source.{kind}', kind) or labels.missing)}</td>"
            f'<td><span class="status status-{css}">'
            f"{_esc(labels.get(f'status.{status}', status) or labels.missing)}</span></td>"
            + _num(labels.count(source.get("n_records")), source.get("n_records"))
            + _num(labels.count(source.get("n_accepted")), source.get("n_accepted"))
            + _num(labels.count(source.get("n_quarantined")), source.get("n_quarantined"))
            + f"<td>{_esc(source.get('reason') or '')}</td></tr>"
        )
    table = _table(
        "table-quality",
        labels("table.quality.caption"),
        [
            (labels("col.source_file"), False),
            (labels("col.source"), False),
            (labels("col.status"), False),
            (labels("col.records"), True),
            (labels("col.accepted"), True),
            (labels("col.quarantined"), True),
            (labels("col.reason"), False),
        ],
        rows,
    )
    return _section(
        "quality",
        labels("section.quality"),
        table + report + _data_links(profile, ("sources",), labels, context),
    )


# ------------------------------------------------------------------ partner pages


def _partner_alignment(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    rows_by_metric: dict[str, list[Mapping[str, Any]]] = {}
    for row in _maps(profile.get("alignment")):
        rows_by_metric.setdefault(_text(row.get("metric")), []).append(row)
    if not rows_by_metric:
        return _section(
            "alignment",
            labels("section.partner_alignment"),
            _empty(labels("empty.partner_alignment"), "alignment"),
        )
    parts = [_note(labels("alignment.partner_note"))]
    for i, metric in enumerate(sorted(rows_by_metric, key=_metric_order)):
        rows = []
        for row in rows_by_metric[metric]:
            code = _text(row.get("country_code"))
            name = _text(row.get("country_name")) or code
            rows.append(
                f'<tr data-country="{_esc(code)}"><th scope="row">'
                f"{_country_link(code, name, labels, context)}</th>"
                f"{_metric_cells(row, metric, labels)}</tr>"
            )
        parts.append(
            f'<h3 id="alignment-{i}" data-metric="{_esc(metric)}">'
            f"{_metric_head(metric, labels)}</h3>"
            + _table(
                f"table-alignment-{i}",
                labels("table.partner_alignment.caption", metric=_metric_label(metric, labels)),
                _metric_columns(labels("col.country"), labels),
                rows,
                "metrics",
            )
        )
    parts.append(_data_links(profile, ("alignment_metrics",), labels, context))
    return _section("alignment", labels("section.partner_alignment"), "".join(parts))


def _overlaps_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    overlaps = _maps(profile.get("overlaps"))
    if not overlaps:
        return _section(
            "overlaps", labels("section.overlaps"), _empty(labels("empty.overlaps"), "overlaps")
        )
    table = _table(
        "table-overlaps",
        labels("table.overlaps.caption"),
        [
            (labels("col.score"), True),
            (labels("col.country"), False),
            (labels("col.own_activity"), False),
            (labels("col.other_activity"), False),
            *((labels(f"col.{key}"), True) for key in PAIR_MEASURES[:2]),
        ],
        _pair_rows(overlaps, ("own", "other"), labels, context, True, PAIR_MEASURES[:2]),
    )
    return _section(
        "overlaps",
        labels("section.overlaps"),
        _note(labels("duplication.pairs_note"))
        + table
        + _data_links(profile, ("duplication_pairs",), labels, context),
    )


def _declarations_section(profile: Mapping[str, Any], labels: Labels, context: PageContext) -> str:
    declarations = _map(profile.get("declarations"))
    fields = _maps(declarations.get("fields"))
    if not declarations or not _number(declarations.get("n_cd_activities")):
        return _section(
            "declarations",
            labels("section.declarations"),
            _empty(labels("empty.declarations"), "declarations"),
        )
    summary = _note(
        labels(
            "declarations.summary",
            declared=labels.count(declarations.get("n_declared")),
            total=labels.count(declarations.get("n_cd_activities")),
            share=labels.share(declarations.get("share")),
        )
    )
    items = []
    rows = []
    for item in fields:
        name = _text(item.get("field"))
        label = labels.get(f"field.{name}", name)
        shown = labels(
            "declarations.known",
            known=labels.count(item.get("known")),
            total=labels.count(item.get("total")),
            share=labels.share(item.get("share")),
        )
        items.append((label, _number(item.get("share")), shown))
        rows.append(
            f'<tr data-field="{_esc(name)}"><th scope="row">{_esc(label)}</th>'
            + _num(labels.count(item.get("known")), item.get("known"))
            + _num(labels.count(item.get("total")), item.get("total"))
            + _num(labels.share(item.get("share")), item.get("share"))
            + "</tr>"
        )
    if not items:
        return _section("declarations", labels("section.declarations"), summary)
    title = labels("chart.declarations.title")
    known = [(label, share) for label, share, _ in items if share is not None]
    lowest = min(known, key=lambda pair: pair[1]) if known else None
    desc = labels(
        "chart.declarations.desc",
        n=len(items),
        field=lowest[0] if lowest else labels.missing,
        share=labels.share(lowest[1] if lowest else None),
    )
    body = (
        summary
        + _figure(
            "chart-declarations",
            title,
            _share_chart("chart-declarations", title, desc, items, labels),
        )
        + _table(
            "table-declarations",
            labels("table.declarations.caption"),
            [
                (labels("col.field"), False),
                (labels("col.known"), True),
                (labels("col.total"), True),
                (labels("col.share"), True),
            ],
            rows,
        )
        + _data_links(profile, ("partner_declarations",), labels, context)
    )
    return _section("declarations", labels("section.declarations"), body)


# ------------------------------------------------------------------------- pages


def _language_switch(stem: str, labels: Labels, context: PageContext) -> str:
    languages = (
        context.languages
        if labels.lang in context.languages
        else (
            labels.lang,
            *context.languages,
        )
    )
    items = []
    for lang in languages:
        name = load_labels(lang)("language.name")
        if lang == labels.lang:
            items.append(f'<li><span lang="{lang}" aria-current="page">{_esc(name)}</span></li>')
        else:
            items.append(
                f'<li><a href="{_esc(href(page_name(stem, lang)))}" hreflang="{lang}" '
                f'lang="{lang}" data-lang="{lang}">{_esc(name)}</a></li>'
            )
    label = _esc(labels("nav.language"))
    return f'<nav class="lang" aria-label="{label}"><ul>{"".join(items)}</ul></nav>'


def _page(
    *,
    stem: str,
    labels: Labels,
    context: PageContext,
    kind: str,
    title: str,
    heading: str,
    code: str,
    facts: Sequence[tuple[str, str]],
    sections: Sequence[tuple[str, str, str]],
) -> str:
    """The frame of every page; ``sections`` are ``(id, nav text, html)``."""
    lang = labels.lang
    is_index = stem == "index"
    other = "partner" if kind == "country" else "country"
    languages = context.languages if lang in context.languages else (lang, *context.languages)
    alternates = "".join(
        f'<link rel="alternate" hreflang="{code}" href="{_esc(href(page_name(stem, code)))}">'
        for code in languages
    )
    crumbs = [
        _link(context.catalogue, labels("link.catalogue"), data_link="catalogue"),
        _link(
            context.release_root,
            labels("link.release", version=context.version),
            data_link="release",
        ),
    ]
    if not is_index:
        crumbs.append(
            _link(page_name("index", lang), labels(f"link.index.{kind}"), data_link="index")
        )
    crumbs.append(
        _link(
            f"{context.release_root}{KINDS[other]}/{page_name('index', lang)}",
            labels(f"link.index.{other}"),
            data_link="other-index",
        )
    )
    if context.has_quality:
        crumbs.append(_link(context.quality, labels("link.quality"), data_link="quality"))
    facts_html = "".join(
        f"<div><dt>{_esc(term)}</dt><dd>{detail}</dd></div>" for term, detail in facts
    )
    nav = (
        f'<nav class="sections" aria-label="{_esc(labels("nav.sections"))}"><ul>'
        + "".join(f'<li><a href="#{key}">{_esc(text)}</a></li>' for key, text, _ in sections)
        + "</ul></nav>"
        if len(sections) > 1
        else ""
    )
    published = (
        f'<time datetime="{_esc(_text(context.published)[:10])}">'
        f"{_esc(labels.date(context.published))}</time>"
    )
    kicker = labels("page.kicker.index" if is_index else f"page.kicker.{kind}")
    description = labels("page.description", name=heading, title=context.title)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(CSP)}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_esc(title)}</title>"
        f'<meta name="description" content="{_esc(description)}">'
        '<meta name="generator" content="cdcompact">'
        f"{alternates}<style>{STYLE}</style></head><body>"
        f'<a class="skip" href="#content">{_esc(labels("page.skip"))}</a>'
        '<header id="top">'
        f'<nav class="crumbs" aria-label="{_esc(labels("nav.links"))}"><ul>'
        + "".join(f"<li>{item}</li>" for item in crumbs)
        + "</ul></nav>"
        + _language_switch(stem, labels, context)
        + f'<p class="kicker">{_esc(kicker)} · {_esc(context.title)}</p>'
        + _heading(heading, code, kind)
        + f'<p class="latest-line">{_esc(labels("page.release", version=context.version))}, '
        f"{published}</p>"
        + (f'<dl class="facts">{facts_html}</dl>' if facts else "")
        + nav
        + "</header>"
        f'<main id="content" tabindex="-1">{"".join(html for _, _, html in sections)}</main>'
        f"<footer>{_esc(labels('page.footer', version=context.version))}</footer>"
        "</body></html>\n"
    )


def _heading(heading: str, code: str, kind: str) -> str:
    """The ``<h1>``: the name, and the code when it says something more."""
    code_html = f'<span class="code">{_esc(code)}</span>' if code and code != heading else ""
    return f'<h1 id="title" data-kind="{_esc(kind)}">{_esc(heading)}{code_html}</h1>'


def _stem(profile: Mapping[str, Any]) -> str:
    stem = _text(profile.get("slug")) or _text(profile.get("code"))
    if not SLUG.fullmatch(stem) or stem == "index":
        raise ValueError(f"not a safe page name: {stem!r}")
    return stem


def _code_page(
    profile: Mapping[str, Any],
    labels: Labels,
    context: PageContext,
    kind: str,
    sections: Sequence[tuple[str, str, str]],
    facts: list[tuple[str, str]],
) -> str:
    code = _text(profile.get("code"))
    name = _text(profile.get("name")) or code
    stem = _stem(profile)
    facts = [(labels("col.code"), f"<code>{_esc(code)}</code>"), *facts]
    facts.append((labels("page.years"), _esc(labels.years(profile.get("years") or []))))
    title = labels(
        f"page.title.{kind}", name=name, code=code, title=context.title, version=context.version
    )
    return _page(
        stem=stem,
        labels=labels,
        context=context,
        kind=kind,
        title=title,
        heading=name,
        code=code,
        facts=facts,
        sections=sections,
    )


def render_country_page(
    profile: Mapping[str, Any], lang: str, labels: Labels, context: PageContext
) -> str:
    """One country's page (``countries/<slug>[.<lang>].html``)."""
    if labels.lang != lang:
        raise ValueError(f"labels are {labels.lang!r}, the page {lang!r}")
    profile = country_names_in(profile, lang)
    totals = _map(profile.get("totals"))
    groups = _map(profile.get("groups"))
    group_text = " · ".join(
        labels("group.named", kind=labels.get(f"group_kind.{kind}", kind), group=_text(group))
        for kind, group in sorted(groups.items())
    ) or labels("page.no_groups")
    headline = _section(
        "headline",
        labels("section.headline"),
        _figures(
            [
                (
                    "cd_disbursement_usd",
                    labels("headline.cd_disbursements"),
                    labels.usd(totals.get("cd_disbursement_usd")),
                ),
                ("cd_share", labels("headline.cd_share"), labels.share(totals.get("cd_share"))),
                (
                    "cd_activities",
                    labels("headline.cd_activities"),
                    labels.count(totals.get("cd_activities")),
                ),
                ("partners", labels("headline.partners"), labels.count(totals.get("partners"))),
            ]
        )
        + _note(labels("headline.note", total=labels.usd(totals.get("disbursement_usd"))))
        + _data_links(profile, ("transactions",), labels, context),
    )
    sections = [
        ("headline", labels("nav.headline"), headline),
        (
            "money",
            labels("nav.money"),
            _money_section(
                profile, "country", ("by_partner", "by_modality", "by_sector"), labels, context
            ),
        ),
        ("priorities", labels("nav.priorities"), _priorities_section(profile, labels, context)),
        ("results", labels("nav.results"), _results_section(profile, labels, context)),
        ("alignment", labels("nav.alignment"), _alignment_section(profile, labels, context)),
        ("peers", labels("nav.peers"), _peers_section(profile, labels, context)),
        ("duplication", labels("nav.duplication"), _duplication_section(profile, labels, context)),
        ("quality", labels("nav.quality"), _quality_section(profile, labels, context)),
    ]
    return _code_page(
        profile, labels, context, "country", sections, [(labels("page.groups"), _esc(group_text))]
    )


#: A partner's CD disbursements by where they went (``totals`` key, label after
#: ``headline.``): together, all its CD disbursements.
PARTNER_DESTINATIONS = (
    ("cd_to_countries_usd", "cd_to_countries"),
    ("cd_regional_usd", "cd_regional"),
    ("cd_unspecified_usd", "cd_unspecified"),
)


def render_partner_page(
    profile: Mapping[str, Any], lang: str, labels: Labels, context: PageContext
) -> str:
    """One development partner's page (``partners/<slug>[.<lang>].html``)."""
    if labels.lang != lang:
        raise ValueError(f"labels are {labels.lang!r}, the page {lang!r}")
    profile = country_names_in(profile, lang)
    totals = _map(profile.get("totals"))
    headline = _section(
        "headline",
        labels("section.headline"),
        _figures(
            [
                (
                    "cd_disbursement_usd",
                    labels("headline.cd_disbursements"),
                    labels.usd(totals.get("cd_disbursement_usd")),
                ),
                (
                    "disbursement_usd",
                    labels("headline.disbursements"),
                    labels.usd(totals.get("disbursement_usd")),
                ),
                (
                    "cd_activities",
                    labels("headline.cd_activities"),
                    labels.count(totals.get("cd_activities")),
                ),
                ("countries", labels("headline.countries"), labels.count(totals.get("countries"))),
            ]
        )
        + _figures(
            [
                (key, labels(f"headline.{label}"), labels.usd(totals.get(key)))
                for key, label in PARTNER_DESTINATIONS
            ]
        )
        + _note(labels("headline.partner_note"))
        + _data_links(profile, ("transactions",), labels, context),
    )
    sections = [
        ("headline", labels("nav.headline"), headline),
        (
            "money",
            labels("nav.partner_money"),
            _money_section(
                profile, "partner", ("by_country", "by_sector", "by_modality"), labels, context
            ),
        ),
        ("alignment", labels("nav.alignment"), _partner_alignment(profile, labels, context)),
        ("overlaps", labels("nav.overlaps"), _overlaps_section(profile, labels, context)),
        (
            "declarations",
            labels("nav.declarations"),
            _declarations_section(profile, labels, context),
        ),
        ("quality", labels("nav.quality"), _quality_section(profile, labels, context)),
    ]
    return _code_page(profile, labels, context, "partner", sections, [])


def render_profiles_index(
    kind: str,
    profiles: Sequence[Mapping[str, Any]],
    lang: str,
    labels: Labels,
    context: PageContext,
) -> str:
    """``countries/index[.<lang>].html`` or ``partners/index...``: every profile, its figures."""
    profiles = [country_names_in(profile, lang) for profile in profiles]
    if kind not in KINDS:
        raise ValueError(f"kind is 'country' or 'partner', not {kind!r}")
    if labels.lang != lang:
        raise ValueError(f"labels are {labels.lang!r}, the page {lang!r}")
    rows = []
    for profile in profiles:
        totals = _map(profile.get("totals"))
        code = _text(profile.get("code"))
        name = _text(profile.get("name")) or code
        link = _link(href(page_name(_stem(profile), lang)), name, data_profile=kind)
        cells = _num(
            labels.usd(totals.get("cd_disbursement_usd")), totals.get("cd_disbursement_usd")
        )
        if kind == "country":
            cells += _num(labels.share(totals.get("cd_share")), totals.get("cd_share"))
        else:
            for key, _ in PARTNER_DESTINATIONS:
                cells += _num(labels.usd(totals.get(key)), totals.get(key))
        cells += _num(labels.count(totals.get("cd_activities")), totals.get("cd_activities"))
        other = "partners" if kind == "country" else "countries"
        cells += _num(labels.count(totals.get(other)), totals.get(other))
        cells += _num(labels.years(profile.get("years") or []))
        rows.append(
            f'<tr data-code="{_esc(code)}"><th scope="row">{link}</th>'
            f"<td><code>{_esc(code)}</code></td>{cells}</tr>"
        )
    columns = [(labels(f"col.{kind}"), False), (labels("col.code"), False)]
    columns.append((labels("headline.cd_disbursements"), True))
    if kind == "country":
        columns.append((labels("headline.cd_share"), True))
    else:
        columns += [(labels(f"headline.{label}"), True) for _, label in PARTNER_DESTINATIONS]
    columns += [
        (labels("headline.cd_activities"), True),
        (labels("headline.partners" if kind == "country" else "headline.countries"), True),
        (labels("page.years"), True),
    ]
    body = (
        _note(labels(f"index.note.{kind}"))
        + _table("table-index", labels(f"index.caption.{kind}"), columns, rows)
        if rows
        else _empty(labels(f"empty.index.{kind}"), "index")
    )
    heading = labels(f"index.title.{kind}")
    return _page(
        stem="index",
        labels=labels,
        context=context,
        kind=kind,
        title=labels(
            "index.page_title", heading=heading, title=context.title, version=context.version
        ),
        heading=heading,
        code="",
        facts=[],
        sections=[("profiles", heading, _section("profiles", labels("section.index"), body))],
    )


def render_all(
    countries: Sequence[Mapping[str, Any]],
    partners: Sequence[Mapping[str, Any]],
    languages: Sequence[str] = (DEFAULT_LANGUAGE, "fr"),
    context: PageContext | None = None,
) -> dict[str, bytes]:
    """Every profile page and both indexes in every language, by release-relative path.

    English pages are always written (they are the ones without a language suffix).
    ``context`` is required; the partner and country pages it links to, and the
    languages, are taken from the profiles and ``languages``.
    """
    if context is None:
        raise TypeError("render_all needs the release's PageContext")
    langs = tuple(dict.fromkeys([DEFAULT_LANGUAGE, *languages]))
    labels = {lang: load_labels(lang) for lang in langs}
    context = replace(
        context,
        languages=langs,
        country_pages={_text(p.get("code")): _stem(p) for p in countries},
        partner_pages={_text(p.get("code")): _stem(p) for p in partners},
    )
    pages: dict[str, bytes] = {}

    def add(path: str, text: str) -> None:
        if path in pages:
            raise ValueError(f"two pages would be written to {path}")
        pages[path] = text.encode("utf-8")

    for kind, profiles, render in (
        ("country", countries, render_country_page),
        ("partner", partners, render_partner_page),
    ):
        folder = KINDS[kind]
        for lang in langs:
            add(
                f"{folder}/{page_name('index', lang)}",
                render_profiles_index(kind, profiles, lang, labels[lang], context),
            )
            for profile in profiles:
                add(
                    f"{folder}/{page_name(_stem(profile), lang)}",
                    render(profile, lang, labels[lang], context),
                )
    return pages


def country_names_in(value: Any, lang: str) -> Any:
    """``value`` (a profile, or any part of one) with every country's name in ``lang``:
    CLDR's name of the territory (Babel), as the IATI Country codelist has names in English
    only; a code CLDR does not know keeps the name it has. English is returned as it is.

    Country names sit in three shapes: ``code`` and ``name`` (a country's profile, the
    members of a peer group or a shared indicator), ``country_code`` and
    ``country_name`` (alignment rows, overlapping pairs), and ``key`` and ``label`` in the
    money ``by_country``."""
    if lang == DEFAULT_LANGUAGE:
        return value
    territories = Locale.parse(lang).territories

    def walk(item: Any, countries: bool = False) -> Any:
        if isinstance(item, Mapping):
            out = {key: walk(inner, key == "by_country") for key, inner in item.items()}
            for code, name in (("code", "name"), ("country_code", "country_name")):
                found = territories.get(_text(out.get(code)))
                if found and isinstance(out.get(name), str) and len(_text(out[code])) == 2:
                    out[name] = found
            if countries and territories.get(_text(out.get("key"))) and "label" in out:
                out["label"] = territories[_text(out["key"])]
            return out
        if isinstance(item, list | tuple):
            return [walk(inner, countries) for inner in item]
        return item

    return walk(value)
