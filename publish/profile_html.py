"""Country and development-partner profile pages, in English and every language with a
gettext catalogue (``publish/locale/{lang}/LC_MESSAGES/messages.po``).

The pages render the plain dicts that :mod:`publish.profiles` builds (the data contract
is in that module's docstring: country and partner profiles) and nothing else:
no table is read here. Missing keys are shown as "–" or as an empty section that says
so. One key beyond the contract is read when present: a peer entry's ``lower_is_better``
(rank 1 is then the lowest value, which the page says). :func:`render_all` gives every
page of a release, keyed by its release-relative path::

    countries/index.html  countries/index.fr.html  countries/{slug}.html  countries/{slug}.fr.html
    partners/index.html   partners/index.fr.html   partners/{slug}.html   partners/{slug}.fr.html

The markup is in the Jinja2 templates (``country.html``, ``partner.html``,
``profiles_index.html``, their frame ``profile.html``, the sections' building blocks
in ``profile_parts.html`` and the charts in ``charts.html``); this module chooses and
orders the data, lays the charts out (plain numbers) and calls :func:`publish.render.render`.
Like the catalogue page every page is self-contained: inline CSS and inline SVG, no
JavaScript, nothing loaded from anywhere (a Content-Security-Policy says so), relative
links only. Every string of a profile is data and is escaped (autoescape); slugs are
checked before they become file names. Every chart is an SVG image (role ``img``) named
by its own title and summarised by its desc, in the Okabe–Ito colour-blind safe palette, with
text on every bar and its figures in a table after it. Pages are pure functions of their
input: same dicts, same bytes.

Languages: the texts are English gettext messages; English pages have no language
suffix, every other language's pages are ``{stem}.{code}.html``, and every page links to
all its language versions. Numbers, dates and ordinals follow CLDR (Babel). Adding a
language = adding a catalogue (:mod:`publish.render`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from publish.formats import number as _number
from publish.render import (
    DEFAULT_LOCALE,
    available_locales,
    country_names_in,
    language_links,
    page_name,
    render,
    translations,
)
from publish.site import ALIGNMENT_METRICS, COUNT_METRICS, href

DEFAULT_LANGUAGE = DEFAULT_LOCALE
SLUG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
KINDS = {"country": "countries", "partner": "partners"}

#: Okabe–Ito: distinguishable with every common colour-vision deficiency.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
OTHERS_COLOUR = "#000000"
MAX_SERIES = 7  # series drawn one by one in a money chart; the rest are summed as "other"
CHART_WIDTH = 900
LOW_COVERAGE = 0.5
MAX_LABEL_CHARS = 30  # per line; a longer name goes on two lines, then is shortened with …
STATUSES = ("ok", "partial", "rejected")
#: What an overlapping pair's score is made of (a partner's overlaps carry the first two).
PAIR_MEASURES = ("sector_overlap", "date_overlap", "title_similarity")
#: A partner's CD disbursements by where they went (``totals`` keys): together, all of them.
PARTNER_DESTINATIONS = ("cd_to_countries_usd", "cd_regional_usd", "cd_unspecified_usd")


def available_languages() -> tuple[str, ...]:
    """The languages the pages can be written in, the default first."""
    return available_locales()


@dataclass(frozen=True)
class PageContext:
    """Where a profile page stands: its release, and the pages it links to.

    Paths are relative to the page (one folder below the release root, which is
    ``releases/{version}/`` under the publish root).
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


# ---------------------------------------------------------------------- plumbing


class _Record(dict[str, Any]):
    """A profile's dict as the templates read it: a key the data lacks reads as None
    (``profile.totals.cd_share``), which the templates show as "–" or an empty section."""

    def __missing__(self, key: str) -> None:
        return None

    def __getattr__(self, key: str) -> Any:
        # Jinja reads ``record.key`` as an attribute first: answering here spares it an
        # AttributeError for every key; Python's own dunder lookups stay attribute errors.
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]


BLANK = _Record()


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


def _metric_order(metric: str) -> tuple[int, str]:
    names = list(ALIGNMENT_METRICS)
    return (names.index(metric) if metric in names else len(names), metric)


def _stem(profile: Mapping[str, Any]) -> str:
    stem = _text(profile.get("slug")) or _text(profile.get("code"))
    if not SLUG.fullmatch(stem) or stem == "index":
        raise ValueError(f"not a safe page name: {stem!r}")
    return stem


