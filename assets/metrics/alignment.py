"""Alignment of capacity development (CD) with country priorities and systems.

Pure pandas: :func:`alignment_links` links activities to the country CD
priorities (``alignment_links``), :func:`alignment_metrics` computes every
metric of the Alignment table of ``docs/metrics.md`` (``alignment_metrics``)
per ``country_code`` x ``partner_org_ref`` x ``year`` and for all partners
together (``partner_org_ref`` empty).

Rules (the method of ``method_version`` "1"):

* Money is disbursements and expenditure (transaction types 3 and 4) that count
  toward totals, in USD (``value_usd``; a transaction without a USD value is
  left out). A transaction goes to its own ``recipient_country`` when it states
  one, else it is split by the activity's country ``share``.
* Year: money metrics use the year of ``transaction_date``. Activity-count and
  indicator metrics (``results_framework_use``, ``government_data_use``,
  ``objectives_from_country_framework``, ``parallel_piu_count``,
  ``results_reporting``) use the years in which the CD activity disbursed to
  the country, so every metric of a country-year describes the same activities.
  ``traceability`` uses the year of the incoming-funds transaction.
* Partner: the activity's ``reporting_org_ref``, else the ``partner_org_ref``
  of its declarations (partner-submitted activities).
* Declarations apply to the year of their ``period`` (its first four-digit
  year); several declarations of one activity and year are combined (any true
  -> true, else any false -> false, else unknown). No declaration for the year,
  or an empty field, is unknown: the activity is left out of both numerator and
  denominator of that metric, never guessed.
* Indicators are counted once per activity and indicator (``indicator_id``,
  else ``result_id``) whatever the number of reporting periods; a result with
  a ``country_code`` counts for that country only, else for every country of
  its activity. Counts are not split by country share.
* Coverage: ``n_activities`` counts the activities with a known value,
  ``n_activities_eligible`` every activity the metric's definition covers
  (known or not), and ``coverage`` = n_activities ÷ n_activities_eligible
  (empty when none is eligible), so the unknowns left out are always shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from assets.harmonise.schema import empty_frame, field_names, table_frame

METHOD_VERSION = "1"

#: Confidence of each link basis (``alignment_links.confidence``).
CONFIDENCE_PARTNER_DECLARED = 1.0  # the partner listed the priority itself
CONFIDENCE_RESULT_REFERENCE = 0.9  # a result indicator refers to the priority
CONFIDENCE_SECTOR_MATCH = 0.5  # only the CD sector equals the priority's sector

MONEY_TRANSACTION_TYPES = frozenset({"3", "4"})
INCOMING_FUNDS = "1"
TECHNICAL_COOPERATION_AID_TYPES = frozenset({"D01", "D02"})
#: Aid types that are programme-based approaches by definition (budget support,
#: basket funds / pooled funding).
PROGRAMME_BASED_AID_TYPES = frozenset({"A01", "A02", "B04"})
#: Disbursement channels into government (treasury, or a government institution's
#: own account).
GOVERNMENT_CHANNELS = frozenset({"1", "2"})
#: Organisation types of the public sector (government, local government,
#: other public sector) for an implementing organisation.
GOVERNMENT_ORG_TYPES = frozenset({"10", "11", "15"})

METRICS: tuple[str, ...] = (
    "cd_share",
    "priority_alignment",
    "results_framework_use",
    "objectives_from_country_framework",
    "government_data_use",
    "coordinated_tc",
    "country_systems_use",
    "on_budget",
    "parallel_piu_count",
    "programme_based",
    "traceability",
    "results_reporting",
)
COUNTRY_SYSTEMS = ("uses_country_pfm", "uses_country_procurement", "uses_country_me")
_DECLARED_FLAGS = (
    *COUNTRY_SYSTEMS,
    "on_budget",
    "results_from_country_framework",
    "coordinated",
    "joint_programme",
    "parallel_piu",
)
_KEY = ["country_code", "partner_org_ref", "year"]
_UNIT_COLUMNS = [*_KEY, "activity_id", "weight", "hit"]


# --------------------------------------------------------------------------- helpers


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    frame = tables.get(name)
    return empty_frame(name) if frame is None else frame


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value).strip()


def _split(value: Any) -> list[str]:
    return [part.strip() for part in _text(value).split(";") if part.strip()]


def _flag(value: Any) -> bool | None:
    return None if _missing(value) else bool(value)


def _combine(values: Iterable[bool | None]) -> bool | None:
    """Any true -> true; else any false -> false; else unknown."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return any(known)


