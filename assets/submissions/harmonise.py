"""Checked submissions -> the harmonised CD results tables (pure; no Dagster).

Good rows become cd_priorities and results (country reports) or activities,
activity_countries, budgets, transactions, partner_declarations and results
(partner submissions), each with provenance (sheet and row). Every problem the
check found goes to quarantine with its rule and place; rows with an error are
not accepted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from assets.harmonise.schema import table_frame
from assets.iati.codelists import Codelists
from assets.iati.harmonise import ALL_TABLES, HarmonisedFile, stable_id
from assets.iati.rates import ExchangeRates
from assets.submissions.check import CheckedSubmission, json_path

#: The harmonised table each submission sheet feeds (for quarantine rows).
SHEET_TABLE = {
    "metadata": "sources",
    "cd_priorities": "cd_priorities",
    "results": "results",
    "activities": "activities",
    "declarations": "partner_declarations",
}


def _empty(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _value(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    return None if _empty(value) else value


def _period_end(period: str | None) -> dt.date | None:
    """The last day of a reporting period written as ``2025`` or ``2024-2025``."""
    years = re.findall(r"\d{4}", period or "")
    if not years or int(years[-1]) < dt.MINYEAR:  # "0000" is no year
        return None
    return dt.date(int(years[-1]), 12, 31)


def _valid_rows(checked: CheckedSubmission, sheet: str) -> list[dict[str, Any]]:
    meta = checked.metadata
    who = (
        meta.get("country_code")
        if checked.type_name == "country_report"
        else meta.get("partner_org_ref")
    )
    if checked.type_name is None or _empty(who):
        return []  # rows that cannot be attributed to a country or partner are not accepted
    frame = checked.frames.get(sheet)
    if frame is None or frame.empty:
        return []
    return [row for row in frame.to_dict(orient="records") if bool(row.get("_valid", True))]


def _all_rows(checked: CheckedSubmission, sheet: str) -> int:
    frame = checked.frames.get(sheet)
    return 0 if frame is None else len(frame)


def _usd(
    rates: ExchangeRates | None, value: float | None, currency: str | None, when: dt.date | None
) -> dict[str, Any]:
    if rates is None or value is None or not currency or when is None:
        return {"value_usd": None, "usd_rate": None, "usd_rate_period": None}
    rate = rates.lookup(currency, when)
    if rate is None:
        return {"value_usd": None, "usd_rate": None, "usd_rate_period": None}
    return {"value_usd": value / rate.rate, "usd_rate": rate.rate, "usd_rate_period": rate.period}


def harmonise_submission(
    checked: CheckedSubmission,
    *,
    source_file: str,
    sha256: str,
    size: int,
    uri: str,
    rates: ExchangeRates | None = None,
    cd_sectors: frozenset[str] = frozenset(),
    codelists: Codelists | None = None,
) -> HarmonisedFile:
    """The tables of one checked submission, with its sources row and quarantine; a
    partner activity's sector is a CD sector when it is one of ``cd_sectors``, and is
    named from the Sector codelist."""
    source = checked.type_name or "partner_submission"
    who = checked.metadata.get("country_code" if source == "country_report" else "partner_org_ref")
    attributable = checked.type_name is not None and not _empty(who)
    provenance = {"source": source, "source_file": source_file, "source_sha256": sha256}
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ALL_TABLES}
    meta = checked.metadata
    # Identifiers stay the same when the same country or partner sends a corrected report
    # for the same period (it replaces the older one): they come from who sent it, the
    # period and the row's own key, never from the file's name or a changed value.
    issuer = (source, None if _empty(who) else who, _value(meta, "reporting_period"))

    def ref(sheet: str, row: Mapping[str, Any]) -> dict[str, Any]:
        return {**provenance, "source_ref": source_ref(checked, sheet, row.get("_row"))}

    if source == "country_report":
        country = _value(meta, "country_code")
        for row in _valid_rows(checked, "cd_priorities"):
            rows["cd_priorities"].append(
                {
                    "country_code": country,
                    **{
                        k: _value(row, k)
                        for k in (
                            "priority_id",
                            "title",
                            "sector_code",
                            "lead_institution",
                            "strategy_ref",
                            "start_year",
                            "end_year",
                        )
                    },
                    **ref("cd_priorities", row),
                }
            )
        for row in _valid_rows(checked, "results"):
            rows["results"].append(_result(row, None, country, ref("results", row), issuer))
    else:
        partner = _value(meta, "partner_org_ref")
        period = _value(meta, "reporting_period")
        ids: dict[str, str] = {}
        countries: dict[str, str | None] = {}
        priorities: dict[str, str | None] = {}
        for row in _valid_rows(checked, "activities"):
            given = str(_value(row, "activity_id"))
            activity_id = given if _value(row, "in_iati") else f"{partner}:{given}"
            ids[given] = activity_id
            country = _value(row, "country_code")
            countries[given] = country
            priorities[given] = _value(row, "priority_ids")
            provenance_row = ref("activities", row)
            currency = _value(row, "currency")
            start, end = _value(row, "start_date"), _value(row, "end_date")
            rows["activities"].append(
                {
                    "activity_id": activity_id,
                    "title": _value(row, "title"),
                    "reporting_org_ref": partner,
                    "start_date": start,
                    "end_date": end,
                    "start_planned": start,
                    "end_planned": end,
                    "default_currency": currency,
                    "is_cd": True,
                    "cd_basis": "partner_declared",
                    "modality": _value(row, "modality"),
                    **provenance_row,
                }
            )
            if country:
                rows["activity_countries"].append(
                    {
                        "activity_id": activity_id,
                        "country_code": country,
                        "share": 1.0,
                        "share_basis": "activity",
                        **provenance_row,
                    }
                )
            sector = _value(row, "sector_code")
            if sector:
                rows["activity_sectors"].append(
                    {
                        "activity_id": activity_id,
                        "vocabulary": "1",
                        "code": sector,
                        "code_name": codelists.name("Sector", sector) if codelists else None,
                        "percentage": 100.0,
                        "share": 1.0,
                        "share_basis": "activity",
                        "is_cd_sector": sector in cd_sectors,
                        **provenance_row,
                    }
                )
            budget = _value(row, "budget")
            if budget is not None:
                rows["budgets"].append(
                    {
                        "budget_id": stable_id(*issuer, activity_id, "budget"),
                        "activity_id": activity_id,
                        "period_start": start,
                        "period_end": end,
                        "value": float(budget),
                        "currency": currency,
                        "value_date": start,
                        **_usd(rates, float(budget), currency, start),
                        **provenance_row,
                    }
                )
            disbursed = _value(row, "disbursed")
            if disbursed is not None:
                when = _period_end(period) or end
                converted = _usd(rates, float(disbursed), currency, when)
                rows["transactions"].append(
                    {
                        "transaction_id": stable_id(*issuer, activity_id, "disbursed"),
                        "activity_id": activity_id,
                        "transaction_type": "3",
                        "transaction_date": when,
                        "value": float(disbursed),
                        "currency": currency,
                        "value_date": when,
                        **converted,
                        "usd_rate_source": "exchange rates" if converted["usd_rate"] else None,
                        "provider_org_ref": partner,
                        "recipient_country": country,
                        "counts_toward_totals": True,
                        **provenance_row,
                    }
                )
        for row in _valid_rows(checked, "declarations"):
            given = str(_value(row, "activity_id"))
            if given not in ids:
                continue  # the check reported the unknown activity
            rows["partner_declarations"].append(
                {
                    "activity_id": ids[given],
                    "partner_org_ref": partner,
                    "period": period,
                    "priority_ids": priorities.get(given),
                    **{
                        k: _value(row, k)
                        for k in (
                            "uses_country_pfm",
                            "uses_country_procurement",
                            "uses_country_me",
                            "on_budget",
                            "results_from_country_framework",
                            "coordinated",
                            "coordinated_with",
                            "joint_programme",
                            "parallel_piu",
                        )
                    },
                    **ref("declarations", row),
                }
            )
        for row in _valid_rows(checked, "results"):
            given = str(_value(row, "activity_id"))
            if given not in ids:
                continue
            rows["results"].append(
                _result(row, ids[given], countries.get(given), ref("results", row), issuer)
            )

    data_sheets = [s for s in checked.frames if s != "metadata"]
    n_records = sum(_all_rows(checked, s) for s in data_sheets)
    n_accepted = sum(len(_valid_rows(checked, s)) for s in data_sheets)
    errors = [p for p in checked.problems if p.severity == "error"]
    if not attributable:
        status = "rejected"
        what = "the submission type" if checked.type_name is None else "the country or partner"
        reason = (
            f"{what} could not be established from the metadata, so no row can be "
            f"attributed: {len(errors)} errors (see quarantine)"
        )
    elif n_accepted == 0:
        status = "rejected"
        reason = f"no row could be accepted: {len(errors)} errors (see quarantine)"
    elif errors:
        status = "partial"
        parts = []
        if n_accepted < n_records:
            parts.append(f"{n_records - n_accepted} of {n_records} rows not accepted")
        else:
            parts.append(f"all {n_records} rows accepted")
        in_metadata = sum(1 for p in errors if p.sheet == "metadata")
        if in_metadata:
            noun = "error" if in_metadata == 1 else "errors"
            parts.append(f"{in_metadata} {noun} in the metadata")
        reason = "; ".join(parts) + " (see quarantine)"
    else:
        status, reason = "ok", None
    tables = {t: table_frame(t, r) for t, r in rows.items() if t not in {"sources", "quarantine"}}
    tables["sources"] = table_frame(
        "sources",
        [
            {
                "source_file": source_file,
                "source": source,
                "uri": uri,
                "sha256": sha256,
                "bytes": size,
                "status": status,
                "reason": reason,
                "n_records": n_records,
                "n_accepted": n_accepted,
                "n_quarantined": n_records - n_accepted,
            }
        ],
    )
    tables["quarantine"] = table_frame(
        "quarantine",
        [
            {
                "source_file": source_file,
                "source_ref": source_ref(checked, p.sheet, p.row),
                "table": SHEET_TABLE.get(p.sheet or "", "sources"),
                "field": p.column,
                "rule": p.rule,
                "value": None if _empty(p.value) else str(p.value)[:500],
                "message": p.message + (f" Fix: {p.fix}" if p.fix else ""),
                "severity": p.severity,
            }
            for p in checked.problems
        ],
    )
    return HarmonisedFile(source_file, tables)


def source_ref(checked: CheckedSubmission, sheet: str | None, row: Any) -> str:
    """Where in the submission a row or problem is: ``sheet results, row 12`` (in JSON
    ``results[10]``), ``sheet metadata``, or the file's name for the whole file."""
    if sheet is None:
        return checked.name
    number = None if _empty(row) else int(row)
    if checked.format == "json":
        return json_path(sheet, number)
    return f"sheet {sheet}, row {number}" if number else f"sheet {sheet}"


