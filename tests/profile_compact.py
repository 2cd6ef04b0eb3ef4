"""A small, realistic compact for the profile pages: three countries, four partners.

The tables are written by hand, following schema/, so that every figure a profile shows
can be computed by hand (the figures are in ``tests/unit/test_profiles.py``):

- Ghana (GH): Agency A's PFM training (A1: USD 1,000,000 in 2023, 500,000 in 2024),
  Bank B's PFM and employment advice (B1: 400,000 in 2023, half in each sector), and
  Council C's road works, which are not capacity development (C1: 600,000 in 2023).
  Priorities: GH-P1 (public financial management, funded by A1 and B1) and GH-P2
  (statistics, funded by nobody). One results indicator (SDG 17.18.1): baseline 10,
  target 50, actuals 20 then 30.
- Kenya (KE): Agency A's regional programme (A2: 2,000,000 in 2024, 60% Kenya and 40%
  Nepal, no recipient country on the transaction) and Donor D's twinning (D1: 300,000
  in 2024). One results indicator with the same reference: baseline 0, target 100,
  actual 75.
- Nepal (NP): its 40% of A2.
- Beyond the countries, Donor D's West African audit network (D2: 200,000 in 2024 split
  by the activity's one region, 298, and 50,000 on a transaction that names the region
  289) and its global statistics fund (D3: 100,000 in 2024, no recipient at all).

Peer groups: region Africa (GH, KE) and Asia (NP).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from assets.harmonise.schema import table_frame

COUNTRY_NAMES = {"GH": "Ghana", "KE": "Kenya", "NP": "Nepal"}
PEER_GROUPS = {"region": {"Africa": ["GH", "KE"], "Asia": ["NP"]}}
PARTNERS = {
    "XM-A": "Agency A",
    "XM-B": "Bank B",
    "XM-C": "Council C",
    "XM-D": "Donor D",
}
SECTOR_NAMES = {"15111": "Public finance management (PFM)", "16020": "Employment creation"}


def _activity(
    activity_id: str, partner: str, title: str, is_cd: bool, modality: str | None
) -> dict[str, Any]:
    return {
        "activity_id": activity_id,
        "title": title,
        "reporting_org_ref": partner,
        "reporting_org_name": PARTNERS[partner],
        "is_cd": is_cd,
        "modality": modality,
        "source": "iati",
        "source_file": f"{partner.lower()}.xml",
    }


def _disbursement(
    transaction_id: str, activity_id: str, date: str, usd: float, country: str | None = None
) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "activity_id": activity_id,
        "transaction_type": "3",
        "transaction_date": pd.Timestamp(date).date(),
        "value": usd,
        "currency": "USD",
        "value_usd": usd,
        "recipient_country": country,
        "counts_toward_totals": True,
        "source": "iati",
    }


def _metric(
    country: str,
    partner: str | None,
    year: int,
    metric: str,
    numerator: float,
    denominator: float,
    n: int,
    eligible: int,
) -> dict[str, Any]:
    return {
        "country_code": country,
        "partner_org_ref": partner,
        "year": year,
        "metric": metric,
        "numerator": numerator,
        "denominator": denominator,
        "value": numerator / denominator if metric != "parallel_piu_count" else numerator,
        "n_activities": n,
        "n_activities_eligible": eligible,
        "coverage": n / eligible,
        "method_version": "1",
    }


def golden_tables() -> dict[str, pd.DataFrame]:
    activities = [
        _activity("XM-A-1", "XM-A", "PFM training for district treasuries", True, "training"),
        _activity("XM-A-2", "XM-A", "Regional statistics programme", True, "technical_assistance"),
        _activity("XM-B-1", "XM-B", "Budget and employment advice", True, "technical_assistance"),
        _activity("XM-C-1", "XM-C", "Feeder roads", False, None),
        _activity("XM-D-1", "XM-D", "Treasury twinning", True, "twinning"),
        _activity("XM-D-2", "XM-D", "Audit network", True, "technical_assistance"),
        _activity("XM-D-3", "XM-D", "Global statistics fund", True, "technical_assistance"),
    ]
    countries = [
        {"activity_id": "XM-A-1", "country_code": "GH", "percentage": 100, "share": 1.0},
        {"activity_id": "XM-A-2", "country_code": "KE", "percentage": 60, "share": 0.6},
        {"activity_id": "XM-A-2", "country_code": "NP", "percentage": 40, "share": 0.4},
        {"activity_id": "XM-B-1", "country_code": "GH", "percentage": 100, "share": 1.0},
        {"activity_id": "XM-C-1", "country_code": "GH", "percentage": 100, "share": 1.0},
        {"activity_id": "XM-D-1", "country_code": "KE", "percentage": 100, "share": 1.0},
    ]
    countries = [{**row, "share_basis": "activity"} for row in countries]
    regions = [
        {
            "activity_id": "XM-D-2",
            "vocabulary": "1",
            "region_code": "298",
            "share": 1.0,
            "share_basis": "activity",
        }
    ]
    sectors = [
        {"activity_id": "XM-A-1", "vocabulary": "1", "code": "15111", "share": 1.0},
        {"activity_id": "XM-A-2", "vocabulary": "1", "code": "15111", "share": 1.0},
        {"activity_id": "XM-B-1", "vocabulary": "1", "code": "15111", "share": 0.5},
        {"activity_id": "XM-B-1", "vocabulary": "1", "code": "16020", "share": 0.5},
        {"activity_id": "XM-C-1", "vocabulary": "1", "code": "21020", "share": 1.0},
        {"activity_id": "XM-D-1", "vocabulary": "1", "code": "15111", "share": 1.0},
        {"activity_id": "XM-D-2", "vocabulary": "1", "code": "15111", "share": 1.0},
        {"activity_id": "XM-D-3", "vocabulary": "1", "code": "16062", "share": 1.0},
    ]
    sectors = [{**row, "share_basis": "activity"} for row in sectors]
    transactions = [
        _disbursement("t1", "XM-A-1", "2023-03-01", 1_000_000, "GH"),
        _disbursement("t2", "XM-A-1", "2024-02-01", 500_000, "GH"),
        _disbursement("t3", "XM-A-2", "2024-05-01", 2_000_000),
        _disbursement("t4", "XM-B-1", "2023-06-30", 400_000, "GH"),
        _disbursement("t5", "XM-C-1", "2023-09-30", 600_000, "GH"),
        _disbursement("t6", "XM-D-1", "2024-07-01", 300_000, "KE"),
        _disbursement("t8", "XM-D-2", "2024-03-31", 200_000),
        {
            **_disbursement("t9", "XM-D-2", "2024-09-30", 50_000),
            "recipient_region": "289",
            "recipient_region_vocabulary": "1",
        },
        _disbursement("t10", "XM-D-3", "2024-06-30", 100_000),
        {  # incoming funds: never counted as a disbursement
            **_disbursement("t7", "XM-D-1", "2024-01-01", 900_000, "KE"),
            "transaction_type": "1",
        },
    ]
    report = {"source": "country_report", "source_file": "gh-report.xlsx"}
    priorities = [
        {
            "country_code": "GH",
            "priority_id": "GH-P1",
            "title": "Public financial management",
            "sector_code": "15111",
            "start_year": 2022,
            "end_year": 2026,
            **report,
        },
        {
            "country_code": "GH",
            "priority_id": "GH-P2",
            "title": "Statistics for planning",
            "sector_code": "16062",
            "start_year": 2023,
            "end_year": 2027,
            **report,
        },
        {
            "country_code": "KE",
            "priority_id": "KE-P1",
            "title": "Public finance reform",
            "sector_code": "15111",
            "source": "country_report",
            "source_file": "ke-report.xlsx",
        },
    ]
    links = [
        {
            "activity_id": "XM-A-1",
            "country_code": "GH",
            "priority_id": "GH-P1",
            "basis": "partner_declared",
            "confidence": 1.0,
        },
        {
            "activity_id": "XM-B-1",
            "country_code": "GH",
            "priority_id": "GH-P1",
            "basis": "sector_match",
            "confidence": 0.5,
        },
        {
            "activity_id": "XM-A-2",
            "country_code": "KE",
            "priority_id": "KE-P1",
            "basis": "sector_match",
            "confidence": 0.5,
        },
    ]
    results = []
    for period_end, actual in (("2023-12-31", 20.0), ("2024-12-31", 30.0)):
        results.append(
            {
                "result_id": f"GH-R1-{period_end[:4]}",
                "country_code": "GH",
                "priority_id": "GH-P2",
                "level": "institutional",
                "indicator_id": "GH-IND-1",
                "indicator_title": "Statistical capacity score",
                "measure": "unit",
                "ascending": True,
                "reference_vocabulary": "SDG",
                "reference_code": "17.18.1",
                "baseline_year": 2020,
                "baseline_value": 10.0,
                "target_year": 2025,
                "target_value": 50.0,
                "period_start": pd.Timestamp(f"{period_end[:4]}-01-01").date(),
                "period_end": pd.Timestamp(period_end).date(),
                "actual_value": actual,
                **report,
            }
        )
    results.append(
        {
            "result_id": "KE-R1",
            "country_code": "KE",
            "level": "institutional",
            "indicator_id": "KE-IND-1",
            "indicator_title": "Statistical capacity (Kenya)",
            "measure": "unit",
            "ascending": True,
            "reference_vocabulary": "SDG",
            "reference_code": "17.18.1",
            "baseline_year": 2020,
            "baseline_value": 0.0,
            "target_year": 2026,
            "target_value": 100.0,
            "period_end": pd.Timestamp("2024-12-31").date(),
            "actual_value": 75.0,
            "source": "country_report",
            "source_file": "ke-report.xlsx",
        }
    )
    metrics = [
        _metric("GH", None, 2023, "priority_alignment", 100, 1000, 1, 2),  # older: not shown
        _metric("GH", None, 2024, "priority_alignment", 400_000, 500_000, 1, 1),
        _metric("KE", None, 2024, "priority_alignment", 750_000, 1_500_000, 1, 2),
        _metric("NP", None, 2024, "priority_alignment", 160_000, 800_000, 1, 1),
        _metric("GH", None, 2024, "parallel_piu_count", 2, 1, 1, 1),
        _metric("KE", None, 2024, "parallel_piu_count", 0, 1, 2, 2),
        _metric("NP", None, 2024, "parallel_piu_count", 1, 1, 1, 1),
        _metric("GH", "XM-A", 2024, "priority_alignment", 500_000, 500_000, 1, 1),
        _metric("KE", "XM-A", 2024, "priority_alignment", 1_200_000, 1_200_000, 1, 1),
    ]
    duplication = [
        {
            "country_code": "GH",
            "sector_code": "15111",
            "year": 2023,
            "n_partners": 2,
            "n_activities": 2,
            "cd_disbursement_usd": 1_200_000.0,
            "hhi": (1_000_000 / 1_200_000) ** 2 + (200_000 / 1_200_000) ** 2,
            "effective_partners": 1 / ((1_000_000 / 1_200_000) ** 2 + (200_000 / 1_200_000) ** 2),
            "fragmentation_ratio": 0.5,
            "n_overlap_pairs": 1,
            "overlap_value_share": 1.0,
            "method_version": "1",
        },
        {
            "country_code": "GH",
            "sector_code": "16020",
            "year": 2023,
            "n_partners": 1,
            "n_activities": 1,
            "cd_disbursement_usd": 200_000.0,
            "hhi": 1.0,
            "effective_partners": 1.0,
            "fragmentation_ratio": 0.0,
            "n_overlap_pairs": 0,
            "overlap_value_share": 0.0,
            "method_version": "1",
        },
        # a later year whose activities still run but disbursed nothing: not the hotspots'
        {
            "country_code": "GH",
            "sector_code": "15111",
            "year": 2025,
            "n_partners": 2,
            "n_activities": 2,
            "cd_disbursement_usd": 0.0,
            "n_overlap_pairs": 1,
            "method_version": "1",
        },
    ]
    pairs = [
        {
            "pair_id": "p-gh-1",
            "activity_id_a": "XM-A-1",
            "activity_id_b": "XM-B-1",
            "country_code": "GH",
            "kind": "overlapping_effort",
            "score": 0.42,
            "sector_overlap": 0.5,
            "date_overlap": 0.84,
            "title_similarity": None,
            "evidence": "same sector 15111",
        }
    ]
    declarations = [
        {
            "activity_id": "XM-A-1",
            "partner_org_ref": "XM-A",
            "period": "2024",
            "priority_ids": "GH-P1",
            "on_budget": True,
            "uses_country_pfm": True,
            "source": "partner_submission",
            "source_file": "xm-a-submission.xlsx",
        },
        {
            "activity_id": "XM-A-2",
            "partner_org_ref": "XM-A",
            "period": "2024",
            "uses_country_pfm": False,
            "source": "partner_submission",
            "source_file": "xm-a-submission.xlsx",
        },
    ]
    sources = [
        {
            "source_file": "xm-a.xml",
            "source": "iati",
            "status": "ok",
            "n_records": 2,
            "n_accepted": 2,
            "n_quarantined": 0,
        },
        {
            "source_file": "xm-b.xml",
            "source": "iati",
            "status": "partial",
            "n_records": 3,
            "n_accepted": 1,
            "n_quarantined": 2,
            "reason": "2 activities not accepted",
        },
        {
            "source_file": "xm-c.xml",
            "source": "iati",
            "status": "ok",
            "n_records": 1,
            "n_accepted": 1,
            "n_quarantined": 0,
        },
        {
            "source_file": "xm-d.xml",
            "source": "iati",
            "status": "ok",
            "n_records": 3,
            "n_accepted": 3,
            "n_quarantined": 0,
        },
        {
            "source_file": "gh-report.xlsx",
            "source": "country_report",
            "status": "ok",
            "n_records": 5,
            "n_accepted": 5,
            "n_quarantined": 0,
        },
        {
            "source_file": "ke-report.xlsx",
            "source": "country_report",
            "status": "ok",
            "n_records": 2,
            "n_accepted": 2,
            "n_quarantined": 0,
        },
    ]
    tables = {
        "activities": table_frame("activities", activities),
        "activity_countries": table_frame("activity_countries", countries),
        "activity_regions": table_frame("activity_regions", regions),
        "activity_sectors": table_frame("activity_sectors", sectors),
        "transactions": table_frame("transactions", transactions),
        "cd_priorities": table_frame("cd_priorities", priorities),
        "alignment_links": table_frame("alignment_links", links),
        "results": table_frame("results", results),
        "alignment_metrics": table_frame("alignment_metrics", metrics),
        "duplication_metrics": table_frame("duplication_metrics", duplication),
        "duplication_pairs": table_frame("duplication_pairs", pairs),
        "partner_declarations": table_frame("partner_declarations", declarations),
        "sources": table_frame("sources", sources),
        # the partners' names, as the release's organisations table gives them
        "organisations": table_frame(
            "organisations",
            [{"org_ref": ref, "name": name, "org_type": "10"} for ref, name in PARTNERS.items()],
        ),
    }
    return {name: _with_provenance(frame) for name, frame in tables.items()}


def _with_provenance(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row's provenance, as a harmoniser records it: the file, its sha256, the place."""
    frame = frame.copy()
    if "source_file" in frame:
        files = frame["source_file"].astype("string").fillna("unknown.xml")
        frame["source_file"] = files
        if "source_sha256" in frame:
            frame["source_sha256"] = [hashlib.sha256(f.encode()).hexdigest() for f in files]
    if "source_ref" in frame:
        frame["source_ref"] = [f"row {i + 1}" for i in range(len(frame))]
    if "source" in frame:
        frame["source"] = frame["source"].astype("string").fillna("iati")
    return frame