def _period_year(period: Any) -> int | None:
    match = re.search(r"\d{4}", _text(period))
    return int(match.group()) if match else None


def _year(value: Any) -> int | None:
    if _missing(value):
        return None
    year = getattr(value, "year", None)
    return int(year) if year is not None else _period_year(value)


def _activity_countries(tables: Mapping[str, pd.DataFrame]) -> dict[str, list[tuple[str, float]]]:
    """activity_id -> [(country_code, share)], equal shares where none given."""
    out: dict[str, list[tuple[str, float | None]]] = {}
    for row in _table(tables, "activity_countries").itertuples(index=False):
        share = None if _missing(row.share) else float(row.share)
        out.setdefault(str(row.activity_id), []).append((str(row.country_code), share))
    result: dict[str, list[tuple[str, float]]] = {}
    for activity_id, pairs in out.items():
        if any(share is None for _, share in pairs):
            result[activity_id] = [(c, 1.0 / len(pairs)) for c, _ in pairs]
        else:
            result[activity_id] = [(c, float(s or 0.0)) for c, s in pairs]
    return result


# --------------------------------------------------------------------------- links


def alignment_links(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """``alignment_links`` rows: one per activity, country, priority and basis.

    * ``partner_declared`` (confidence 1.0): a declaration's ``priority_ids``,
      for each country of the activity that has that priority;
    * ``result_reference`` (0.9): a result of the activity with a
      ``priority_id`` (or, for an indicator drawn from the country framework,
      a ``reference_code`` that is a priority id of the country);
    * ``sector_match`` (0.5): a CD sector of the activity (DAC 5-digit,
      vocabulary 1) equals the ``sector_code`` of a priority of one of the
      activity's countries.

    Only (country, priority) pairs that exist in ``cd_priorities`` are linked.
    """
    priorities = _table(tables, "cd_priorities")
    known = {(str(r.country_code), str(r.priority_id)) for r in priorities.itertuples(index=False)}
    by_sector: dict[tuple[str, str], list[str]] = {}
    for r in priorities.itertuples(index=False):
        if _text(r.sector_code):
            key = (str(r.country_code), _text(r.sector_code))
            by_sector.setdefault(key, []).append(str(r.priority_id))
    countries = _activity_countries(tables)
    rows: dict[tuple[str, str, str, str], float] = {}

    def add(activity_id: str, country: str, priority: str, basis: str, confidence: float) -> None:
        if (country, priority) in known:
            rows[(activity_id, country, priority, basis)] = confidence

    for d in _table(tables, "partner_declarations").itertuples(index=False):
        activity_id = str(d.activity_id)
        for priority in _split(d.priority_ids):
            for country, _ in countries.get(activity_id, []):
                add(activity_id, country, priority, "partner_declared", CONFIDENCE_PARTNER_DECLARED)

    for r in _table(tables, "results").itertuples(index=False):
        activity_id = _text(r.activity_id)
        if not activity_id:
            continue
        targets = _result_countries(r, activity_id, countries)
        for country in targets:
            priority = _text(r.priority_id)
            if not priority and _flag(r.from_country_framework):
                priority = _text(r.reference_code)
            if priority:
                add(activity_id, country, priority, "result_reference", CONFIDENCE_RESULT_REFERENCE)

    cd_activities = set(
        _table(tables, "activities").loc[
            lambda f: f["is_cd"].fillna(False).astype(bool), "activity_id"
        ]
    )
    for s in _table(tables, "activity_sectors").itertuples(index=False):
        activity_id = str(s.activity_id)
        if (
            activity_id not in cd_activities
            or not _flag(s.is_cd_sector)
            or _text(s.vocabulary) != "1"
        ):
            continue
        for country, _ in countries.get(activity_id, []):
            for priority in by_sector.get((country, _text(s.code)), []):
                add(activity_id, country, priority, "sector_match", CONFIDENCE_SECTOR_MATCH)

    records = [
        {"activity_id": a, "country_code": c, "priority_id": p, "basis": b, "confidence": conf}
        for (a, c, p, b), conf in sorted(rows.items())
    ]
    return table_frame("alignment_links", records)


# --------------------------------------------------------------------------- metrics


class _Context:
    """The inputs, resolved once: activities, countries, declarations, results."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], links: pd.DataFrame) -> None:
        activities = _table(tables, "activities")
        self.countries = _activity_countries(tables)
        self.is_cd: dict[str, bool] = {}
        self.partner: dict[str, str] = {}
        self.default_aid_type: dict[str, str] = {}
        self.ftc: dict[str, bool] = {}
        for a in activities.itertuples(index=False):
            activity_id = str(a.activity_id)
            self.is_cd[activity_id] = bool(_flag(a.is_cd))
            self.partner[activity_id] = _text(a.reporting_org_ref)
            self.default_aid_type[activity_id] = _text(a.default_aid_type)
            self.ftc[activity_id] = "ftc_flag" in _split(a.cd_basis)

        # declarations: (activity, year) -> combined flags
        grouped: dict[tuple[str, int], list[Any]] = {}
        for d in _table(tables, "partner_declarations").itertuples(index=False):
            activity_id = str(d.activity_id)
            if not self.partner.get(activity_id):
                self.partner[activity_id] = _text(d.partner_org_ref)
            year = _period_year(d.period)
            if year is not None:
                grouped.setdefault((activity_id, year), []).append(d)
        self.declared: dict[tuple[str, int], dict[str, bool | None]] = {
            key: {f: _combine(_flag(getattr(d, f)) for d in rows) for f in _DECLARED_FLAGS}
            for key, rows in grouped.items()
        }

        self.linked = {
            (str(r.activity_id), str(r.country_code)) for r in links.itertuples(index=False)
        }

        self.government: set[str] = set()
        for o in _table(tables, "participating_orgs").itertuples(index=False):
            if _text(o.role) == "4" and _text(o.org_type) in GOVERNMENT_ORG_TYPES:
                self.government.add(str(o.activity_id))

        # indicators: (activity, country) -> {indicator key: row dicts}
        self.indicators: dict[tuple[str, str], dict[str, list[Any]]] = {}
        for r in _table(tables, "results").itertuples(index=False):
            activity_id = _text(r.activity_id)
            if not activity_id:
                continue
            targets = _result_countries(r, activity_id, self.countries)
            key = _text(r.indicator_id) or _text(r.result_id)
            for country in targets:
                self.indicators.setdefault((activity_id, country), {}).setdefault(key, []).append(r)

        self.money = self._money(_table(tables, "transactions"))
        self.incoming = self._incoming(_table(tables, "transactions"))
        cd = self.money.loc[self.money["is_cd"].astype(bool)]
        self.active = cd[
            ["country_code", "partner_org_ref", "year", "activity_id"]
        ].drop_duplicates()

    def declaration(self, activity_id: str, year: int, field: str) -> bool | None:
        return self.declared.get((activity_id, year), {}).get(field)

    def _allocate(self, t: Any) -> list[tuple[str, float]]:
        own = _text(t.recipient_country)
        return [(own, 1.0)] if own else self.countries.get(str(t.activity_id), [])

    def _money(self, transactions: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for t in transactions.itertuples(index=False):
            if _text(t.transaction_type) not in MONEY_TRANSACTION_TYPES or not _flag(
                t.counts_toward_totals
            ):
                continue
            year = _year(t.transaction_date)
            if _missing(t.value_usd) or year is None:
                continue
            activity_id = str(t.activity_id)
            aid_type = _text(t.aid_type) or self.default_aid_type.get(activity_id, "")
            for country, share in self._allocate(t):
                rows.append(
                    {
                        "country_code": country,
                        "partner_org_ref": self.partner.get(activity_id, ""),
                        "year": year,
                        "activity_id": activity_id,
                        "usd": float(t.value_usd) * share,
                        "is_cd": self.is_cd.get(activity_id, False),
                        "tc": aid_type in TECHNICAL_COOPERATION_AID_TYPES
                        or self.ftc.get(activity_id, False),
                        "pba_aid_type": aid_type in PROGRAMME_BASED_AID_TYPES,
                        "government": _text(t.disbursement_channel) in GOVERNMENT_CHANNELS
                        or activity_id in self.government,
                    }
                )
        columns = [*_KEY, "activity_id", "usd", "is_cd", "tc", "pba_aid_type", "government"]
        return pd.DataFrame(rows, columns=columns)

    def _incoming(self, transactions: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for t in transactions.itertuples(index=False):
            activity_id = str(t.activity_id)
            year = _year(t.transaction_date)
            if _text(t.transaction_type) != INCOMING_FUNDS or year is None:
                continue
            if not self.is_cd.get(activity_id, False):
                continue
            for country, _ in self._allocate(t):
                rows.append(
                    {
                        "country_code": country,
                        "partner_org_ref": self.partner.get(activity_id, ""),
                        "year": year,
                        "activity_id": activity_id,
                        "weight": 1.0,
                        "hit": bool(_text(t.provider_activity_id)),
                    }
                )
        return pd.DataFrame(rows, columns=_UNIT_COLUMNS)


def _units(frame: pd.DataFrame, weight: str, hit: Iterable[bool | None]) -> pd.DataFrame:
    units = frame[[*_KEY, "activity_id"]].copy()
    units["weight"] = frame[weight].astype(float) if weight in frame else 1.0
    units["hit"] = pd.Series(list(hit), index=frame.index, dtype="object")
    return units[_UNIT_COLUMNS]


def _declared_units(ctx: _Context, money: pd.DataFrame, field: str) -> pd.DataFrame:
    hits = [
        ctx.declaration(a, int(y), field)
        for a, y in zip(money["activity_id"], money["year"], strict=True)
    ]
    return _units(money, "usd", hits)


def _indicator_units(ctx: _Context, field: str) -> pd.DataFrame:
    rows = []
    for a in ctx.active.itertuples(index=False):
        for rows_of_indicator in ctx.indicators.get((a.activity_id, a.country_code), {}).values():
            hit = _combine(_flag(getattr(r, field)) for r in rows_of_indicator)
            rows.append({**a._asdict(), "weight": 1.0, "hit": hit})
    return pd.DataFrame(rows, columns=_UNIT_COLUMNS)


def _activity_units(ctx: _Context, decide: Any) -> pd.DataFrame:
    rows = [
        {**a._asdict(), "weight": 1.0, "hit": decide(a)} for a in ctx.active.itertuples(index=False)
    ]
    return pd.DataFrame(rows, columns=_UNIT_COLUMNS)


def _aggregate(units: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Per group: numerator, denominator, n_activities (known) and eligible activities."""
    units = units.copy()
    units["known"] = units["hit"].map(lambda v: v is not None and not _missing(v))
    units["num"] = [
        w if k and bool(h) else 0.0
        for w, h, k in zip(units["weight"], units["hit"], units["known"], strict=True)
    ]
    units["den"] = units["weight"].where(units["known"], 0.0)
    all_partners = units.assign(partner_org_ref="")
    both = pd.concat([units, all_partners], ignore_index=True)
    grouped = both.groupby(_KEY, sort=False)
    found = pd.DataFrame(
        {
            "numerator": grouped["num"].sum().astype(float),
            "denominator": grouped["den"].sum().astype(float),
            "n_activities": both.loc[both["known"].astype(bool)]
            .groupby(_KEY, sort=False)["activity_id"]
            .nunique(),
            "n_activities_eligible": grouped["activity_id"].nunique(),
        }
    )
    found["n_activities"] = found["n_activities"].fillna(0).astype(int)
    found = found.reset_index()
    merged = groups.merge(found, on=_KEY, how="left")
    return merged.fillna(
        {"numerator": 0.0, "denominator": 0.0, "n_activities": 0, "n_activities_eligible": 0}
    )


def _ratio(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["value"] = [
        n / d if d else None for n, d in zip(frame["numerator"], frame["denominator"], strict=True)
    ]
    return frame


def alignment_metrics(
    tables: Mapping[str, pd.DataFrame], links: pd.DataFrame, method_version: str = METHOD_VERSION
) -> pd.DataFrame:
    """``alignment_metrics`` rows: every Alignment metric per country, partner and
    year, and for all partners together (``partner_org_ref`` empty), each with
    its numerator, denominator, activities and coverage."""
    ctx = _Context(tables, links)
    money, cd = ctx.money, ctx.money.loc[ctx.money["is_cd"].astype(bool)]
    groups = pd.concat(
        [
            money[_KEY],
            ctx.incoming[_KEY],
            money[_KEY].assign(partner_org_ref=""),
            ctx.incoming[_KEY].assign(partner_org_ref=""),
        ],
        ignore_index=True,
    ).drop_duplicates()
    groups = groups.sort_values(_KEY).reset_index(drop=True)

    def active_declared(field: str) -> Any:
        return lambda a: ctx.declaration(a.activity_id, int(a.year), field)

    def objectives(a: Any) -> bool | None:
        declared = ctx.declaration(a.activity_id, int(a.year), "results_from_country_framework")
        indicated = _combine(
            _flag(r.from_country_framework)
            for rows in ctx.indicators.get((a.activity_id, a.country_code), {}).values()
            for r in rows
        )
        if declared or indicated:
            return True
        return _combine([declared, indicated])

    def baseline_and_target(a: Any) -> bool:
        return any(
            not _missing(r.baseline_value) and not _missing(r.target_value)
            for rows in ctx.indicators.get((a.activity_id, a.country_code), {}).values()
            for r in rows
        )

    pba = [
        True if aid else ctx.declaration(a, int(y), "joint_programme")
        for a, y, aid in zip(cd["activity_id"], cd["year"], cd["pba_aid_type"], strict=True)
    ]
    tc = cd.loc[cd["tc"].astype(bool)]
    government = cd.loc[cd["government"].astype(bool)]
    units: dict[str, pd.DataFrame] = {
        "cd_share": _units(money, "usd", money["is_cd"].tolist()),
        "priority_alignment": _units(
            cd,
            "usd",
            [
                (a, c) in ctx.linked
                for a, c in zip(cd["activity_id"], cd["country_code"], strict=True)
            ],
        ),
        "results_framework_use": _indicator_units(ctx, "from_country_framework"),
        "objectives_from_country_framework": _activity_units(ctx, objectives),
        "government_data_use": _indicator_units(ctx, "government_data_source"),
        "coordinated_tc": _declared_units(ctx, tc, "coordinated"),
        "on_budget": _declared_units(ctx, government, "on_budget"),
        "parallel_piu_count": _activity_units(ctx, active_declared("parallel_piu")),
        "programme_based": _units(cd, "usd", pba),
        "traceability": ctx.incoming,
        "results_reporting": _activity_units(ctx, baseline_and_target),
    }
    frames = []
    for metric in METRICS:
        if metric == "country_systems_use":
            frame = _country_systems(ctx, cd, groups)
        else:
            frame = _ratio(_aggregate(units[metric], groups))
            if metric == "parallel_piu_count":
                frame["value"] = [
                    n if d else None
                    for n, d in zip(frame["numerator"], frame["denominator"], strict=True)
                ]
        frames.append(frame.assign(metric=metric))
    out = pd.concat(frames, ignore_index=True)
    out["method_version"] = method_version
    out["coverage"] = [
        n / e if e else None
        for n, e in zip(out["n_activities"], out["n_activities_eligible"], strict=True)
    ]
    order = {m: i for i, m in enumerate(METRICS)}
    out = out.assign(_m=out["metric"].map(order)).sort_values(
        ["country_code", "year", "partner_org_ref", "_m"], kind="stable"
    )
    return table_frame(
        "alignment_metrics", out[field_names("alignment_metrics")].reset_index(drop=True)
    )


def _country_systems(ctx: _Context, cd: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Mean of the per-system shares: numerator = sum of the known shares,
    denominator = number of systems with a known share (so value = the mean);
    n_activities = activities with at least one system declared."""
    parts = []
    for field in COUNTRY_SYSTEMS:
        agg = _ratio(_aggregate(_declared_units(ctx, cd, field), groups))
        parts.append(agg.set_index(_KEY))
    frame = groups.set_index(_KEY)
    frame["numerator"] = sum(
        (p["value"].fillna(0.0) for p in parts), start=pd.Series(0.0, index=frame.index)
    )
    frame["denominator"] = sum(
        (p["value"].notna().astype(float) for p in parts), start=pd.Series(0.0, index=frame.index)
    )
    known_any = _units(
        cd,
        "usd",
        [
            _combine(ctx.declaration(a, int(y), f) is not None or None for f in COUNTRY_SYSTEMS)
            for a, y in zip(cd["activity_id"], cd["year"], strict=True)
        ],
    )
    counts = _aggregate(known_any, groups).set_index(_KEY)
    frame["n_activities"] = counts["n_activities"]
    frame["n_activities_eligible"] = counts["n_activities_eligible"]
    return _ratio(frame.reset_index())


def _result_countries(
    row: Any, activity_id: str, countries: Mapping[str, list[tuple[str, float]]]
) -> list[str]:
    """The countries a result is about: its own country, else its activity's countries."""
    own = _text(row.country_code)
    return [own] if own else [c for c, _ in countries.get(activity_id, [])]
