"""The data-quality report: figures for the compact and for every contributor.

Pure Python and pandas (no Dagster): :func:`build_quality_report` turns the
harmonised tables, the Great Expectations results of the run and the trend of
earlier runs into the content of ``quality/report.json`` as
``docs/quality-report.md`` describes it; :func:`history_entry` is the run's
compact line of ``quality/history.json``.

Every figure is computed once for the whole compact and once per contributor
with one ``groupby`` over the rows of each table, each row labelled with the
contributor(s) it belongs to (``_who``):

- IATI activities by their ``reporting_org_ref`` (publisher); the rows of the
  other IATI tables through their ``activity_id``;
- rows of submissions, ``sources``, ``quarantine`` and findings that name no
  known activity through their ``source_file`` (the contributors whose rows that
  file holds);
- ``partner_declarations`` by their ``partner_org_ref``.

The result is deterministic (everything sorted) and JSON-safe (only str, int,
float, bool, None, list and dict; NaN becomes None, dates ISO strings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

from assets.harmonise.schema import table_frame, table_schemas
from assets.iati.harmonise import IATI_TABLES
from assets.warehouse import register_frames
from expectations.runner import ExpectationOutcome, TableValidation
from expectations.schema_checks import check_foreign_keys, check_table

REPORT_FORMAT = "cdcompact-quality/1"

#: HDX data freshness: update frequency -> (due from, overdue from, delinquent from), in days.
FREQUENCIES: dict[str, tuple[int, int, int]] = {
    "daily": (1, 2, 3),
    "weekly": (7, 14, 21),
    "fortnightly": (14, 21, 28),
    "monthly": (30, 44, 60),
    "quarterly": (90, 120, 150),
    "semiannually": (180, 210, 240),
    "annually": (365, 425, 455),
}

#: Contributor kinds, as in the report's ids (``publisher:XM-DAC-46004``).
KINDS = ("publisher", "country", "partner")
#: The publisher ref of IATI activities that name no reporting organisation.
UNKNOWN_REF = "(unknown)"
#: Transaction types of incoming funds (incoming funds, incoming commitment, incoming pledge).
INCOMING_TYPES = ("1", "11", "13")
#: Activity statuses of current activities (pipeline, implementation); empty counts too.
CURRENT_STATUSES = ("1", "2")

#: The ``_who`` label of the whole compact.
OVERALL = ""
_WHO = "_who"
_ROW = "_row"
#: Tables whose rows belong to an activity (attributed through ``activity_id``).
_ACTIVITY_TABLES = tuple(table for table in IATI_TABLES if table != "activities")
_SLUG_MAX = 60
_HASH_LEN = 10


# -- freshness and slugs ---------------------------------------------------------------------


def freshness_state(age_days: int | None, frequency: str) -> str:
    """HDX freshness: ``up_to_date``, ``due``, ``overdue``, ``delinquent`` or ``unknown``.

    ``unknown`` when there is no date (``age_days`` None); a date in the future is up to date.
    """
    try:
        due, overdue, delinquent = FREQUENCIES[frequency]
    except KeyError:
        raise ValueError(
            f"unknown update frequency {frequency!r} (one of {', '.join(FREQUENCIES)})"
        ) from None
    if age_days is None:
        return "unknown"
    if age_days >= delinquent:
        return "delinquent"
    if age_days >= overdue:
        return "overdue"
    if age_days >= due:
        return "due"
    return "up_to_date"


def _clean(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def contributor_slug(kind: str, ref: str) -> str:
    """A file- and URL-safe name for a contributor's page: ``publisher-xm-dac-46004``.

    Only ``[a-z0-9-]``; deterministic; unique per (kind, ref). A ref that is
    upper-case letters and digits separated by single hyphens (IATI organisation
    identifiers, ISO country codes) is kept as it is, lowercased; any other ref
    (lowercase letters, dots, slashes, spaces, unicode, more than 60 characters)
    lost information in cleaning and gets ``--`` and a short hash of (kind, ref).
    Clean slugs never contain ``--``, so they cannot meet a hashed one.
    """
    kind_clean = _clean(kind) or "contributor"
    ref_clean = _clean(ref)[:_SLUG_MAX].strip("-")
    lossless = (
        re.fullmatch(r"[a-z0-9]+", kind) is not None
        and re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)*", ref) is not None
        and len(ref) <= _SLUG_MAX
    )
    base = f"{kind_clean}-{ref_clean}" if ref_clean else kind_clean
    if lossless:
        return base
    digest = hashlib.sha256(f"{kind}\x00{ref}".encode()).hexdigest()[:_HASH_LEN]
    return f"{base}--{digest}"


# -- small helpers ---------------------------------------------------------------------------


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    frame = tables.get(name)
    if frame is not None:
        return frame
    return table_frame(name, []) if name in table_schemas() else pd.DataFrame()


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as nullable strings (an empty one when the frame lacks it)."""
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _is(series: pd.Series, *values: str) -> pd.Series:
    """Plain booleans: the value is one of ``values`` (missing: False)."""
    return series.astype("string").isin(values).fillna(False).astype(bool)


def _present(series: pd.Series) -> pd.Series:
    """Plain booleans: a value is there (strings: not blank)."""
    present = series.notna()
    textual = series.dtype == "string" or (
        series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "string"
    )
    if textual:
        text = series.astype("string").str.strip()
        present = present & (text != "").fillna(False).astype(bool)
    return present.astype(bool)


def _true(series: pd.Series) -> pd.Series:
    return series.astype("boolean").fillna(False).astype(bool)


