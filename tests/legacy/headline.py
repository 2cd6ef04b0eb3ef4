"""The release's headline figures, country figures, credits and catalogue metrics as
pandas computed them over whole tables (``publish/headline.py`` and
``publish/release.py`` before they moved to SQL), kept whole as the oracle of
tests/unit/test_release_figures.py. Not used by the pipeline.

Headline figures of a release: what a reader looks at first, and what CHANGELOG compares.

Disbursements follow metrics.md: transaction types 3 (disbursement) and 4
(expenditure) that count toward totals, in USD at the value date. A
transaction without its own recipient country (or region) is split across the
activity's countries and regions by ``share``, so country figures never add up to more
than the total, and what no recipient covers still counts in it.
"""

from __future__ import annotations

import json
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
    region = (
        transactions["recipient_region"]
        if "recipient_region" in transactions
        else pd.Series(pd.NA, index=transactions.index)
    )
    counted = transactions.assign(recipient_region=region)[
        transactions["transaction_type"].isin(DISBURSEMENT_TYPES)
        & transactions["counts_toward_totals"].fillna(False).astype(bool)
        & transactions["value_usd"].notna()
    ][["activity_id", "recipient_country", "recipient_region", "value_usd", "transaction_date"]]
    if counted.empty:
        return pd.DataFrame(columns=columns)
    counted = counted.assign(
        year=pd.to_datetime(counted["transaction_date"], errors="coerce", utc=True).dt.year.astype(
            "Int64"
        )
    ).drop(columns="transaction_date")
    # a transaction's own country, else its own region (no country), else the activity's
    # countries and regions by share, and what they leave uncovered to no country
    own = counted[counted["recipient_country"].notna()].rename(
        columns={"recipient_country": "country_code", "value_usd": "usd"}
    )
    regional = counted[counted["recipient_country"].isna() & counted["recipient_region"].notna()]
    regional = regional.rename(columns={"value_usd": "usd"}).assign(country_code=pd.NA)
    rest = counted[counted["recipient_country"].isna() & counted["recipient_region"].isna()]
    rest = rest.drop(columns=["recipient_country", "recipient_region"])
    parts = []
    for table, key in (("activity_countries", "country_code"), ("activity_regions", None)):
        frame = tables.get(table)
        if frame is not None and not frame.empty:
            shares = frame[["activity_id", "share"]].assign(
                country_code=frame[key] if key else pd.NA
            )
            parts.append(shares)
    recipients = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["activity_id", "share", "country_code"])
    )
    recipients["share"] = recipients["share"].astype("float64").fillna(1.0)
    split = rest.merge(recipients, on="activity_id", how="inner")
    split["usd"] = split["value_usd"] * split["share"]
    covered = recipients.groupby("activity_id")["share"].sum().clip(0.0, 1.0)
    left = rest.assign(covered=rest["activity_id"].map(covered).fillna(0.0).astype("float64"))
    left = left[left["covered"] < 1.0 - 1e-9]
    left = left.assign(usd=left["value_usd"] * (1.0 - left["covered"]), country_code=pd.NA)
    split = pd.concat(
        [
            regional[["activity_id", "country_code", "year", "usd"]],
            split[["activity_id", "country_code", "year", "usd"]],
            left[["activity_id", "country_code", "year", "usd"]],
        ],
        ignore_index=True,
    )
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


def credits(tables: Mapping[str, pd.DataFrame], credits: tuple[str, ...]) -> list[dict[str, str]]:
    sources = []
    activities = tables.get("activities")
    if activities is not None and len(activities):
        publishers = (
            activities[["reporting_org_ref", "reporting_org_name"]]
            .drop_duplicates("reporting_org_ref")
            .dropna(subset=["reporting_org_ref"])
            .sort_values("reporting_org_ref")
        )
        for ref, name in publishers.itertuples(index=False):
            label = f"{name} ({ref})" if isinstance(name, str) else str(ref)
            sources.append({"title": f"IATI activity data published by {label}"})
    sources += [{"title": credit} for credit in credits]
    return sources


def all_partners(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Alignment rows of all partners together (``partner_org_ref`` empty)."""
    if frame is None or frame.empty:
        return frame
    return frame[frame["partner_org_ref"].fillna("").eq("")]


def latest_years(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Each country's latest year only: what the catalogue page shows. The release's
    data files hold every year and partner; the catalogue stays small however many."""
    if frame is None or frame.empty:
        return frame
    latest = frame.groupby("country_code", dropna=False)["year"].transform("max")
    return frame[frame["year"] == latest]


def records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records