# ----------------------------------------------------------------- chart layout


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


def _label_width(labels: Iterable[str]) -> float:
    """Room for the longest line of the names (bold 13px text, about 8.4 units a character)."""
    longest = max((len(line) for label in labels for line in _wrap(label)), default=4)
    return 16.0 + 8.4 * longest


def _width(value: float | None, maximum: float, span: float) -> float:
    if value is None or value <= 0 or maximum <= 0:
        return 0.0
    return max(span * min(value, maximum) / maximum, 1.5)


def _row(y: float, name: str, single: float, /, **bar: Any) -> dict[str, Any]:
    """A bar row starting at ``y``: its name's lines (two for a long name, the row then
    taller), its ``height`` and its ``middle``, where the bar and its figure are centred."""
    lines = _wrap(name)
    height = single + 14.0 * (len(lines) - 1)
    middle = y + height / 2
    first = middle + 4.5 - 7.0 * (len(lines) - 1)
    spans = [{"text": line, "y": first + 14 * i} for i, line in enumerate(lines)]
    return {"lines": spans, "height": height, "middle": middle, **bar}


# ------------------------------------------------------------------------- money


def _money_names(kind: str, lang: str) -> Mapping[str, str]:
    """What a money breakdown's keys read as: modalities, and unknown partners and sectors."""
    t = translations(lang)
    if kind == "by_modality":
        return {
            "training": t.gettext("Training"),
            "technical_assistance": t.gettext("Technical assistance"),
            "twinning": t.gettext("Twinning"),
            "peer_learning": t.gettext("Peer learning"),
            "south_south": t.gettext("South-South or triangular cooperation"),
            "change_coalition": t.gettext("Change coalition"),
            "leadership": t.gettext("Leadership development"),
            "institutional_strengthening": t.gettext("Institutional strengthening"),
            "other": t.gettext("Other"),
            "": t.gettext("Modality unknown"),
            "unknown": t.gettext("Modality unknown"),
        }
    unknown = {
        "by_partner": t.gettext("Partner unknown"),
        "by_sector": t.gettext("Sector unknown"),
        "by_country": t.gettext("Country unknown"),
    }[kind]
    return {"": unknown, "unknown": unknown}


def _series(rows: Sequence[Mapping[str, Any]], kind: str, lang: str) -> list[dict[str, Any]]:
    """Long rows ``{key, label, year, usd}`` as series, largest total first."""
    names = _money_names(kind, lang)
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        year, usd = _int(row.get("year")), _number(row.get("usd"))
        if year is None or usd is None:
            continue
        key, label = _text(row.get("key")), _text(row.get("label"))
        name = names.get(key, label or key) if kind == "by_modality" else names.get(key, label)
        series = found.setdefault(key, {"key": key, "label": name or key, "by_year": {}})
        series["by_year"][year] = series["by_year"].get(year, 0.0) + usd
    for series in found.values():
        series["total"] = sum(series["by_year"].values())
    ordered = sorted(found.values(), key=lambda s: (-s["total"], s["key"]))
    for index, series in enumerate(ordered):
        series["colour"] = PALETTE[index] if index < MAX_SERIES else OTHERS_COLOUR
    return ordered


def _money_chart(chart_id: str, series: list[dict[str, Any]], years: list[int], lang: str) -> dict:
    """Bars grouped by year, one per series; the series past :data:`MAX_SERIES` summed."""
    drawn = list(series[:MAX_SERIES])
    if rest := series[MAX_SERIES:]:
        other: dict[int, float] = {}
        for item in rest:
            for year, usd in item["by_year"].items():
                other[year] = other.get(year, 0.0) + usd
        label = translations(lang).gettext("Other (%(n)s)") % {"n": len(rest)}
        drawn.append({"key": "_other", "label": label, "by_year": other, "colour": OTHERS_COLOUR})
    label_width = _label_width(s["label"] for s in drawn)
    span = CHART_WIDTH - label_width - 170
    maximum = max((v for s in drawn for v in s["by_year"].values()), default=0.0)
    rows, y = [], 6.0
    for year in years:
        group: dict[str, Any] = {"year": year, "y": y + 14, "bars": []}
        y += 22
        present = [s for s in drawn if s["by_year"].get(year)]
        if not present:
            y += 22
        for item in present:
            usd = item["by_year"][year]
            bar = _row(y, item["label"], 22, key=item["key"], label=item["label"], usd=usd)
            bar.update(colour=item["colour"], width=_width(usd, maximum, span))
            group["bars"].append(bar)
            y += bar["height"]
        rows.append(group)
        y += 6
    return {"id": chart_id, "label_width": label_width, "years": rows, "height": y + 4}