def _share(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator


def _item(numerator: int, denominator: int) -> dict[str, Any]:
    return {
        "numerator": int(numerator),
        "denominator": int(denominator),
        "share": _share(numerator, denominator),
    }


def _usd(value: Any) -> float:
    number = float(value) if value is not None and not pd.isna(value) else 0.0
    return round(number, 2) + 0.0  # + 0.0: never -0.0


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def _plain(value: Any) -> Any:
    """JSON-safe: numpy and pandas scalars as Python ones, NaN/NA as None, dates as ISO."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, int | float):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    return str(value)


def _by_who(frame: pd.DataFrame, values: pd.Series | None = None) -> dict[str, Any]:
    """Sum of ``values`` (default: count of rows) per ``_who``."""
    if frame.empty:
        return {}
    series = pd.Series(1, index=frame.index) if values is None else values
    return {str(k): v for k, v in series.groupby(frame[_WHO]).sum().items()}


# -- who each row belongs to -----------------------------------------------------------------


def _publisher_ids(frame: pd.DataFrame) -> pd.Series:
    ref = _col(frame, "reporting_org_ref").str.strip()
    ref = ref.mask(ref.isna() | (ref == ""), UNKNOWN_REF)
    return "publisher:" + ref


def _file_map(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """(source_file, _who): the contributors whose rows each file holds."""
    parts: list[pd.DataFrame] = []
    activities = t["activities"]
    iati = _is(_col(activities, "source"), "iati")
    parts.append(
        pd.DataFrame(
            {
                "source_file": _col(activities, "source_file")[iati],
                _WHO: _publisher_ids(activities)[iati],
            }
        )
    )
    for name in ("cd_priorities", "results"):
        frame = t[name]
        mine = _is(_col(frame, "source"), "country_report") & _present(_col(frame, "country_code"))
        parts.append(
            pd.DataFrame(
                {
                    "source_file": _col(frame, "source_file")[mine],
                    _WHO: "country:" + _col(frame, "country_code")[mine].str.strip(),
                }
            )
        )
    declarations = t["partner_declarations"]
    known = _present(_col(declarations, "partner_org_ref"))
    parts.append(
        pd.DataFrame(
            {
                "source_file": _col(declarations, "source_file")[known],
                _WHO: "partner:" + _col(declarations, "partner_org_ref")[known].str.strip(),
            }
        )
    )
    partner = _is(_col(activities, "source"), "partner_submission") & _present(
        _col(activities, "reporting_org_ref")
    )
    parts.append(
        pd.DataFrame(
            {
                "source_file": _col(activities, "source_file")[partner],
                _WHO: "partner:" + _col(activities, "reporting_org_ref")[partner].str.strip(),
            }
        )
    )
    found = pd.concat(parts, ignore_index=True).dropna()
    return (
        found.astype("string")
        .drop_duplicates()
        .sort_values(["source_file", _WHO])
        .reset_index(drop=True)
    )


def _via_files(frame: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    rows = pd.DataFrame({_ROW: frame.index, "source_file": _col(frame, "source_file").array})
    return rows.merge(files, on="source_file", how="inner")[[_ROW, _WHO]]


def _members(t: Mapping[str, pd.DataFrame], files: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per table: (_row, _who), the contributor(s) of each row (index label)."""
    members: dict[str, pd.DataFrame] = {}
    activities = t["activities"]
    iati = _is(_col(activities, "source"), "iati")
    owners = pd.DataFrame(
        {
            _ROW: activities.index[iati],
            "activity_id": _col(activities, "activity_id")[iati].array,
            _WHO: _publisher_ids(activities)[iati].array,
        }
    )
    members["activities"] = pd.concat(
        [owners[[_ROW, _WHO]], _via_files(activities[~iati], files)], ignore_index=True
    )
    by_activity = owners[["activity_id", _WHO]].dropna().drop_duplicates("activity_id")
    for name, frame in t.items():
        if name == "activities":
            continue
        if name in _ACTIVITY_TABLES or name == "conformance":
            # conformance rows are all about IATI files; the others say where they come from
            from_iati = (
                pd.Series(True, index=frame.index)
                if name == "conformance"
                else _is(_col(frame, "source"), "iati")
            )
            rows = pd.DataFrame(
                {
                    _ROW: frame.index[from_iati],
                    "activity_id": _col(frame, "activity_id")[from_iati].array,
                    "source_file": _col(frame, "source_file")[from_iati].array,
                }
            )
            if name == "conformance":  # a finding belongs to its activity in that file
                keyed = owners.assign(source_file=_col(activities, "source_file")[iati].array)
                matched = rows.merge(
                    keyed[["activity_id", "source_file", _WHO]].drop_duplicates(),
                    on=["activity_id", "source_file"],
                    how="inner",
                )
            else:
                matched = rows.merge(by_activity, on="activity_id", how="inner")
            unmatched = frame.loc[~frame.index.isin(matched[_ROW])]
            members[name] = pd.concat(
                [matched[[_ROW, _WHO]], _via_files(unmatched, files)], ignore_index=True
            )
        elif name == "partner_declarations":
            known = _present(_col(frame, "partner_org_ref"))
            members[name] = pd.concat(
                [
                    pd.DataFrame(
                        {
                            _ROW: frame.index[known],
                            _WHO: ("partner:" + _col(frame, "partner_org_ref").str.strip())[
                                known
                            ].array,
                        }
                    ),
                    _via_files(frame[~known], files),
                ],
                ignore_index=True,
            )
        elif "source_file" in frame.columns:
            members[name] = _via_files(frame, files)
        else:
            members[name] = pd.DataFrame(
                {_ROW: pd.Series([], dtype="int64"), _WHO: pd.Series([], dtype="string")}
            )
    return members


def _scoped(frame: pd.DataFrame, members: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame[columns]`` once per contributor of each row and once for the compact."""
    columns = [c for c in columns if c in frame.columns]
    base = frame[columns]
    mine = members.merge(base, left_on=_ROW, right_index=True, how="inner").drop(columns=_ROW)
    every = base.assign(**{_WHO: OVERALL})
    return pd.concat([mine, every], ignore_index=True)


# -- the figures -----------------------------------------------------------------------------


def _file_facts(t: Mapping[str, pd.DataFrame], conformance_checked: bool) -> pd.DataFrame:
    """Per source file: schema check, versions, conformance counts (index: source_file)."""
    sources = t["sources"]
    conformance = t["conformance"]
    facts = pd.DataFrame(
        {
            "source_file": _col(sources, "source_file").array,
            "source": _col(sources, "source").array,
            "status": _col(sources, "status").array,
        }
    ).drop_duplicates("source_file")
    check = _col(conformance, "check")
    severity = _col(conformance, "severity")
    rule = _col(conformance, "rule")
    weight = _finding_weights(conformance)
    keyed = pd.DataFrame(
        {
            "source_file": _col(conformance, "source_file").array,
            **{
                f"{name}_{level}": weight.where(
                    _is(check, kind) & _is(severity, level) & ~_not_checked(conformance), 0
                ).array
                for name, kind in (("xsd", "xsd"), ("codelist", "codelist"))
                for level in ("error", "warning")
            },
            "xsd_rows": _is(check, "xsd").astype(int).array,
            "codelist_rows": _is(check, "codelist").astype(int).array,
            "xsd_not_checked": _is(rule, "xsd:not_checked").astype(int).array,
            # with a value it names the few codelists not loaded: the others were checked
            "codelist_not_checked": (
                _is(rule, "codelist:not_checked") & ~_present(_col(conformance, "value"))
            )
            .astype(int)
            .array,
        }
    )
    counts = keyed.drop(columns="source_file").groupby(keyed["source_file"]).sum()
    facts = facts.merge(counts, left_on="source_file", right_index=True, how="left")
    for column in keyed.columns.drop("source_file"):
        facts[column] = facts[column].fillna(0).astype(int)
    facts = facts.rename(
        columns={
            "xsd_error": "xsd_errors",
            "xsd_warning": "xsd_warnings",
            "codelist_error": "codelist_errors",
            "codelist_warning": "codelist_warnings",
        }
    )
    iati = conformance_checked & _is(facts["source"], "iati").to_numpy()
    rejected = _is(facts["status"], "rejected").to_numpy()
    for kind in ("xsd", "codelist"):
        facts[f"{kind}_checked"] = (
            iati
            & (facts[f"{kind}_not_checked"] == 0).to_numpy()
            & (~rejected | (facts[f"{kind}_rows"] > 0).to_numpy())
        )
    facts["checked"] = facts["xsd_checked"]
    facts["iati_version"] = facts["source_file"].map(
        _most_frequent(t["activities"], "source_file", "iati_version")
    )
    xsd = conformance[_is(check, "xsd")]
    facts["schema_version"] = facts["source_file"].map(
        _most_frequent(xsd, "source_file", "schema_version")
    )
    facts["schema_version"] = facts["schema_version"].where(
        facts["schema_version"].notna(), facts["iati_version"]
    )
    facts.loc[~facts["checked"].astype(bool), "schema_version"] = None
    return facts.set_index("source_file")


def _not_checked(conformance: pd.DataFrame) -> pd.Series:
    """Findings saying a file could not be checked (``xsd:not_checked``, ``codelist:...``)."""
    return _col(conformance, "rule").str.endswith(":not_checked").fillna(False).astype(bool)


def _finding_weights(conformance: pd.DataFrame) -> pd.Series:
    """How many findings each row stands for: ``xsd:more`` / ``codelist:more`` rows count
    the findings left out (their ``value``), every other row one."""
    more = _col(conformance, "rule").str.endswith(":more").fillna(False).astype(bool)
    counted = pd.to_numeric(_col(conformance, "value"), errors="coerce")
    return counted.where(more & counted.notna(), 1).astype(int)


def _most_frequent(frame: pd.DataFrame, key: str, value: str) -> dict[str, str]:
    """The most frequent ``value`` per ``key`` (ties: the smallest value)."""
    pairs = pd.DataFrame({"k": _col(frame, key).array, "v": _col(frame, value).array}).dropna()
    if pairs.empty:
        return {}
    counted = pairs.value_counts().rename("n").reset_index()
    counted = counted.sort_values(["k", "n", "v"], ascending=[True, False, True])
    first = counted.drop_duplicates("k")
    return dict(zip(first["k"], first["v"], strict=True))


def _validity(
    t: Mapping[str, pd.DataFrame],
    members: Mapping[str, pd.DataFrame],
    facts: pd.DataFrame,
    expectation_counts: Mapping[str, Mapping[str, int]],
    whos: Sequence[str],
) -> dict[str, dict[str, Any]]:
    sources = _scoped(
        t["sources"],
        members["sources"],
        ["source_file", "status", "n_records", "n_accepted", "n_quarantined"],
    )
    status = _col(sources, "status")
    checked = (
        _col(sources, "source_file").map(facts["checked"].to_dict()).fillna(False).astype(bool)
    )
    errors = _col(sources, "source_file").map(facts["xsd_errors"].to_dict()).fillna(0)
    numbers = {
        name: pd.to_numeric(sources[name], errors="coerce").fillna(0).astype(int)
        if name in sources
        else pd.Series(0, index=sources.index)
        for name in ("n_records", "n_accepted", "n_quarantined")
    }
    files = _by_who(sources)
    by_status = {
        s: _by_who(sources, _is(status, s)) for s in ("ok", "partial", "rejected", "unchanged")
    }
    sums = {name: _by_who(sources, series) for name, series in numbers.items()}
    checked_files = _by_who(sources, checked)
    valid_files = _by_who(sources, checked & (errors == 0).to_numpy())
    quarantine = _scoped(t["quarantine"], members["quarantine"], ["severity"])
    warnings = _by_who(quarantine, _is(_col(quarantine, "severity"), "warning"))
    conformance = _scoped(
        t["conformance"], members["conformance"], ["check", "severity", "rule", "value"]
    )
    check, severity = _col(conformance, "check"), _col(conformance, "severity")
    weight = _finding_weights(conformance).where(~_not_checked(conformance), 0)
    found = {
        f"{name}_{level}s": _by_who(
            conformance, weight.where(_is(check, kind) & _is(severity, level), 0)
        )
        for name, kind in (("schema", "xsd"), ("codelist", "codelist"))
        for level in ("error", "warning")
    }
    result: dict[str, dict[str, Any]] = {}
    for who in whos:
        figures: dict[str, Any] = {
            "files": int(files.get(who, 0)),
            "files_ok": int(by_status["ok"].get(who, 0)),
            "files_partial": int(by_status["partial"].get(who, 0)),
            "files_rejected": int(by_status["rejected"].get(who, 0)),
            "files_unchanged": int(by_status["unchanged"].get(who, 0)),
            "records": int(sums["n_records"].get(who, 0)),
            "records_accepted": int(sums["n_accepted"].get(who, 0)),
            "records_quarantined": int(sums["n_quarantined"].get(who, 0)),
            "warnings": int(warnings.get(who, 0)),
            "schema_checked_files": int(checked_files.get(who, 0)),
            "schema_valid_files": int(valid_files.get(who, 0)),
            "schema_errors": int(found["schema_errors"].get(who, 0)),
            "codelist_errors": int(found["codelist_errors"].get(who, 0)),
            "codelist_warnings": int(found["codelist_warnings"].get(who, 0)),
            "expectation_errors": int(expectation_counts.get(who, {}).get("error", 0)),
            "expectation_warnings": int(expectation_counts.get(who, {}).get("warning", 0)),
        }
        figures["state"] = _state(figures)
        result[who] = figures
    return result


def _state(v: Mapping[str, int]) -> str:
    """valid, invalid (something breaks an error rule, some accepted) or rejected."""
    if v["files"] and v["files_rejected"] == v["files"]:
        return "rejected"
    broken = (
        v["files_rejected"]
        or v["records_quarantined"]
        or v["schema_errors"]
        or v["codelist_errors"]
        or v["expectation_errors"]
    )
    return "invalid" if broken else "valid"


def _completeness(
    t: Mapping[str, pd.DataFrame], members: Mapping[str, pd.DataFrame], whos: Sequence[str]
) -> dict[str, dict[str, Any]]:
    activities = _scoped(t["activities"], members["activities"], ["activity_id", "is_cd"])
    ids = _col(activities, "activity_id")
    is_cd = _true(activities["is_cd"])
    results = t["results"]
    both = _present(results["baseline_value"]) & _present(results["target_value"])
    with_sector = ids.isin(_col(t["activity_sectors"], "activity_id").dropna().unique()).to_numpy()
    with_country = ids.isin(
        _col(t["activity_countries"], "activity_id").dropna().unique()
    ).to_numpy()
    declared = ids.isin(_col(t["partner_declarations"], "activity_id").dropna().unique()).to_numpy()
    measured = ids.isin(_col(results, "activity_id")[both].dropna().unique()).to_numpy()
    counts = {
        "activities": _by_who(activities),
        "with_sector": _by_who(activities, pd.Series(with_sector, index=activities.index)),
        "with_country": _by_who(activities, pd.Series(with_country, index=activities.index)),
        "cd": _by_who(activities, is_cd),
        "cd_declared": _by_who(activities, is_cd & declared),
        "cd_results": _by_who(activities, is_cd & measured),
    }
    scoped_results = _scoped(results, members["results"], ["baseline_value", "target_value"])
    results_both = _present(scoped_results["baseline_value"]) & _present(
        scoped_results["target_value"]
    )
    transactions = _scoped(t["transactions"], members["transactions"], ["value_date", "value_usd"])
    counts["results"] = _by_who(scoped_results)
    counts["results_both"] = _by_who(scoped_results, results_both)
    counts["transactions"] = _by_who(transactions)
    counts["with_value_date"] = _by_who(transactions, _present(transactions["value_date"]))
    counts["with_usd"] = _by_who(transactions, _present(transactions["value_usd"]))

    def n(name: str, who: str) -> int:
        return int(counts[name].get(who, 0))

    return {
        who: {
            "activities_with_sector": _item(n("with_sector", who), n("activities", who)),
            "activities_with_country": _item(n("with_country", who), n("activities", who)),
            "cd_activities_with_declaration": _item(n("cd_declared", who), n("cd", who)),
            "cd_activities_with_results": _item(n("cd_results", who), n("cd", who)),
            "results_with_baseline_and_target": _item(n("results_both", who), n("results", who)),
            "transactions_with_value_date": _item(
                n("with_value_date", who), n("transactions", who)
            ),
            "transactions_with_usd": _item(n("with_usd", who), n("transactions", who)),
        }
        for who in whos
    }


def _latest(frame: pd.DataFrame, column: str) -> dict[str, pd.Timestamp]:
    if frame.empty or column not in frame:
        return {}
    stamps = pd.to_datetime(frame[column], utc=True, errors="coerce")
    latest = stamps.groupby(frame[_WHO]).max().dropna()
    return {str(k): v for k, v in latest.items()}


def _timeliness(
    t: Mapping[str, pd.DataFrame],
    members: Mapping[str, pd.DataFrame],
    whos: Sequence[str],
    kinds: Mapping[str, str],
    freshness: Mapping[str, str],
    as_of: dt.date,
) -> dict[str, dict[str, Any]]:
    activities = _scoped(t["activities"], members["activities"], ["last_updated"])
    sources = _scoped(t["sources"], members["sources"], ["fetched_at"])
    updated = _latest(activities, "last_updated")
    received = _latest(sources, "fetched_at")
    result: dict[str, dict[str, Any]] = {}
    for who in whos:
        kind = kinds.get(who)
        last_received = received.get(who)
        # Countries and partners: when their latest submission came in.
        last_updated = updated.get(who) if kind in (None, "publisher") else received.get(who)
        when = last_updated if last_updated is not None else last_received
        age = None if when is None else (as_of - when.tz_convert("UTC").date()).days
        frequency = freshness.get(kind) if kind else None
        result[who] = {
            "last_updated": None if last_updated is None else last_updated.isoformat(),
            "last_received": None if last_received is None else last_received.isoformat(),
            "age_days": age,
            "frequency": frequency,
            "state": freshness_state(age, frequency) if frequency else None,
        }
    return result


def _forward_budgets(
    t: Mapping[str, pd.DataFrame],
    members: Mapping[str, pd.DataFrame],
    whos: Sequence[str],
    as_of: dt.date,
    years: int,
) -> dict[str, dict[str, Any]]:
    activities = _scoped(
        t["activities"], members["activities"], ["activity_id", "activity_status", "end_date"]
    )
    first_day = pd.Timestamp(as_of.year, 1, 1)
    end = pd.to_datetime(activities["end_date"], errors="coerce")
    status = _col(activities, "activity_status").str.strip()
    current = activities.loc[
        (status.isna() | _is(status, *CURRENT_STATUSES)).to_numpy()
        & (end.isna() | (end >= first_day)).to_numpy(),
        ["activity_id", _WHO],
    ].dropna(subset=["activity_id"])
    current = current.drop_duplicates()
    n_current = _by_who(current)
    budgets = t["budgets"]
    rows = pd.DataFrame(
        {
            "activity_id": _col(budgets, "activity_id").array,
            "budget_type": _col(budgets, "budget_type").str.strip().array,
            "start": pd.to_datetime(budgets["period_start"], errors="coerce").array,
            "end": pd.to_datetime(budgets["period_end"], errors="coerce").array,
            "value_usd": pd.to_numeric(budgets["value_usd"], errors="coerce").array,
        }
    )
    rows["start"] = rows["start"].fillna(rows["end"])
    rows["end"] = rows["end"].fillna(rows["start"])
    rows = rows.dropna(subset=["start"])
    rows["end"] = rows["end"].where(rows["end"] >= rows["start"], rows["start"])
    rows["days"] = (rows["end"] - rows["start"]).dt.days + 1
    rows = rows.merge(current, on="activity_id", how="inner")
    per_year: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for year in range(as_of.year, as_of.year + years):
        low, high = pd.Timestamp(year, 1, 1), pd.Timestamp(year, 12, 31)
        overlap = rows[(rows["start"] <= high) & (rows["end"] >= low)].copy()
        overlap_days = (
            overlap["end"].where(overlap["end"] <= high, high)
            - overlap["start"].where(overlap["start"] >= low, low)
        ).dt.days + 1
        overlap["part"] = overlap["value_usd"] * overlap_days / overlap["days"]
        # Where an activity has a revised budget for the year, its original ones do not count.
        revised = overlap["budget_type"].eq("2").fillna(False).astype(bool)
        has_revised = revised.groupby([overlap[_WHO], overlap["activity_id"]]).transform("any")
        kept = overlap[revised | ~has_revised.astype(bool)]
        with_budget = _by_who(kept[[_WHO, "activity_id"]].drop_duplicates())
        value = _by_who(kept, kept["part"].fillna(0.0))
        per_year.append((year, with_budget, value))
    return {
        who: {
            "current_activities": int(n_current.get(who, 0)),
            "years": [
                {
                    "year": year,
                    "activities_with_budget": int(with_budget.get(who, 0)),
                    "current_activities": int(n_current.get(who, 0)),
                    "share": _share(with_budget.get(who, 0), n_current.get(who, 0)),
                    "value_usd": _usd(value.get(who, 0.0)),
                }
                for year, with_budget, value in per_year
            ],
        }
        for who in whos
    }


def _traceability(
    t: Mapping[str, pd.DataFrame], members: Mapping[str, pd.DataFrame], whos: Sequence[str]
) -> dict[str, dict[str, Any]]:
    transactions = _scoped(
        t["transactions"],
        members["transactions"],
        ["transaction_type", "provider_activity_id", "value_usd"],
    )
    incoming = _is(_col(transactions, "transaction_type").str.strip(), *INCOMING_TYPES)
    traced = incoming & _present(_col(transactions, "provider_activity_id"))
    value = pd.to_numeric(transactions["value_usd"], errors="coerce").fillna(0.0)
    counts = _by_who(transactions, incoming)
    traced_counts = _by_who(transactions, traced)
    values = _by_who(transactions, value.where(incoming, 0.0))
    traced_values = _by_who(transactions, value.where(traced, 0.0))
    result = {}
    for who in whos:
        incoming_value = _usd(values.get(who, 0.0))
        traced_value = _usd(traced_values.get(who, 0.0))
        result[who] = {
            "incoming_transactions": int(counts.get(who, 0)),
            "traced_transactions": int(traced_counts.get(who, 0)),
            "share": _share(traced_counts.get(who, 0), counts.get(who, 0)),
            "incoming_value_usd": incoming_value,
            "traced_value_usd": traced_value,
            "value_share": _share(traced_value, incoming_value),
        }
    return result


def _quarantine(
    t: Mapping[str, pd.DataFrame], members: Mapping[str, pd.DataFrame], whos: Sequence[str]
) -> dict[str, dict[str, Any]]:
    columns = ["source_file", "source_ref", "table", "field", "rule", "value", "message"]
    scoped = _scoped(t["quarantine"], members["quarantine"], [*columns, "severity"])
    result: dict[str, list[dict[str, Any]]] = {who: [] for who in whos}
    if not scoped.empty:
        scoped = scoped.assign(
            rule=_col(scoped, "rule").fillna(""), severity=_col(scoped, "severity").fillna("")
        )
        keys = [_WHO, "rule", "severity"]
        sizes = scoped.groupby(keys).size().rename("rows")
        first = scoped.drop_duplicates(keys).set_index(keys)
        table = first.join(sizes).reset_index().sort_values(keys)
        for row in table.to_dict(orient="records"):
            if row[_WHO] not in result:
                continue
            result[row[_WHO]].append(
                {
                    "rule": row["rule"],
                    "severity": row["severity"],
                    "rows": int(row["rows"]),
                    "example": {
                        "source_file": _text(row.get("source_file")),
                        "source_ref": _text(row.get("source_ref")),
                        "table": _text(row.get("table")),
                        "field": _text(row.get("field")),
                        "value": _text(row.get("value")),
                        "message": _text(row.get("message")),
                    },
                }
            )
    return {who: {"by_rule": rules} for who, rules in result.items()}


# -- expectations ------------------------------------------------------------------------------


def _outcome_count(outcome: ExpectationOutcome) -> int:
    """Failing rows of a failed expectation (1 when GX could not evaluate it)."""
    if outcome.unexpected_count is not None:
        return int(outcome.unexpected_count)
    return len(outcome.rows) or 1


def _failed(
    validations: Mapping[str, TableValidation] | None,
) -> list[tuple[str, ExpectationOutcome]]:
    if not validations:
        return []
    failed = [
        (table, outcome)
        for table, validation in validations.items()
        for outcome in validation.outcomes
        if not outcome.success
    ]
    return sorted(failed, key=lambda item: (item[0], item[1].rule, item[1].severity))


def _expectation_rows(
    failed: Sequence[tuple[str, ExpectationOutcome]], members: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """(table, rule, severity, _row, _who, position): every failing row per contributor."""
    parts = []
    for table, outcome in failed:
        if not outcome.rows or table not in members or members[table].empty:
            continue
        rows = pd.DataFrame({_ROW: list(outcome.rows), "position": range(len(outcome.rows))})
        mine = rows.merge(members[table], on=_ROW, how="inner")
        if mine.empty:
            continue
        parts.append(mine.assign(table=table, rule=outcome.rule, severity=outcome.severity))
    if not parts:
        return pd.DataFrame(columns=["table", "rule", "severity", _ROW, _WHO, "position"])
    return pd.concat(parts, ignore_index=True)


def _expectation_counts(
    failed: Sequence[tuple[str, ExpectationOutcome]], rows: pd.DataFrame
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {OVERALL: {}}
    for _, outcome in failed:
        overall = counts[OVERALL]
        overall[outcome.severity] = overall.get(outcome.severity, 0) + _outcome_count(outcome)
    if not rows.empty:
        for (who, severity), n in rows.groupby([_WHO, "severity"]).size().items():
            counts.setdefault(str(who), {})[str(severity)] = int(n)
    return counts


def _row_value(
    tables: Mapping[str, pd.DataFrame], table: str, outcome: ExpectationOutcome, row: Any
) -> str | None:
    """The failing value of ``row``: from GX's examples, else the rule's field."""
    for example in outcome.examples:
        if example.row == row:
            return example.value
    frame = tables.get(table)
    if frame is None or ":" not in outcome.rule:
        return None
    fields = outcome.rule.split(":", 1)[1].split(",")
    if not all(f in frame.columns for f in fields) or row not in frame.index:
        return None
    values = [_text(frame.at[row, f]) for f in fields]
    if all(v is None for v in values):
        return None
    return "|".join(v or "" for v in values)


def _row_place(
    tables: Mapping[str, pd.DataFrame], table: str, row: Any
) -> tuple[str | None, str | None]:
    frame = tables.get(table)
    if frame is None or row is None or row not in frame.index:
        return None, None
    return (
        _text(frame.at[row, "source_file"]) if "source_file" in frame.columns else None,
        _text(frame.at[row, "source_ref"]) if "source_ref" in frame.columns else None,
    )


def _tables_section(
    tables: Mapping[str, pd.DataFrame],
    validations: Mapping[str, TableValidation] | None,
    max_examples: int,
) -> dict[str, Any]:
    known = table_schemas()
    checkable = {name: frame for name, frame in tables.items() if name in known}
    with duckdb.connect() as con:
        register_frames(con, checkable)
        foreign = check_foreign_keys(con, checkable)
        own_counts = {name: check_table(con, name).counts for name in checkable}
    section: dict[str, Any] = {}
    for name in sorted(set(tables) | set(validations or {})):
        frame = tables.get(name)
        entry: dict[str, Any] = {
            "rows": len(frame) if frame is not None else (validations or {})[name].n_rows
        }
        if frame is not None and name in known:
            counts = own_counts[name] + foreign[name].counts
            entry["schema_conformance"] = {
                "passed": not counts,
                "violations": {rule: int(n) for rule, n in sorted(counts.items())},
            }
        else:
            entry["schema_conformance"] = {"passed": True, "violations": {}, "checked": False}
        validation = (validations or {}).get(name)
        if validation is not None:
            failed = sorted(validation.failed(), key=lambda o: (o.rule, o.severity))
            entry["expectations"] = {
                "passed_errors": validation.passed_errors,
                "evaluated": len(validation.outcomes),
                "failed": [
                    {
                        "rule": outcome.rule,
                        "severity": outcome.severity,
                        "unexpected": _outcome_count(outcome),
                        **({"error": outcome.error} if outcome.error else {}),
                        "examples": [
                            {
                                "row": example.row,
                                "value": example.value,
                                **dict(
                                    zip(
                                        ("source_file", "source_ref"),
                                        _row_place(tables, name, example.row),
                                        strict=True,
                                    )
                                ),
                            }
                            for example in outcome.examples[:max_examples]
                        ],
                    }
                    for outcome in failed
                ],
            }
        section[name] = entry
    return section


# -- problems ----------------------------------------------------------------------------------

#: Order of problems, worst first.
_RANK = {
    ("rejected_file", "error"): 0,
    ("schema", "error"): 1,
    ("codelist", "error"): 2,
    ("expectation", "error"): 3,
    ("quarantine", "error"): 4,
    ("freshness", "delinquent"): 5,
    ("freshness", "overdue"): 6,
    ("schema", "warning"): 7,
    ("codelist", "warning"): 8,
    ("expectation", "warning"): 9,
    ("quarantine", "warning"): 10,
}
#: Files the pipeline could not check (no schema or codelist loaded): last, overall only.
_NOT_CHECKED_RANK = 11
#: Messages that start with their line ("line 141: flow type ...").
_LINE_PREFIX = re.compile(r"^line (\d+):\s*")


def _problem(
    who: str,
    rank: int,
    severity: str,
    kind: str,
    rule: str | None,
    count: int,
    message: str,
    where: str | None,
) -> dict[str, Any]:
    return {
        _WHO: who,
        "_rank": rank,
        "severity": severity,
        "kind": kind,
        "rule": rule,
        "count": int(count),
        "message": message,
        "where": where,
    }


def _more(count: int, what: str) -> str:
    return f" ({count - 1:,} more {what})" if count > 1 else ""


def _place(source_file: str | None, line: Any = None, place: str | None = None) -> str | None:
    line_text = _text(line)
    if source_file and line_text:
        return f"{source_file} line {line_text}"
    if source_file and place:
        return f"{source_file} {place}"
    return source_file or place


def _problems(
    t: Mapping[str, pd.DataFrame],
    members: Mapping[str, pd.DataFrame],
    failed: Sequence[tuple[str, ExpectationOutcome]],
    expectation_rows: pd.DataFrame,
    timeliness: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    whos: Sequence[str],
    as_of: dt.date,
    max_examples: int,
) -> dict[str, list[dict[str, Any]]]:
    found: list[dict[str, Any]] = []
    sources = _scoped(t["sources"], members["sources"], ["source_file", "status", "reason"])
    rejected = sources[_is(_col(sources, "status"), "rejected").to_numpy()]
    quarantine = t["quarantine"]
    file_level = quarantine[
        _is(_col(quarantine, "table"), "sources").to_numpy()
        & _is(_col(quarantine, "severity"), "error").to_numpy()
    ]
    rejection = file_level.drop_duplicates("source_file").set_index("source_file")
    for row in rejected.to_dict(orient="records"):
        source_file = _text(row["source_file"])
        rule = place = None
        if source_file in rejection.index:
            rule = _text(rejection.at[source_file, "rule"])
            place = _text(rejection.at[source_file, "source_ref"])
        reason = _text(row.get("reason")) or "no reason recorded"
        where = _place(source_file, None, place if place not in (None, "/") else None)
        found.append(
            _problem(
                row[_WHO],
                _RANK[("rejected_file", "error")],
                "error",
                "rejected_file",
                rule or "rejected",
                1,
                f"{where}: file rejected: {reason}",
                where,
            )
        )
    # Conformance findings: one problem per file and rule, the first finding as the example.
    conformance = _scoped(
        t["conformance"],
        members["conformance"],
        ["source_file", "check", "line", "path", "rule", "value", "message", "severity"],
    )
    if not conformance.empty:
        keys = [_WHO, "source_file", "check", "severity", "rule"]
        ordered = conformance.assign(_n=_finding_weights(conformance)).sort_values(
            [*keys, "line", "path"], na_position="last", kind="stable"
        )
        sizes = ordered.groupby(keys, dropna=False)["_n"].sum().rename("n")
        first = ordered.drop_duplicates(keys).merge(sizes.reset_index(), on=keys, how="left")
        for row in first.to_dict(orient="records"):
            kind = "schema" if row["check"] == "xsd" else "codelist"
            severity = _text(row["severity"]) or "error"
            rule = str(row["rule"])
            if rule.endswith(":not_checked") and row[_WHO] != OVERALL:
                continue  # what the pipeline could not check is not the contributor's to fix
            where = _place(_text(row["source_file"]), row["line"], _text(row["path"]))
            message = _text(row["message"]) or ""
            if _text(row["line"]) is not None:
                message = _LINE_PREFIX.sub("", message)
            prefix = f"{where}: " if where and not message.startswith(where) else ""
            found.append(
                _problem(
                    row[_WHO],
                    _NOT_CHECKED_RANK
                    if rule.endswith(":not_checked")
                    else _RANK.get((kind, severity), 10),
                    severity,
                    kind,
                    _text(row["rule"]),
                    row["n"],
                    prefix
                    + message
                    + (
                        ""
                        if str(row["rule"]).endswith(":more")
                        else _more(int(row["n"]), "like this in the file")
                    ),
                    where,
                )
            )
    # Quarantine: one problem per file, rule and severity (file rejections are above).
    scoped = _scoped(
        quarantine,
        members["quarantine"],
        ["source_file", "source_ref", "table", "rule", "value", "message", "severity"],
    )
    if not scoped.empty:
        rejected_files = set(
            _col(t["sources"], "source_file")[_is(_col(t["sources"], "status"), "rejected")]
        )
        itself = _is(_col(scoped, "table"), "sources") & _col(scoped, "source_file").isin(
            rejected_files
        ).fillna(False).astype(bool)
        scoped = scoped[~itself.to_numpy()]
        keys = [_WHO, "source_file", "severity", "rule"]
        sizes = scoped.groupby(keys, dropna=False).size().rename("n")
        first = scoped.drop_duplicates(keys).merge(sizes.reset_index(), on=keys, how="left")
        for row in first.to_dict(orient="records"):
            severity = _text(row["severity"]) or "error"
            where = _place(_text(row["source_file"]), None, _text(row["source_ref"]))
            message = _text(row["message"]) or _text(row["rule"]) or ""
            line = _LINE_PREFIX.match(message)
            if line and row["source_file"] is not None:  # "line 12: ..." -> "f.xml line 12: ..."
                message = f"{row['source_file']} line {line.group(1)}: {message[line.end() :]}"
            else:
                message = f"{where}: {message}"
            found.append(
                _problem(
                    row[_WHO],
                    _RANK[("quarantine", "warning" if severity == "warning" else "error")],
                    severity,
                    "quarantine",
                    _text(row["rule"]),
                    row["n"],
                    message + _more(int(row["n"]), "rows like this"),
                    where,
                )
            )
    # Expectations: per table and rule; the first failing row of the contributor as example.
    by_rule = {(table, o.rule, o.severity): o for table, o in failed}
    for table, outcome in failed:
        row = outcome.rows[0] if outcome.rows else None
        found.append(_expectation_problem(t, OVERALL, table, outcome, _outcome_count(outcome), row))
    if not expectation_rows.empty:
        keys = [_WHO, "table", "rule", "severity"]
        ordered = expectation_rows.sort_values([*keys, "position"])
        sizes = ordered.groupby(keys).size().rename("n")
        first = ordered.drop_duplicates(keys).merge(sizes.reset_index(), on=keys, how="left")
        for row in first.to_dict(orient="records"):
            if row[_WHO] == OVERALL:
                continue
            outcome = by_rule[(row["table"], row["rule"], row["severity"])]
            found.append(
                _expectation_problem(t, row[_WHO], row["table"], outcome, row["n"], row[_ROW])
            )
    # Freshness.
    for who in whos:
        state = timeliness[who]["state"]
        if state not in ("overdue", "delinquent"):
            continue
        figures = timeliness[who]
        where = f"last updated {figures['last_updated'] or figures['last_received']}"
        message = (
            f"{names.get(who, who)}: {state}: last updated {figures['age_days']} days "
            f"before {as_of.isoformat()}, expected {figures['frequency']}"
        )
        for scope in (who, OVERALL):
            found.append(
                _problem(
                    scope,
                    _RANK[("freshness", state)],
                    "warning",
                    "freshness",
                    state,
                    1,
                    message,
                    where,
                )
            )
    if not found:
        return {who: [] for who in whos}
    problems = pd.DataFrame(found)
    problems = problems.sort_values(
        [_WHO, "_rank", "count", "where", "rule", "message"],
        ascending=[True, True, False, True, True, True],
        na_position="last",
        kind="stable",
    )
    top = problems.groupby(_WHO, sort=False).head(max_examples)
    result: dict[str, list[dict[str, Any]]] = {who: [] for who in whos}
    for row in top.drop(columns=["_rank"]).to_dict(orient="records"):
        who = row.pop(_WHO)
        if who in result:
            result[who].append(row)
    return result


def _expectation_problem(
    t: Mapping[str, pd.DataFrame],
    who: str,
    table: str,
    outcome: ExpectationOutcome,
    count: int,
    row: Any,
) -> dict[str, Any]:
    severity = "warning" if outcome.severity == "warning" else "error"
    source_file, source_ref = _row_place(t, table, row)
    where = _place(source_file, None, source_ref) or (
        f"{table} row {row}" if row is not None else table
    )
    if outcome.error:
        message = f"{table}: the expectation {outcome.rule} could not be evaluated: {outcome.error}"
    else:
        value = _row_value(t, table, outcome, row) if row is not None else None
        example = f"; first at {where}" + (f" (value {value!r})" if value is not None else "")
        message = f"{table}: {int(count):,} rows fail {outcome.rule}" + (
            example if row is not None else ""
        )
    return _problem(
        who,
        _RANK[("expectation", severity)],
        outcome.severity,
        "expectation",
        outcome.rule,
        count,
        message,
        where,
    )


# -- files -------------------------------------------------------------------------------------


def _files_section(
    t: Mapping[str, pd.DataFrame],
    files_map: pd.DataFrame,
    facts: pd.DataFrame,
    max_examples: int,
) -> list[dict[str, Any]]:
    sources = t["sources"].sort_values("source_file", kind="stable")
    contributors = files_map.groupby("source_file")[_WHO].agg(lambda s: sorted(set(s))).to_dict()
    quarantine = t["quarantine"]
    by_rule: dict[str, list[dict[str, Any]]] = {}
    if not quarantine.empty:
        counts = quarantine.groupby(["source_file", "severity", "rule"]).size().sort_index().items()
        for (source_file, severity, rule), n in counts:
            by_rule.setdefault(str(source_file), []).append(
                {"severity": severity, "rule": rule, "rows": int(n)}
            )
    conformance = t["conformance"]
    findings: dict[str, list[dict[str, Any]]] = {}
    if not conformance.empty:
        ordered = conformance.assign(
            _error=~_is(_col(conformance, "severity"), "error")
        ).sort_values(
            ["source_file", "_error", "line", "path", "rule"], na_position="last", kind="stable"
        )
        fields = ["check", "line", "path", "activity_id", "rule", "value", "message", "severity"]
        for row in ordered.groupby("source_file").head(max_examples).to_dict(orient="records"):
            findings.setdefault(str(row["source_file"]), []).append(
                {f: _plain(row.get(f)) for f in fields}
            )
    result = []
    for row in sources.to_dict(orient="records"):
        name = str(row["source_file"])
        fact = facts.loc[name] if name in facts.index else None
        checked = bool(fact["checked"]) if fact is not None else False
        result.append(
            {
                "source_file": name,
                "source": _text(row.get("source")),
                "status": _text(row.get("status")),
                "reason": _text(row.get("reason")),
                "contributors": contributors.get(name, []),
                "n_records": int(_number(row.get("n_records"))),
                "n_accepted": int(_number(row.get("n_accepted"))),
                "n_quarantined": int(_number(row.get("n_quarantined"))),
                "iati_version": _text(fact["iati_version"]) if fact is not None else None,
                "schema": {
                    "checked": checked,
                    "schema_version": _text(fact["schema_version"]) if fact is not None else None,
                    "errors": int(fact["xsd_errors"]) if fact is not None else 0,
                    "warnings": int(fact["xsd_warnings"]) if fact is not None else 0,
                },
                "codelists": {
                    "checked": bool(fact["codelist_checked"]) if fact is not None else False,
                    "errors": int(fact["codelist_errors"]) if fact is not None else 0,
                    "warnings": int(fact["codelist_warnings"]) if fact is not None else 0,
                },
                "quarantine": by_rule.get(name, []),
                "findings": findings.get(name, []),
            }
        )
    return result


def _number(value: Any) -> float:
    return 0 if value is None or pd.isna(value) else float(value)


# -- the report --------------------------------------------------------------------------------


def build_quality_report(
    tables: Mapping[str, pd.DataFrame],
    *,
    validations: Mapping[str, TableValidation] | None,
    as_of: dt.date,
    generated_at: dt.datetime,
    freshness: Mapping[str, str],
    forward_years: int = 3,
    history: Sequence[Mapping[str, Any]] = (),
    history_runs: int = 400,
    release: str | None = None,
    run_id: str | None = None,
    max_examples: int = 20,
) -> dict[str, Any]:
    """The content of ``quality/report.json`` (docs/quality-report.md)."""
    for kind, frequency in freshness.items():
        if frequency not in FREQUENCIES:
            raise ValueError(f"quality.freshness.{kind}: unknown frequency {frequency!r}")
    if generated_at.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware")
    needed = (
        "activities",
        *_ACTIVITY_TABLES,
        "cd_priorities",
        "partner_declarations",
        "sources",
        "quarantine",
        "conformance",
    )
    t: dict[str, pd.DataFrame] = dict(tables)
    for name in needed:
        t[name] = _table(tables, name)
    files_map = _file_map(t)
    members = _members(t, files_map)

    # Contributors: everyone some row belongs to.
    ids = set(files_map[_WHO])
    for frame in members.values():
        ids.update(str(w) for w in frame[_WHO].dropna().unique())
    ids.discard(OVERALL)
    contributors = sorted(
        (who.split(":", 1)[0], who.split(":", 1)[1], who) for who in ids if ":" in who
    )
    whos = [OVERALL, *(who for _, _, who in contributors)]
    kinds = {who: kind for kind, _, who in contributors}
    publisher_names = _most_frequent(
        t["activities"]
        .loc[_is(_col(t["activities"], "source"), "iati")]
        .assign(**{_WHO: lambda f: _publisher_ids(f)}),
        _WHO,
        "reporting_org_name",
    )
    names = {
        who: (publisher_names.get(who) or ref) if kind == "publisher" else ref
        for kind, ref, who in contributors
    }

    conformance_checked = "conformance" in tables
    facts = _file_facts(t, conformance_checked)
    failed = _failed(validations)
    expectation_rows = _expectation_rows(failed, members)
    expectation_counts = _expectation_counts(failed, expectation_rows)

    validity = _validity(t, members, facts, expectation_counts, whos)
    completeness = _completeness(t, members, whos)
    timeliness = _timeliness(t, members, whos, kinds, freshness, as_of)
    forward = _forward_budgets(t, members, whos, as_of, forward_years)
    traceability = _traceability(t, members, whos)
    quarantine = _quarantine(t, members, whos)
    problems = _problems(
        t, members, failed, expectation_rows, timeliness, names, whos, as_of, max_examples
    )
    states = [timeliness[who]["state"] for who in whos if who != OVERALL]
    timeliness[OVERALL]["contributors_by_state"] = {
        state: states.count(state)
        for state in ("up_to_date", "due", "overdue", "delinquent", "unknown")
    }

    def figures(who: str) -> dict[str, Any]:
        return {
            "validity": validity[who],
            "completeness": completeness[who],
            "timeliness": timeliness[who],
            "forward_budgets": forward[who],
            "traceability": traceability[who],
            "quarantine": quarantine[who],
        }

    contributor_files = files_map.groupby(_WHO)["source_file"].agg(lambda s: sorted(set(s)))
    report: dict[str, Any] = {
        "report_format": REPORT_FORMAT,
        "generated_at": generated_at.astimezone(dt.UTC).isoformat(),
        "as_of": as_of.isoformat(),
        "release": release,
        "run_id": run_id,
        "settings": {
            "freshness": dict(sorted(freshness.items())),
            "forward_years": forward_years,
        },
        "overall": figures(OVERALL),
        "problems": problems[OVERALL],
        "contributors": [
            {
                "id": who,
                "kind": kind,
                "ref": ref,
                "name": names[who],
                "slug": contributor_slug(kind, ref),
                "files": list(contributor_files.get(who, [])),
                "figures": figures(who),
                "problems": problems[who],
            }
            for kind, ref, who in contributors
        ],
        "files": _files_section(t, files_map, facts, max_examples),
        "tables": _tables_section(tables, validations, max_examples),
    }
    report = _plain(report)
    entry = history_entry(report)
    earlier = [_plain(dict(item)) for item in history]
    trend = [*earlier, entry]
    report["trend"] = trend[-history_runs:] if history_runs > 0 else []
    return report


def history_entry(report: Mapping[str, Any]) -> dict[str, Any]:
    """The run's line of ``history.json``: headline figures overall and per contributor."""
    overall = report["overall"]
    validity = overall["validity"]
    states = [c["figures"]["validity"]["state"] for c in report["contributors"]]
    years = overall["forward_budgets"]["years"]
    return _plain(
        {
            "generated_at": report["generated_at"],
            "as_of": report["as_of"],
            "release": report.get("release"),
            "overall": {
                "state_counts": {s: states.count(s) for s in ("valid", "invalid", "rejected")},
                "files": validity["files"],
                "files_rejected": validity["files_rejected"],
                "records": validity["records"],
                "records_quarantined": validity["records_quarantined"],
                "schema_errors": validity["schema_errors"],
                "codelist_errors": validity["codelist_errors"],
                "expectation_errors": validity["expectation_errors"],
                "completeness": {
                    item: value["share"] for item, value in overall["completeness"].items()
                },
                "traceability": overall["traceability"]["share"],
                "forward_budgets": years[0]["share"] if years else None,
            },
            "contributors": {
                c["id"]: {
                    "state": c["figures"]["validity"]["state"],
                    "freshness": c["figures"]["timeliness"]["state"],
                    "records": c["figures"]["validity"]["records"],
                    "records_quarantined": c["figures"]["validity"]["records_quarantined"],
                    "schema_errors": c["figures"]["validity"]["schema_errors"],
                    "codelist_errors": c["figures"]["validity"]["codelist_errors"],
                    "expectation_errors": c["figures"]["validity"]["expectation_errors"],
                }
                for c in report["contributors"]
            },
        }
    )