def _result(
    row: Mapping[str, Any],
    activity_id: str | None,
    country: str | None,
    provenance: Mapping[str, Any],
    issuer: tuple[Any, ...],
) -> dict[str, Any]:
    return {
        "result_id": stable_id(
            *issuer,
            activity_id,
            _value(row, "indicator_id"),
            _value(row, "period_start"),
            _value(row, "period_end"),
        ),
        "activity_id": activity_id,
        "country_code": country,
        "priority_id": _value(row, "priority_id"),
        "level": _value(row, "level"),
        "indicator_id": _value(row, "indicator_id"),
        "indicator_title": _value(row, "indicator_title"),
        "measure": _value(row, "unit"),
        **{
            k: _value(row, k)
            for k in (
                "baseline_year",
                "baseline_value",
                "target_year",
                "target_value",
                "period_start",
                "period_end",
                "actual_value",
                "data_source",
                "government_data_source",
                "from_country_framework",
            )
        },
        **provenance,
    }


def rejected_submission(
    *, source: str, source_file: str, sha256: str, size: int, uri: str, rule: str, message: str
) -> HarmonisedFile:
    """A file that could not be read as a submission at all."""
    tables = {t: table_frame(t, []) for t in ALL_TABLES}
    tables["sources"] = table_frame(
        "sources",
        [
            {
                "source_file": source_file,
                "source": source,
                "uri": uri,
                "sha256": sha256,
                "bytes": size,
                "status": "rejected",
                "reason": message,
                "n_records": 0,
                "n_accepted": 0,
                "n_quarantined": 0,
            }
        ],
    )
    tables["quarantine"] = table_frame(
        "quarantine",
        [
            {
                "source_file": source_file,
                "source_ref": "/",
                "table": "sources",
                "rule": rule,
                "message": f"file rejected: {message}",
                "severity": "error",
            }
        ],
    )
    return HarmonisedFile(source_file, tables)
