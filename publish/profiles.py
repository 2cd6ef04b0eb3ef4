"""Country and development-partner profiles: the figures behind the profile pages.

Pure functions of the release's tables (no Dagster, no files). :func:`build_profiles`
gives one plain, JSON-ready dict per country and per partner (only str, int, float,
bool, None, list and dict; never NaN), which :mod:`publish.profile_html` renders, and
the CSV extracts of the rows every figure comes from, so that a reader can go from a
number on a page to the rows of the data package behind it.

The contract (keys of a country profile; money rows are ``{key, label, year, usd}``):

- ``kind`` ("country"), ``code``, ``name``, ``slug`` (file stem), ``groups`` (peer-group
  kind -> group), ``years``, ``totals`` (``disbursement_usd``, ``cd_disbursement_usd``,
  ``cd_share``, ``cd_activities``, ``partners``);
- ``money``: ``by_partner``, ``by_modality``, ``by_sector`` (CD money per key and year);
- ``priorities``: ``priority_id``, ``title``, ``sector_code``, ``start_year``,
  ``end_year``, ``usd``, ``n_activities``, ``funded``, ``activities`` (``activity_id``,
  ``title``, ``partner``, ``partner_code``, ``basis``);
- ``results``: per indicator ``baseline_*``, ``target_*``, ``actuals`` (``period_end``,
  ``value``), ``latest_actual``, ``progress`` ((latest - baseline) / (target -
  baseline)), ``reference``;
- ``metrics``: the alignment metrics of all partners together, each country's latest
  year, with ``numerator``, ``denominator``, ``value``, ``n_activities``,
  ``n_activities_eligible``, ``coverage``;
- ``peers``: per metric ``value``, ``lower_is_better`` and ``comparisons`` (per group:
  ``group_kind``, ``group``, ``n``, ``rank``, ``quantiles`` ``min``/``q25``/``median``/
  ``q75``/``max``, ``members`` with ``is_self``);
- ``shared_indicators``: ``reference``, ``title``, ``n``, ``rank``, ``quantiles``,
  ``members`` (``progress``, ``latest_actual``, ``target_value``, ``is_self``);
- ``hotspots`` (duplication metrics by sector, latest year), ``pairs`` (overlapping
  effort: ``score``, ``a`` and ``b`` activities), ``quality`` (the sources behind the
  page), ``rows`` (table -> release-relative path of its extract).

A partner profile has ``kind`` ("partner"), ``code``, ``name``, ``slug``, ``years``,
``totals`` (``disbursement_usd``, ``cd_disbursement_usd``, ``cd_activities``,
``countries``), ``money`` (``by_country``, ``by_sector``, ``by_modality``),
``alignment`` (its own metrics per country), ``overlaps`` (``own`` and ``other``
activity of each pair), ``declarations`` (``n_cd_activities``, ``n_declared``,
``share``, ``fields`` with ``known``/``total``/``share``), ``quality`` and ``rows``.

Money follows metrics.md and the release's headline figures
(:func:`publish.headline.disbursements`): CD disbursements (transaction types 3 and 4
that count toward totals, in USD), by the year of the transaction, split across an
activity's countries by ``share`` when the transaction names no country, and across
its DAC sectors by their ``share``. A partner is the activity's reporting organisation.

Peer comparison never combines metrics into a score: for each alignment metric, a
country is ranked among all compact countries and among the peers of each group it
belongs to (``profiles.peer_groups`` in the configuration), with the quantiles of the
group beside the rank.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from assets.harmonise.schema import table_schema
from publish.files import CsvRows
from publish.headline import disbursements

#: Alignment metrics where a lower value is the better one (ranks count from the lowest).
LOWER_IS_BETTER = frozenset({"parallel_piu_count"})
#: Columns of ``partner_declarations`` that are not declarations: the key, the list of
#: whom an activity is coordinated with (only meaningful when it is), and provenance.
_NOT_DECLARED = frozenset(
    {"activity_id", "partner_org_ref", "period", "coordinated_with", "source", "source_file",
     "source_sha256", "source_ref"}
)  # fmt: skip
#: Declaration fields whose completeness a partner page shows, in the schema's order.
DECLARATION_FIELDS = tuple(
    f["name"] for f in table_schema("partner_declarations")["fields"]
    if f["name"] not in _NOT_DECLARED
)  # fmt: skip
UNKNOWN = "unknown"
_DAC5 = re.compile(r"^\d{5}$")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ProfileOptions:
    """What the profiles need besides the tables."""

    #: ISO 3166-1 alpha-2 code -> name (the Country codelist).
    country_names: Mapping[str, str] = field(default_factory=dict)
    #: DAC 5-digit purpose code -> name, for sectors the tables do not name.
    sector_names: Mapping[str, str] = field(default_factory=dict)
    #: Peer groups: kind (``region``, ``income``...) -> group name -> country codes.
    peer_groups: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    #: The compact's countries: each gets a page, and they are the peers. Empty: every
    #: country the data names.
    countries: tuple[str, ...] = ()


@dataclass
class Profiles:
    """Every profile, and the row extracts their pages link to."""

    countries: list[dict[str, Any]]
    partners: list[dict[str, Any]]
    #: Release-relative path -> CSV bytes (``countries/GH/rows/results.csv``...).
    rows: dict[str, bytes]


def slug(code: str) -> str:
    """A file-name stem for a country code or an organisation identifier."""
    return _SAFE.sub("_", code).strip("._") or "_"


# --------------------------------------------------------------------------- helpers


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    frame = tables.get(name)
    return frame if frame is not None else pd.DataFrame()


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: missing values become None, numpy scalars Python ones."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    value = _plain(value)
    return "" if value is None else str(value).strip()


def _number(value: Any) -> float | None:
    value = _plain(value)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _usd(value: float) -> float:
    return round(float(value), 2)


def _long(frame: pd.DataFrame, key: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """``[{key, label, year, usd}]`` summed by key and year, largest key first."""
    sums: dict[tuple[str, int], float] = {}
    for k, year, usd in zip(
        frame[key].tolist(), frame["year"].tolist(), frame["usd"].tolist(), strict=True
    ):
        sums[(str(k), int(year))] = sums.get((str(k), int(year)), 0.0) + float(usd)
    totals: dict[str, float] = {}
    for (k, _), usd in sums.items():
        totals[k] = totals.get(k, 0.0) + usd
    order = {k: i for i, k in enumerate(sorted(totals, key=lambda k: (-totals[k], k)))}
    return [
        {"key": k, "label": labels.get(k) or k, "year": year, "usd": _usd(usd)}
        for (k, year), usd in sorted(sums.items(), key=lambda item: (order[item[0][0]], item[0][1]))
    ]


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    """Min, quartiles and max (linear interpolation, as pandas and spreadsheets do)."""
    series = pd.Series(values, dtype="float64")
    found = {
        "min": series.min(),
        "q25": series.quantile(0.25),
        "median": series.quantile(0.5),
        "q75": series.quantile(0.75),
        "max": series.max(),
    }
    return {k: round(float(v), 6) for k, v in found.items()}


def _rank(value: float, values: Iterable[float], lower_is_better: bool) -> int:
    """1 for the best; ties share the best rank."""
    if lower_is_better:
        return 1 + sum(1 for v in values if v < value)
    return 1 + sum(1 for v in values if v > value)


def _records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    present = [c for c in columns if c in frame.columns]
    return [
        {c: _plain(v) for c, v in zip(present, row, strict=True)}
        for row in frame[present].itertuples(index=False, name=None)
    ]


# --------------------------------------------------------------------------- context


class _Groups(dict[str, pd.DataFrame]):
    """Frames by key; a key with no rows gives an empty frame of the same columns."""

    def __init__(self, groups: Mapping[str, pd.DataFrame], empty: pd.DataFrame) -> None:
        super().__init__(groups)
        self.empty = empty

    def __missing__(self, key: str) -> pd.DataFrame:
        return self.empty


def _split(frame: pd.DataFrame, column: str, empty: pd.DataFrame) -> _Groups:
    if frame.empty:
        return _Groups({}, empty)
    return _Groups({str(k): g for k, g in frame.groupby(column, sort=False)}, empty)


class _Data:
    """The tables, joined once for every profile."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], options: ProfileOptions) -> None:
        # Row positions are how extracts find their rows (:class:`CsvRows`).
        tables = {name: frame.reset_index(drop=True) for name, frame in tables.items()}
        self.tables = tables
        self.options = options
        self._csv: dict[str, CsvRows] = {}
        activities = _table(tables, "activities")
        self.activities = (
            activities.drop_duplicates("activity_id").set_index("activity_id", drop=False)
            if not activities.empty
            else pd.DataFrame(columns=["activity_id", "title", "reporting_org_ref"])
        )
        partner = (
            self.activities["reporting_org_ref"].astype("string").fillna("")
            if "reporting_org_ref" in self.activities
            else pd.Series(dtype="string")
        )
        self.partner_of: dict[str, str] = {str(k): str(v) for k, v in partner.items()}
        self.partner_names: dict[str, str] = {}
        if "reporting_org_name" in self.activities:
            for ref, name in zip(
                self.activities["reporting_org_ref"],
                self.activities["reporting_org_name"],
                strict=True,
            ):
                if _text(ref) and _text(name):
                    self.partner_names.setdefault(_text(ref), _text(name))
        money = disbursements(tables)
        money = money[money["country_code"].notna() & money["year"].notna()].copy()
        money["country_code"] = money["country_code"].astype(str)
        money["year"] = money["year"].astype(int)
        money["partner"] = money["activity_id"].map(self.partner_of).fillna("")
        modality = (
            self.activities["modality"].astype("string").fillna("")
            if "modality" in self.activities
            else pd.Series(dtype="string")
        )
        money["modality"] = (
            money["activity_id"].map({str(k): str(v) for k, v in modality.items()}).fillna("")
        )
        money.loc[money["modality"].eq(""), "modality"] = UNKNOWN
        self.all_money = money
        self.cd = money[money["is_cd"].astype(bool)].reset_index(drop=True)
        self.sector_name_of: dict[str, str] = {}
        self.sectors = self._sectors(_table(tables, "activity_sectors"))
        self.cd_by_sector = self._by_sector(self.cd)
        self.countries_of = self._countries_of(_table(tables, "activity_countries"))
        titles = self.activities["title"] if "title" in self.activities else pd.Series()
        self.title_of = {str(k): _text(v) for k, v in titles.items()}
        self.cd_ids = set(self.cd["activity_id"].astype(str))
        #: (country, priority) -> activity -> the bases of its links.
        self.links: dict[tuple[str, str], dict[str, list[str]]] = {}
        links = _table(tables, "alignment_links")
        if not links.empty:
            for activity_id, country, priority, basis in zip(
                links["activity_id"].tolist(),
                links["country_code"].tolist(),
                links["priority_id"].tolist(),
                links["basis"].tolist(),
                strict=True,
            ):
                bases = self.links.setdefault((str(country), str(priority)), {})
                bases.setdefault(str(activity_id), []).append(str(basis))
        empty_money = self.all_money.iloc[0:0]
        empty_sector = self.cd_by_sector.iloc[0:0]
        self.money_of_country = _split(self.all_money, "country_code", empty_money)
        self.money_of_partner = _split(self.all_money, "partner", empty_money)
        self.cd_of_country = _split(self.cd, "country_code", empty_money)
        self.cd_of_partner = _split(self.cd, "partner", empty_money)
        self.sector_of_country = _split(self.cd_by_sector, "country_code", empty_sector)
        self.sector_of_partner = _split(self.cd_by_sector, "partner", empty_sector)

    def csv_rows(self, table: str) -> CsvRows:
        """The table's CSV rendered once, for every extract of it."""
        if table not in self._csv:
            self._csv[table] = CsvRows(table, self.tables[table])
        return self._csv[table]

    def _sectors(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns = ["activity_id", "sector_code", "sector_share", "code_name"]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        dac = frame[
            frame["vocabulary"].astype(str).eq("1") & frame["code"].astype(str).str.match(_DAC5)
        ]
        out = dac.rename(columns={"code": "sector_code", "share": "sector_share"})
        out = out.assign(sector_code=out["sector_code"].astype(str))
        for code, name in zip(out["sector_code"], out["code_name"], strict=True):
            if _text(name):
                self.sector_name_of.setdefault(code, _text(name))
        return out[columns]

    def sector_label(self, code: str) -> str:
        if code == UNKNOWN:
            return UNKNOWN
        return self.options.sector_names.get(code) or self.sector_name_of.get(code) or code

    def _by_sector(self, money: pd.DataFrame) -> pd.DataFrame:
        """CD money split over DAC sectors; what no sector covers goes to ``unknown``."""
        if money.empty:
            return money.assign(sector_code=pd.Series(dtype="string"))
        joined = money.merge(self.sectors, on="activity_id", how="left")
        joined["sector_share"] = joined["sector_share"].astype("float64")
        with_sector = joined[joined["sector_code"].notna()].copy()
        with_sector["usd"] = with_sector["usd"] * with_sector["sector_share"].fillna(0.0)
        shares = (
            joined.assign(s=joined["sector_share"].fillna(0.0))
            .groupby(["activity_id"], dropna=False)["s"]
            .sum()
        )
        rest = money.copy()
        rest["usd"] = rest["usd"] * (1.0 - rest["activity_id"].map(shares).fillna(0.0).clip(0, 1))
        rest = rest[rest["usd"].abs() > 0.005].assign(sector_code=UNKNOWN)
        return pd.concat(
            [with_sector.drop(columns=["sector_share", "code_name"]), rest], ignore_index=True
        )

    @staticmethod
    def _countries_of(frame: pd.DataFrame) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        if frame.empty:
            return out
        for activity_id, country in zip(frame["activity_id"], frame["country_code"], strict=True):
            out.setdefault(str(country), set()).add(str(activity_id))
        return out

    def country_name(self, code: str) -> str:
        return self.options.country_names.get(code) or code

    def partner_name(self, code: str) -> str:
        return self.partner_names.get(code) or code

    def activity(self, activity_id: str) -> dict[str, Any]:
        partner = self.partner_of.get(activity_id, "")
        return {
            "activity_id": activity_id,
            "title": self.title_of.get(activity_id, ""),
            "partner": self.partner_name(partner) if partner else "",
            "partner_code": partner,
        }


# --------------------------------------------------------------------------- countries


def _country_codes(data: _Data) -> list[str]:
    if data.options.countries:
        return sorted(set(data.options.countries))
    codes: set[str] = set(data.cd["country_code"])
    for name in ("alignment_metrics", "cd_priorities", "results", "activity_countries"):
        frame = _table(data.tables, name)
        if not frame.empty and "country_code" in frame:
            codes |= {c for c in frame["country_code"].dropna().astype(str) if c}
    return sorted(codes)


def _groups_of(code: str, options: ProfileOptions) -> dict[str, str]:
    found: dict[str, str] = {}
    for kind, groups in options.peer_groups.items():
        for group, members in groups.items():
            if code in members:
                found[kind] = group
                break
    return found


def _totals(data: _Data, code: str) -> dict[str, Any]:
    money = data.money_of_country[code]
    cd = data.cd_of_country[code]
    total = float(money["usd"].sum())
    cd_total = float(cd["usd"].sum())
    activities = data.activities
    ids = data.countries_of.get(code, set())
    cd_activities = (
        int(activities.loc[activities.index.isin(ids), "is_cd"].fillna(False).astype(bool).sum())
        if "is_cd" in activities
        else 0
    )
    return {
        "disbursement_usd": _usd(total),
        "cd_disbursement_usd": _usd(cd_total),
        "cd_share": round(cd_total / total, 4) if total else None,
        "cd_activities": cd_activities,
        "partners": int(cd.loc[cd["partner"] != "", "partner"].nunique()),
    }


def _priorities(data: _Data, code: str) -> list[dict[str, Any]]:
    priorities = _table(data.tables, "cd_priorities")
    if priorities.empty:
        return []
    own = priorities[priorities["country_code"].astype(str) == code].sort_values("priority_id")
    money = data.cd_of_country[code].groupby("activity_id")["usd"].sum().to_dict()
    out = []
    for row in own.to_dict("records"):
        priority = str(row["priority_id"])
        bases = data.links.get((code, priority), {})
        activity_ids = sorted(a for a in bases if a in data.cd_ids or a in data.title_of)
        activities = [
            {**data.activity(a), "basis": ", ".join(sorted(set(bases[a])))} for a in activity_ids
        ]
        out.append(
            {
                "priority_id": priority,
                "title": _text(row.get("title")),
                "sector_code": _text(row.get("sector_code")) or None,
                "start_year": _int(row.get("start_year")),
                "end_year": _int(row.get("end_year")),
                "usd": _usd(sum(float(money.get(a, 0.0)) for a in activity_ids)),
                "n_activities": len(activity_ids),
                "funded": bool(activity_ids),
                "activities": activities,
            }
        )
    return out


def _progress(baseline: float | None, target: float | None, actual: float | None) -> float | None:
    if baseline is None or target is None or actual is None or target == baseline:
        return None
    return round((actual - baseline) / (target - baseline), 4)


def _indicators(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Results rows grouped into indicators: baseline, target and the actuals over time."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in frame.to_dict("records"):
        row = {k: _plain(v) for k, v in record.items()}
        key = _text(row.get("indicator_id")) or _text(row.get("result_id"))
        groups.setdefault((key, _text(row.get("activity_id"))), []).append(row)
    out = []
    for (key, activity), rows in sorted(groups.items()):
        rows.sort(key=lambda r: (r.get("period_end") or "", _text(r.get("result_id"))))

        def first(column: str, rows: list[dict[str, Any]] = rows) -> Any:
            return next((r[column] for r in rows if r.get(column) is not None), None)

        actuals = [
            {"period_end": r.get("period_end"), "value": _number(r.get("actual_value"))}
            for r in rows
            if _number(r.get("actual_value")) is not None
        ]
        baseline, target = _number(first("baseline_value")), _number(first("target_value"))
        latest = actuals[-1]["value"] if actuals else None
        ascending = first("ascending")
        out.append(
            {
                "result_id": _text(first("result_id")),
                "indicator_id": key,
                "indicator_title": _text(first("indicator_title")) or _text(first("result_title")),
                "priority_id": _text(first("priority_id")) or None,
                "activity_id": activity or None,
                "measure": _text(first("measure")) or None,
                "ascending": None if ascending is None else bool(ascending),
                "baseline_year": _int(first("baseline_year")),
                "baseline_value": baseline,
                "target_year": _int(first("target_year")),
                "target_value": target,
                "actuals": actuals,
                "latest_actual": latest,
                "progress": _progress(baseline, target, latest),
                "reference": _reference(first("reference_vocabulary"), first("reference_code")),
            }
        )
    return out


def _reference(vocabulary: Any, code: Any) -> str | None:
    code_text = _text(code)
    if not code_text:
        return None
    vocabulary_text = _text(vocabulary)
    return f"{vocabulary_text}:{code_text}" if vocabulary_text else code_text


def _latest_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """Each (country, partner, metric)'s latest year with a row."""
    if frame.empty:
        return frame
    latest = frame.groupby(
        [frame["country_code"], frame["partner_org_ref"].fillna(""), frame["metric"]]
    )["year"].transform("max")
    return frame[frame["year"] == latest]


_METRIC_COLUMNS = (
    "metric",
    "year",
    "numerator",
    "denominator",
    "value",
    "n_activities",
    "n_activities_eligible",
    "coverage",
)


def _peers(
    data: _Data,
    code: str,
    own: list[dict[str, Any]],
    latest_values: Mapping[str, Mapping[str, tuple[float, int]]],
    countries: Sequence[str],
) -> list[dict[str, Any]]:
    options = data.options
    out = []
    for metric in own:
        value = _number(metric["value"])
        if value is None:
            continue
        values = latest_values.get(metric["metric"], {})
        lower = metric["metric"] in LOWER_IS_BETTER
        groups: list[tuple[str, str, Sequence[str]]] = [("all", "all", list(countries))]
        for kind, group in _groups_of(code, options).items():
            groups.append((kind, group, list(options.peer_groups[kind][group])))
        comparisons = []
        for kind, group, members in groups:
            present = {c: values[c] for c in members if c in values}
            if code not in present:
                continue
            ordered = sorted(
                present.items(), key=lambda item: (item[1][0] if lower else -item[1][0], item[0])
            )
            numbers = [v for v, _ in present.values()]
            comparisons.append(
                {
                    "group_kind": kind,
                    "group": group,
                    "n": len(present),
                    "rank": _rank(value, numbers, lower),
                    "quantiles": _quantiles(numbers),
                    "members": [
                        {
                            "code": c,
                            "name": data.country_name(c),
                            "value": round(v, 4),
                            "year": y,
                            "is_self": c == code,
                        }
                        for c, (v, y) in ordered
                    ],
                }
            )
        out.append(
            {
                "metric": metric["metric"],
                "year": metric["year"],
                "value": value,
                "lower_is_better": lower,
                "comparisons": comparisons,
            }
        )
    return out


def _shared_indicators(
    data: _Data, code: str, by_country: Mapping[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Indicators with one reference reported by two countries or more, with progress."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for country, indicators in by_country.items():
        for indicator in indicators:
            reference = indicator.get("reference")
            if reference and indicator["progress"] is not None:
                found.setdefault(reference, {}).setdefault(country, indicator)
    out = []
    for reference, countries in sorted(found.items()):
        if code not in countries or len(countries) < 2:
            continue
        ordered = sorted(countries.items(), key=lambda item: (-item[1]["progress"], item[0]))
        progress = countries[code]["progress"]
        out.append(
            {
                "reference": reference,
                "title": countries[code]["indicator_title"],
                "n": len(countries),
                "rank": _rank(progress, [i["progress"] for i in countries.values()], False),
                "quantiles": _quantiles([i["progress"] for i in countries.values()]),
                "members": [
                    {
                        "code": c,
                        "name": data.country_name(c),
                        "progress": i["progress"],
                        "latest_actual": i["latest_actual"],
                        "target_value": i["target_value"],
                        "is_self": c == code,
                    }
                    for c, i in ordered
                ],
            }
        )
    return out


def _hotspots(data: _Data, code: str) -> list[dict[str, Any]]:
    frame = _table(data.tables, "duplication_metrics")
    if frame.empty:
        return []
    own = frame[(frame["country_code"].astype(str) == code) & frame["sector_code"].notna()]
    if own.empty:
        return []
    own = own[own["year"] == own["year"].max()].sort_values(
        ["n_partners", "cd_disbursement_usd", "sector_code"],
        ascending=[False, False, True],
        kind="stable",
    )
    out = []
    for record in _records(
        own,
        [
            "sector_code",
            "priority_id",
            "year",
            "n_partners",
            "n_activities",
            "cd_disbursement_usd",
            "hhi",
            "effective_partners",
            "fragmentation_ratio",
            "n_overlap_pairs",
            "overlap_value_share",
        ],
    ):
        record["sector_name"] = data.sector_label(str(record["sector_code"]))
        out.append(record)
    return out


def _pairs(data: _Data, frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    ordered = frame.sort_values(["score", "pair_id"], ascending=[False, True], kind="stable")
    for r in ordered.itertuples(index=False):
        out.append(
            {
                "pair_id": str(r.pair_id),
                "kind": str(r.kind),
                "country_code": _text(r.country_code),
                "score": _number(r.score),
                "sector_overlap": _number(r.sector_overlap),
                "date_overlap": _number(r.date_overlap),
                "title_similarity": _number(r.title_similarity),
                "a": data.activity(str(r.activity_id_a)),
                "b": data.activity(str(r.activity_id_b)),
            }
        )
    return out


def _overlapping(data: _Data) -> pd.DataFrame:
    frame = _table(data.tables, "duplication_pairs")
    if frame.empty:
        return frame
    return frame[frame["kind"].astype(str) == "overlapping_effort"]


_SOURCE_COLUMNS = (
    "source_file",
    "source",
    "status",
    "n_records",
    "n_accepted",
    "n_quarantined",
    "reason",
)


def _quality(data: _Data, files: set[str]) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    sources = _table(data.tables, "sources")
    if sources.empty or not files:
        return [], sources.iloc[0:0] if not sources.empty else sources
    own = sources[sources["source_file"].astype(str).isin(files)].sort_values("source_file")
    return _records(own, _SOURCE_COLUMNS), own


def _files_of(data: _Data, activity_ids: set[str], code: str | None = None) -> set[str]:
    files: set[str] = set()
    activities = data.activities
    if "source_file" in activities:
        files |= set(
            activities.loc[activities.index.isin(activity_ids), "source_file"].dropna().astype(str)
        )
    if code is not None:
        for name in ("cd_priorities", "results"):
            frame = _table(data.tables, name)
            if not frame.empty and "source_file" in frame:
                mine = frame[frame["country_code"].astype(str) == code]
                files |= set(mine["source_file"].dropna().astype(str))
    return files


class _Extracts:
    """The row extracts of one page: table -> its rows, cut from the table's CSV (the
    release's own writer: formula-like text is neutralised as in data/)."""

    def __init__(self, data: _Data, folder: str) -> None:
        self.data = data
        self.folder = folder
        self.paths: dict[str, str] = {}
        self.files: dict[str, bytes] = {}

    def add(self, table: str, frame: pd.DataFrame | None) -> None:
        """``frame``: rows of ``data.tables[table]``, with their index unchanged."""
        if frame is None or frame.empty:
            return
        path = f"{self.folder}/rows/{table}.csv"
        self.files[path] = self.data.csv_rows(table).subset(frame.index)
        self.paths[table] = path


def _country(
    data: _Data,
    code: str,
    countries: Sequence[str],
    latest_all: pd.DataFrame,
    latest_values: Mapping[str, Mapping[str, tuple[float, int]]],
    indicators: Mapping[str, list[dict[str, Any]]],
) -> tuple[dict[str, Any], dict[str, bytes]]:
    tables = data.tables
    extracts = _Extracts(data, f"countries/{slug(code)}")
    cd = data.cd_of_country[code]
    by_sector = data.sector_of_country[code]
    metrics_rows = latest_all[latest_all["country_code"].astype(str) == code]
    metrics = _records(metrics_rows.sort_values("metric"), _METRIC_COLUMNS)
    pairs_frame = _overlapping(data)
    if not pairs_frame.empty:
        pairs_frame = pairs_frame[pairs_frame["country_code"].astype(str) == code]
    activity_ids = data.countries_of.get(code, set())
    quality, sources_rows = _quality(data, _files_of(data, activity_ids, code))
    profile: dict[str, Any] = {
        "kind": "country",
        "code": code,
        "name": data.country_name(code),
        "slug": slug(code),
        "groups": _groups_of(code, data.options),
        "years": sorted({int(y) for y in cd["year"]}),
        "totals": _totals(data, code),
        "money": {
            "by_partner": _long(cd, "partner", data.partner_names),
            "by_modality": _long(cd, "modality", {}),
            "by_sector": _long(
                by_sector,
                "sector_code",
                {c: data.sector_label(c) for c in set(by_sector.get("sector_code", []))},
            ),
        },
        "priorities": _priorities(data, code),
        "results": indicators.get(code, []),
        "metrics": metrics,
        "peers": _peers(data, code, metrics, latest_values, countries),
        "shared_indicators": _shared_indicators(data, code, indicators),
        "hotspots": _hotspots(data, code),
        "pairs": _pairs(data, pairs_frame) if not pairs_frame.empty else [],
        "quality": quality,
    }
    transactions = _table(tables, "transactions")
    if not transactions.empty:  # every disbursement the totals count (CD or not)
        counted = set(data.money_of_country[code]["activity_id"])
        extracts.add(
            "transactions", transactions[transactions["activity_id"].astype(str).isin(counted)]
        )
    for name in ("cd_priorities", "alignment_links", "results", "duplication_metrics"):
        frame = _table(tables, name)
        if not frame.empty:
            extracts.add(name, frame[frame["country_code"].astype(str) == code])
    alignment = _table(tables, "alignment_metrics")
    if not alignment.empty:
        extracts.add("alignment_metrics", alignment[alignment["country_code"].astype(str) == code])
    extracts.add("duplication_pairs", pairs_frame if not pairs_frame.empty else None)
    extracts.add("sources", sources_rows)
    profile["rows"] = dict(sorted(extracts.paths.items()))
    return profile, extracts.files


# --------------------------------------------------------------------------- partners


def _declarations(data: _Data, code: str, cd_ids: set[str]) -> dict[str, Any]:
    frame = _table(data.tables, "partner_declarations")
    total = len(cd_ids)
    declared_ids: set[str] = set()
    known: dict[str, set[str]] = {f: set() for f in DECLARATION_FIELDS}
    if not frame.empty:
        own = frame[
            (frame["partner_org_ref"].astype(str) == code)
            & frame["activity_id"].astype(str).isin(cd_ids)
        ]
        for row in own.itertuples(index=False):
            activity_id = str(row.activity_id)
            declared_ids.add(activity_id)
            for name in DECLARATION_FIELDS:
                value = getattr(row, name, None)
                if _plain(value) is not None and _text(value) != "":
                    known[name].add(activity_id)
    return {
        "n_cd_activities": total,
        "n_declared": len(declared_ids),
        "share": round(len(declared_ids) / total, 4) if total else None,
        "fields": [
            {
                "field": name,
                "known": len(known[name]),
                "total": total,
                "share": round(len(known[name]) / total, 4) if total else None,
            }
            for name in DECLARATION_FIELDS
        ],
    }


def _partner(
    data: _Data, code: str, countries: Sequence[str]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    tables = data.tables
    extracts = _Extracts(data, f"partners/{slug(code)}")
    money = data.money_of_partner[code]
    cd = data.cd_of_partner[code]
    by_sector = data.sector_of_partner[code]
    activity_ids = {a for a, p in data.partner_of.items() if p == code}
    activities = data.activities
    cd_ids = (
        set(
            activities.loc[
                activities.index.isin(activity_ids)
                & activities["is_cd"].fillna(False).astype(bool),
                "activity_id",
            ].astype(str)
        )
        if "is_cd" in activities
        else set()
    )
    compact = set(countries)
    in_compact = {a for a in cd_ids if any(a in data.countries_of.get(c, set()) for c in compact)}
    alignment = _table(tables, "alignment_metrics")
    own_metrics = (
        _latest_metrics(alignment[alignment["partner_org_ref"].astype("string") == code])
        if not alignment.empty
        else pd.DataFrame()
    )
    rows = []
    if not own_metrics.empty:
        for record in _records(
            own_metrics.sort_values(["country_code", "metric"]),
            ["country_code", *_METRIC_COLUMNS],
        ):
            record["country_name"] = data.country_name(str(record["country_code"]))
            rows.append(record)
    pairs_frame = _overlapping(data)
    overlaps = []
    if not pairs_frame.empty:
        partner_a = pairs_frame["activity_id_a"].astype(str).map(data.partner_of)
        partner_b = pairs_frame["activity_id_b"].astype(str).map(data.partner_of)
        pairs_frame = pairs_frame[(partner_a == code) | (partner_b == code)]
        for pair in _pairs(data, pairs_frame):
            own, other = (
                (pair["a"], pair["b"])
                if pair["a"]["partner_code"] == code
                else (
                    pair["b"],
                    pair["a"],
                )
            )
            overlaps.append(
                {
                    "pair_id": pair["pair_id"],
                    "country_code": pair["country_code"],
                    "country_name": data.country_name(pair["country_code"]),
                    "score": pair["score"],
                    "sector_overlap": pair["sector_overlap"],
                    "date_overlap": pair["date_overlap"],
                    "own": own,
                    "other": other,
                }
            )
    files = _files_of(data, activity_ids)
    declarations = _table(tables, "partner_declarations")
    if not declarations.empty and "source_file" in declarations:
        own_declarations = declarations[declarations["partner_org_ref"].astype(str) == code]
        files |= set(own_declarations["source_file"].dropna().astype(str))
    quality, sources_rows = _quality(data, files)
    profile: dict[str, Any] = {
        "kind": "partner",
        "code": code,
        "name": data.partner_name(code),
        "slug": slug(code),
        "years": sorted({int(y) for y in cd["year"]}),
        "totals": {
            "disbursement_usd": _usd(money["usd"].sum()),
            "cd_disbursement_usd": _usd(cd["usd"].sum()),
            "cd_activities": len(cd_ids),
            "countries": int(cd["country_code"].nunique()),
        },
        "money": {
            "by_country": _long(
                cd, "country_code", {c: data.country_name(c) for c in set(cd["country_code"])}
            ),
            "by_sector": _long(
                by_sector,
                "sector_code",
                {c: data.sector_label(c) for c in set(by_sector.get("sector_code", []))},
            ),
            "by_modality": _long(cd, "modality", {}),
        },
        "alignment": rows,
        "overlaps": overlaps,
        "declarations": _declarations(data, code, in_compact),
        "quality": quality,
    }
    transactions = _table(tables, "transactions")
    if not transactions.empty:
        counted = set(money["activity_id"])
        extracts.add(
            "transactions", transactions[transactions["activity_id"].astype(str).isin(counted)]
        )
    if not alignment.empty:
        extracts.add(
            "alignment_metrics", alignment[alignment["partner_org_ref"].astype("string") == code]
        )
    if not declarations.empty:
        extracts.add(
            "partner_declarations",
            declarations[declarations["partner_org_ref"].astype(str) == code],
        )
    extracts.add("duplication_pairs", pairs_frame if not pairs_frame.empty else None)
    extracts.add("sources", sources_rows)
    profile["rows"] = dict(sorted(extracts.paths.items()))
    return profile, extracts.files


def _partner_codes(data: _Data) -> list[str]:
    """Partners with CD money or CD activities in the data."""
    codes = {p for p in data.cd["partner"] if p}
    activities = data.activities
    if "is_cd" in activities and "reporting_org_ref" in activities:
        cd = activities[activities["is_cd"].fillna(False).astype(bool)]
        codes |= {c for c in cd["reporting_org_ref"].dropna().astype(str) if c}
    return sorted(codes)


# --------------------------------------------------------------------------- entry point


def build_profiles(
    tables: Mapping[str, pd.DataFrame], options: ProfileOptions | None = None
) -> Profiles:
    """Every country's and partner's profile, and the row extracts behind them."""
    options = options or ProfileOptions()
    data = _Data(tables, options)
    countries = _country_codes(data)
    alignment = _table(tables, "alignment_metrics")
    latest_all = (
        _latest_metrics(alignment[alignment["partner_org_ref"].fillna("").astype(str) == ""])
        if not alignment.empty
        else pd.DataFrame(columns=["country_code", "metric", "year", "value"])
    )
    latest_values: dict[str, dict[str, tuple[float, int]]] = {}
    compact = set(countries)
    for country, metric, value, year in zip(
        latest_all["country_code"].tolist(),
        latest_all["metric"].tolist(),
        latest_all["value"].tolist(),
        latest_all["year"].tolist(),
        strict=True,
    ):
        number = _number(value)
        if number is not None and str(country) in compact:
            latest_values.setdefault(str(metric), {})[str(country)] = (number, int(year))
    results = _table(tables, "results")
    indicators: dict[str, list[dict[str, Any]]] = {}
    if not results.empty:
        for code, group in results.groupby(results["country_code"].astype("string").fillna("")):
            if code:
                indicators[str(code)] = _indicators(group)
    rows: dict[str, bytes] = {}
    country_profiles = []
    for code in countries:
        profile, files = _country(data, code, countries, latest_all, latest_values, indicators)
        country_profiles.append(profile)
        rows.update(files)
    partner_profiles = []
    for code in _partner_codes(data):
        profile, files = _partner(data, code, countries)
        partner_profiles.append(profile)
        rows.update(files)
    return Profiles(countries=country_profiles, partners=partner_profiles, rows=rows)
