"""Headline figures of a release: what a reader looks at first, and what CHANGELOG compares.

Disbursements follow metrics.md: transaction types 3 (disbursement) and 4
(expenditure) that count toward totals, in USD at the value date. A
transaction without its own recipient country is split across the activity's
countries by ``share``, so country figures never add up to more than the total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

DISBURSEMENT_TYPES = ("3", "4")


def disbursements(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """USD disbursements per transaction and country: activity_id, country_code, year
    (of ``transaction_date``, as the metrics count it; missing when undated), usd, is_cd."""
    transactions = tables.get("transactions")
    activities = tables.get("activities")
    columns = ["activity_id", "country_code", "year", "usd", "is_cd"]
    if transactions is None or activities is None or transactions.empty:
        return pd.DataFrame(columns=columns)
    counted = transactions[
        transactions["transaction_type"].isin(DISBURSEMENT_TYPES)
        & transactions["counts_toward_totals"].fillna(False).astype(bool)
        & transactions["value_usd"].notna()
    ][["activity_id", "recipient_country", "value_usd", "transaction_date"]]
    if counted.empty:
        return pd.DataFrame(columns=columns)
    counted = counted.assign(
        year=pd.to_datetime(counted["transaction_date"], errors="coerce", utc=True).dt.year.astype(
            "Int64"
        )
    ).drop(columns="transaction_date")
    own = counted[counted["recipient_country"].notna()].rename(
        columns={"recipient_country": "country_code", "value_usd": "usd"}
    )
    rest = counted[counted["recipient_country"].isna()].drop(columns="recipient_country")
    countries = tables.get("activity_countries")
    if countries is not None and not countries.empty:
        split = rest.merge(
            countries[["activity_id", "country_code", "share"]], on="activity_id", how="left"
        )
        split["usd"] = split["value_usd"] * split["share"].fillna(1.0)
        split = split.drop(columns=["value_usd", "share"])
    else:
        split = rest.rename(columns={"value_usd": "usd"}).assign(country_code=pd.NA)
    rows = pd.concat(
        [own[["activity_id", "country_code", "year", "usd"]], split], ignore_index=True
    )
    flags = activities[["activity_id", "is_cd"]].drop_duplicates("activity_id")
    rows = rows.merge(flags, on="activity_id", how="left")
    rows["is_cd"] = rows["is_cd"].fillna(False).astype(bool)
    rows["usd"] = rows["usd"].astype("float64")
    return rows[columns]


def headline_figures(tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """The release's headline figures (plain numbers, rounded for display)."""
    activities = tables.get("activities", pd.DataFrame())
    sources = tables.get("sources", pd.DataFrame())
    quarantine = tables.get("quarantine", pd.DataFrame())
    money = disbursements(tables)
    total = float(money["usd"].sum()) if len(money) else 0.0
    cd = float(money.loc[money["is_cd"], "usd"].sum()) if len(money) else 0.0
    cd_activities = int(activities["is_cd"].fillna(False).sum()) if len(activities) else 0
    figures: dict[str, Any] = {
        "activities": len(activities),
        "cd_activities": cd_activities,
        "publishers": int(activities["reporting_org_ref"].nunique()) if len(activities) else 0,
        "countries": int(tables["activity_countries"]["country_code"].nunique())
        if "activity_countries" in tables and len(tables["activity_countries"])
        else 0,
        "transactions": len(tables.get("transactions", ())),
        "disbursement_usd": round(total, 2),
        "cd_disbursement_usd": round(cd, 2),
        "cd_share": round(cd / total, 4) if total else None,
        "files": len(sources),
        "files_rejected": int((sources["status"] == "rejected").sum()) if len(sources) else 0,
        "records_quarantined": int((quarantine["severity"] == "error").sum())
        if len(quarantine)
        else 0,
    }
    return figures


def country_figures(tables: Mapping[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Per recipient country: disbursements, CD disbursements, CD share, CD activities."""
    money = disbursements(tables)
    activities = tables.get("activities", pd.DataFrame())
    countries = tables.get("activity_countries", pd.DataFrame())
    cd_ids = (
        set(activities.loc[activities["is_cd"].fillna(False).astype(bool), "activity_id"])
        if len(activities)
        else set()
    )
    cd_count: dict[str, int] = {}
    if len(countries):
        for code, group in countries.groupby("country_code"):
            cd_count[str(code)] = int(group["activity_id"].isin(cd_ids).sum())
    rows: dict[str, dict[str, Any]] = {}
    for code, group in money.dropna(subset=["country_code"]).groupby("country_code"):
        total = float(group["usd"].sum())
        cd = float(group.loc[group["is_cd"], "usd"].sum())
        rows[str(code)] = {
            "country_code": str(code),
            "disbursement_usd": round(total, 2),
            "cd_disbursement_usd": round(cd, 2),
            "cd_share": round(cd / total, 4) if total else None,
            "cd_activities": cd_count.get(str(code), 0),
        }
    for code, count in cd_count.items():
        rows.setdefault(
            code,
            {
                "country_code": code,
                "disbursement_usd": 0.0,
                "cd_disbursement_usd": 0.0,
                "cd_share": None,
                "cd_activities": count,
            },
        )
    return [rows[k] for k in sorted(rows)]