def _money(profile: Mapping[str, Any], kinds: Sequence[str], lang: str) -> list[dict]:
    """Each breakdown of the CD money: its series, years, totals per year and chart;
    empty when no breakdown has any."""
    money = _map(profile.get("money"))
    known = {y for y in (_int(v) for v in profile.get("years") or []) if y is not None}
    out = []
    for kind in kinds:
        series = _series(_maps(money.get(kind)), kind, lang)
        years = sorted(known | {year for s in series for year in s["by_year"]})
        block = f"money-{kind.replace('_', '-')}"
        out.append(
            {
                "kind": kind,
                "id": block,
                "series": series,
                "years": years,
                "totals": [sum(s["by_year"].get(y, 0.0) for s in series) for y in years],
                "chart": _money_chart(f"chart-{block}", series, years, lang) if series else None,
            }
        )
    return out if any(item["series"] for item in out) else []


# ------------------------------------------------------------------ other charts


def _progress_chart(chart_id: str, result: Mapping[str, Any]) -> dict | None:
    """Baseline → latest actual → target on one horizontal scale; None without numbers."""
    baseline, target = _number(result.get("baseline_value")), _number(result.get("target_value"))
    latest = _number(result.get("latest_actual"))
    measured = [
        (a.get("period_end"), value)
        for a in _maps(result.get("actuals"))
        if (value := _number(a.get("value"))) is not None
    ]
    values = [v for v in (baseline, target, latest) if v is not None] + [v for _, v in measured]
    if not values:
        return None
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1
    left, right = 24.0, CHART_WIDTH - 24.0

    def x_of(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    def anchor(x: float) -> str:
        return "start" if x < 200 else "end" if x > CHART_WIDTH - 200 else "middle"

    actuals = [
        {"key": "actual", "value": value, "when": when, "dated": True, "x": x_of(value)}
        for when, value in measured
    ]
    last = measured[-1][0] if measured else None
    points = []
    for key, value, shape, colour, text_y, when, dated in (
        ("target", target, "square", "#D55E00", 18.0, result.get("target_year"), False),
        ("latest", latest, "diamond", "#0072B2", 38.0, last, bool(actuals)),
        ("baseline", baseline, "circle", "#000000", 90.0, result.get("baseline_year"), False),
    ):
        if value is not None:
            x = x_of(value)
            points.append(
                {"key": key, "value": value, "shape": shape, "colour": colour, "x": x}
                | {"text_y": text_y, "when": when, "dated": dated, "anchor": anchor(x)}
            )
    band = None
    if baseline is not None and latest is not None:
        band = sorted((x_of(baseline), x_of(latest)))
    return {
        "id": chart_id,
        "left": left,
        "right": right,
        "line": 58.0,
        "band": band,
        "actuals": actuals,
        "points": points,
    }


def _ranked_chart(
    chart_id: str, members: Sequence[Mapping[str, Any]], key: str, scale: float, lang: str
) -> dict:
    """Horizontal bars of the members' ``key``, best first; the profile's own row is
    named ``▶ name (this country)``."""
    mine = translations(lang).gettext("(this country)")
    shown = []
    for member in members:
        name = _text(member.get("name")) or _text(member.get("code"))
        is_self = bool(member.get("is_self"))
        shown.append((name, f"▶ {name} {mine}" if is_self else name, is_self, member.get(key)))
    label_width = _label_width(label for _, label, _, _ in shown)
    span = CHART_WIDTH - label_width - 120
    top, y, rows = 26.0, 26.0, []
    for name, label, is_self, value in shown:
        width = _width(_number(value), scale, span)
        row = _row(y, label, 24, name=name, is_self=is_self, value=value, width=width)
        rows.append(row)
        y += row["height"]
    return {"id": chart_id, "label_width": label_width, "top": top, "bottom": y, "rows": rows}


def _with_median(chart: dict, median: float | None, scale: float) -> dict:
    span = CHART_WIDTH - chart["label_width"] - 120
    x = None if median is None else chart["label_width"] + _width(median, scale, span)
    return chart | {"median_x": x, "height": chart["bottom"] + 6}


# ---------------------------------------------------------------------- sections


def _peers(profile: Mapping[str, Any], lang: str) -> list[_Record]:
    """The peer entries, in the metrics' order, each comparison with its chart."""
    peers = sorted(_maps(profile.get("peers")), key=lambda p: _metric_order(_text(p.get("metric"))))
    out = []
    for i, peer in enumerate(peers):
        metric = _text(peer.get("metric"))
        comparisons = []
        for j, comparison in enumerate(_maps(peer.get("comparisons"))):
            members = _maps(comparison.get("members"))
            values = [v for v in (_number(m.get("value")) for m in members) if v is not None]
            scale = max(values, default=0.0)
            if metric not in COUNT_METRICS:
                scale = max(scale, 1.0)
            median = _number(_map(comparison.get("quantiles")).get("median"))
            chart = _ranked_chart(f"chart-peers-{i}-{j}", members, "value", scale, lang)
            comparisons.append(_Record(comparison, chart=_with_median(chart, median, scale)))
        out.append(_Record(peer, comparisons=comparisons))
    return out


def _shared(profile: Mapping[str, Any], lang: str) -> list[_Record]:
    out = []
    for i, indicator in enumerate(_maps(profile.get("shared_indicators"))):
        quantiles = _map(indicator.get("quantiles"))
        scale = max(_number(quantiles.get("max")) or 0.0, 1.0)
        members = _maps(indicator.get("members"))
        chart = _ranked_chart(f"chart-shared-{i}", members, "progress", scale, lang)
        median = _number(quantiles.get("median"))
        out.append(_Record(indicator, chart=_with_median(chart, median, scale)))
    return out


def _declarations(profile: Mapping[str, Any], lang: str) -> dict | None:
    """The declared fields with their share chart; None without CD activities."""
    declarations = _map(profile.get("declarations"))
    if not declarations or not _number(declarations.get("n_cd_activities")):
        return None
    t = translations(lang)
    names = {
        "priority_ids": t.gettext("Country priorities served"),
        "uses_country_pfm": t.gettext("Uses country PFM systems"),
        "uses_country_procurement": t.gettext("Uses country procurement systems"),
        "uses_country_me": t.gettext("Uses country M&E systems"),
        "on_budget": t.gettext("On the national budget"),
        "results_from_country_framework": t.gettext("Results from a country framework"),
        "coordinated": t.gettext("Part of a coordinated programme"),
        "joint_programme": t.gettext("Joint programme or basket fund"),
        "parallel_piu": t.gettext("Parallel implementation unit"),
    }
    items = [
        _Record(item, field=_text(item.get("field")), name=names.get(_text(item.get("field"))))
        for item in _maps(declarations.get("fields"))
    ]
    for item in items:
        item["name"] = item["name"] or item["field"]
    label_width = _label_width(item["name"] for item in items)
    span = CHART_WIDTH - label_width - 200
    rows, y = [], 6.0
    for item in items:
        width = _width(_number(item.get("share")), 1.0, span)
        rows.append(_Record(_row(y, item["name"], 26, **item, width=width)))
        y += rows[-1]["height"]
    known = [row for row in rows if _number(row.get("share")) is not None]
    return {
        "n_declared": declarations.get("n_declared"),
        "n_cd_activities": declarations.get("n_cd_activities"),
        "share": declarations.get("share"),
        "lowest": min(known, key=lambda row: _number(row["share"]) or 0.0) if known else None,
        "chart": {
            "id": "chart-declarations",
            "label_width": label_width,
            "span": span,
            "rows": rows,
            "height": y + 6,
        },
    }


def _partner_alignment(profile: Mapping[str, Any]) -> list[tuple[str, list]]:
    by_metric: dict[str, list[Mapping[str, Any]]] = {}
    for row in _maps(profile.get("alignment")):
        by_metric.setdefault(_text(row.get("metric")), []).append(row)
    return [(metric, by_metric[metric]) for metric in sorted(by_metric, key=_metric_order)]


# ------------------------------------------------------------------------- pages


def _frame(stem: str, kind: str, lang: str, context: PageContext) -> dict[str, Any]:
    """What every page's frame needs: its languages, the links between pages."""
    other = "partner" if kind == "country" else "country"

    def pages(kind: str, stems: Mapping[str, str]) -> dict[str, str]:
        folder = f"{context.release_root}{KINDS[kind]}/"
        return {code: folder + href(page_name(stem, lang)) for code, stem in stems.items()}

    return {
        "context": context,
        "stem": stem,
        "kind": kind,
        "languages": language_links(stem, lang, context.languages),
        # the catalogue, the release's page and the quality report in the page's language
        "home": {
            "catalogue": context.catalogue.removesuffix("index.html") + page_name("index", lang),
            "release": context.release_root
            + ("" if lang == DEFAULT_LANGUAGE else page_name("index", lang)),
            "quality": context.quality.removesuffix("index.html") + page_name("index", lang),
        },
        "index_page": page_name("index", lang),
        "other_index": f"{context.release_root}{KINDS[other]}/{page_name('index', lang)}",
        "links": {
            "country": pages("country", context.country_pages),
            "partner": pages("partner", context.partner_pages),
        },
        "count_metrics": COUNT_METRICS,
        "low_coverage": LOW_COVERAGE,
        "known_statuses": STATUSES,
        "blank": BLANK,
        "pair_measures": PAIR_MEASURES,
    }


def _profile_page(
    template: str, profile: Mapping[str, Any], lang: str, context: PageContext, **data: Any
) -> str:
    kind = "country" if template == "country.html" else "partner"
    rows = _map(profile.get("rows"))
    extracts = {
        table: context.release_root + href(path)
        for table, path in rows.items()
        if isinstance(path, str) and path
    }
    return render(
        template,
        locale=lang,
        profile=profile,
        extracts=extracts,
        **_frame(_stem(profile), kind, lang, context),
        **data,
    )


def render_country_page(profile: Mapping[str, Any], lang: str, context: PageContext) -> str:
    """One country's page (``countries/{slug}[.{lang}].html``)."""
    translations(lang)  # an unknown language is refused before anything is rendered
    profile = _records(profile, lang)
    results = [
        (result, _progress_chart(f"chart-result-{i}", result))
        for i, result in enumerate(_maps(profile.get("results")))
    ]
    return _profile_page(
        "country.html",
        profile,
        lang,
        context,
        money=_money(profile, ("by_partner", "by_modality", "by_sector"), lang),
        unfunded=sum(1 for p in _maps(profile.get("priorities")) if not p.get("funded")),
        results=results,
        metrics=sorted(
            [*_maps(profile.get("metrics")), *_maps(profile.get("unmeasured"))],
            key=lambda m: _metric_order(_text(m.get("metric"))),
        ),
        peers=_peers(profile, lang),
        shared=_shared(profile, lang),
    )


def render_partner_page(profile: Mapping[str, Any], lang: str, context: PageContext) -> str:
    """One development partner's page (``partners/{slug}[.{lang}].html``)."""
    translations(lang)
    profile = _records(profile, lang)
    return _profile_page(
        "partner.html",
        profile,
        lang,
        context,
        money=_money(profile, ("by_country", "by_sector", "by_modality"), lang),
        alignment=_partner_alignment(profile),
        declarations=_declarations(profile, lang),
    )


def render_profiles_index(
    kind: str, profiles: Sequence[Mapping[str, Any]], lang: str, context: PageContext
) -> str:
    """``countries/index[.{lang}].html`` or ``partners/index...``: every profile, its figures."""
    if kind not in KINDS:
        raise ValueError(f"kind is 'country' or 'partner', not {kind!r}")
    translations(lang)
    rows = [
        {"profile": profile, "href": href(page_name(_stem(profile), lang))}
        for profile in (_records(p, lang) for p in profiles)
    ]
    return render(
        "profiles_index.html", locale=lang, rows=rows, **_frame("index", kind, lang, context)
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
    for lang in langs:
        translations(lang)
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

    for kind, profiles, page in (
        ("country", countries, render_country_page),
        ("partner", partners, render_partner_page),
    ):
        folder = KINDS[kind]
        for lang in langs:
            add(
                f"{folder}/{page_name('index', lang)}",
                render_profiles_index(kind, profiles, lang, context),
            )
            for profile in profiles:
                add(f"{folder}/{page_name(_stem(profile), lang)}", page(profile, lang, context))
    return pages


def _records(value: Any, lang: str) -> Any:
    """``value`` with its dicts as :class:`_Record` and its countries named in ``lang``."""
    return country_names_in(value, lang, _Record)
