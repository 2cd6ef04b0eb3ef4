"""The metrics stage end to end on a small hand-built country (Kenya, KE, 2024).

Three partners, five activities, every piece of the stage at once:

| activity | partner | CD | sector | 2024 flows (USD) |
|---|---|---|---|---|
| GB-1-A | GB-1 | yes | 15111 | disburses 100 to SE-0-B (receiver-activity-id), and 50 more |
| GB-1-D | GB-1 | no | 15111 | disburses 30 |
| SE-0-B | SE-0 | yes | 16062 | incoming 100 from GB-1-A (provider-activity-id); disburses 80 |
| XM-DAC-41114-C | XM-DAC-41114 | yes | 16062 | disburses 40 |

GB-1-A was also published in a second file (`gb-old.xml`), which the combine
step set aside (a quarantine row). SE-0-B and XM-DAC-41114-C do the same thing
(national statistics capacity, the whole of 2024): an overlapping pair.

Hand-computed:
- counted disbursements: 100 + 50 + 30 + 80 + 40 = 300, of which CD 270 (GB-1-D is
  not CD), so cd_share (all partners) = 270 / 300 = 0.9; SE-0-B's incoming 100 is
  not counted: it is counted at the funder (funding chain);
- traceability (all partners) = 1 incoming-funds transaction with
  provider-activity-id / 1 = 1.0;
- KE x 16062 x 2024: B 80 and C 40 = 120; shares 2/3 and 1/3, hhi = 4/9 + 1/9 =
  5/9, effective partners 9/5 = 1.8; one overlapping pair; the money on activities
  in a pair 120 / 120 = 1.0;
- KE x 15111 x 2024: only GB-1-A's 150 (CD): hhi 1, effective partners 1, no pair.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from assets.harmonise.schema import table_frame
from assets.metrics.stage import METRIC_TABLES
from assets.settings import MetricsSettings
from tests.conftest import schema_reports
from tests.metrics_run import run_metrics

PROV = {"source": "iati", "source_sha256": "0" * 64}
START, END = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
SETTINGS = MetricsSettings(overlap_threshold=0.3, overlap_use_text=True, method_version="1")


def _activity(aid: str, org: str, is_cd: bool, title: str) -> dict[str, Any]:
    return {
        **PROV,
        "source_file": f"{org.lower()}.xml",
        "source_ref": f"/iati-activities/iati-activity[{aid[-1]}]",
        "activity_id": aid,
        "title": title,
        "reporting_org_ref": org,
        "hierarchy": 1,
        "start_date": START,
        "end_date": END,
        "start_actual": START,
        "end_actual": END,
        "is_cd": is_cd,
        "cd_basis": "cd_sector" if is_cd else None,
        "iati_version": "2.03",
    }


def _transaction(aid: str, n: int, kind: str, usd: float, **extra: Any) -> dict[str, Any]:
    return {
        **PROV,
        "source_file": "x.xml",
        "source_ref": f"{aid}/transaction[{n}]",
        "transaction_id": f"{aid}-{n}",
        "activity_id": aid,
        "transaction_type": kind,
        "transaction_date": dt.date(2024, 3, 1),
        "value": usd,
        "currency": "USD",
        "value_date": dt.date(2024, 3, 1),
        "value_usd": usd,
        "usd_rate": 1.0,
        "counts_toward_totals": kind != "1",
        "exclusion_reason": "incoming funds" if kind == "1" else None,
        **extra,
    }


def stage_tables() -> dict[str, pd.DataFrame]:
    """Kenya's three partners and four activities of the module docstring."""
    activities = [
        _activity("GB-1-A", "GB-1", True, "Public finance management reform"),
        _activity("GB-1-D", "GB-1", False, "Road maintenance"),
        _activity("SE-0-B", "SE-0", True, "National statistics capacity building"),
        _activity(
            "XM-DAC-41114-C", "XM-DAC-41114", True, "Capacity building for national statistics"
        ),
    ]
    sector = {"GB-1-A": "15111", "GB-1-D": "15111", "SE-0-B": "16062", "XM-DAC-41114-C": "16062"}
    transactions = [
        _transaction("GB-1-A", 1, "3", 100.0, receiver_activity_id="SE-0-B"),
        _transaction("GB-1-A", 2, "3", 50.0),
        _transaction("GB-1-D", 1, "3", 30.0),
        _transaction("SE-0-B", 1, "1", 100.0, provider_activity_id="GB-1-A"),
        _transaction("SE-0-B", 2, "3", 80.0),
        _transaction("XM-DAC-41114-C", 1, "3", 40.0),
    ]
    sources = [
        {
            "source_file": name,
            "source": "iati",
            "status": "ok",
            "n_records": 1,
            "n_accepted": 1,
            "n_quarantined": 0,
        }
        for name in ("gb-1.xml", "se-0.xml", "xm-dac-41114.xml", "x.xml", "gb-old.xml")
    ]
    return {
        "activities": table_frame("activities", activities),
        "activity_countries": table_frame(
            "activity_countries",
            [
                {
                    **PROV,
                    "source_file": "x.xml",
                    "source_ref": a,
                    "activity_id": a,
                    "country_code": "KE",
                    "percentage": 100.0,
                    "share": 1.0,
                }
                for a in sector
            ],
        ),
        "activity_sectors": table_frame(
            "activity_sectors",
            [
                {
                    **PROV,
                    "source_file": "x.xml",
                    "source_ref": a,
                    "activity_id": a,
                    "vocabulary": "1",
                    "code": code,
                    "percentage": 100.0,
                    "share": 1.0,
                    "is_cd_sector": True,
                }
                for a, code in sector.items()
            ],
        ),
        "transactions": table_frame("transactions", transactions),
        "sources": table_frame("sources", sources),
        "quarantine": table_frame(
            "quarantine",
            [
                {
                    "source_file": "gb-old.xml",
                    "source_ref": "/iati-activities/iati-activity[1]",
                    "table": "activities",
                    "field": "activity_id",
                    "rule": "duplicate_activity_across_files",
                    "value": "GB-1-A",
                    "message": "activity 'GB-1-A' is also published in gb-1.xml, which is kept",
                    "severity": "error",
                }
            ],
        ),
    }


@pytest.fixture(scope="module")
def result() -> dict[str, pd.DataFrame]:
    return run_metrics(stage_tables(), SETTINGS)


def _metric(result: dict[str, pd.DataFrame], metric: str) -> pd.Series:
    frame = result["alignment_metrics"]
    rows = frame[
        (frame["metric"] == metric)
        & (frame["country_code"] == "KE")
        & (frame["year"] == 2024)
        & frame["partner_org_ref"].fillna("").eq("")  # empty: all partners
    ]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_every_kind_of_pair_is_found(result: dict[str, pd.DataFrame]) -> None:
    pairs = result["duplication_pairs"]
    found = {
        (k, a, b)
        for k, a, b in pairs[["kind", "activity_id_a", "activity_id_b"]].itertuples(index=False)
    }
    assert found == {
        ("funding_chain", "GB-1-A", "SE-0-B"),
        ("same_activity_reported_twice", "GB-1-A", "GB-1-A"),
        ("overlapping_effort", "SE-0-B", "XM-DAC-41114-C"),
    }
    twice = pairs[pairs["kind"] == "same_activity_reported_twice"].iloc[0]
    assert "gb-old.xml" in twice["evidence"]


def test_the_funders_money_is_counted_once(result: dict[str, pd.DataFrame]) -> None:
    transactions = result["transactions"].set_index("transaction_id")
    incoming = transactions.loc["SE-0-B-1"]
    assert not incoming["counts_toward_totals"]
    assert incoming["exclusion_reason"] == "incoming funds from GB-1-A (counted at the funder)"
    counted = transactions.loc[transactions["counts_toward_totals"].astype(bool), "value_usd"]
    assert counted.sum() == pytest.approx(300.0)


def test_alignment_figures(result: dict[str, pd.DataFrame]) -> None:
    cd_share = _metric(result, "cd_share")
    assert (cd_share["numerator"], cd_share["denominator"]) == (
        pytest.approx(270),
        pytest.approx(300),
    )
    assert cd_share["value"] == pytest.approx(0.9)
    traceability = _metric(result, "traceability")
    assert (traceability["numerator"], traceability["denominator"]) == (1, 1)
    assert traceability["value"] == pytest.approx(1.0)


def test_duplication_figures(result: dict[str, pd.DataFrame]) -> None:
    metrics = result["duplication_metrics"]
    cells = metrics[
        (metrics["country_code"] == "KE")
        & (metrics["year"] == 2024)
        & metrics["priority_id"].isna()
    ].set_index("sector_code")
    statistics = cells.loc["16062"]
    assert statistics["n_partners"] == 2
    assert statistics["n_activities"] == 2
    assert statistics["cd_disbursement_usd"] == pytest.approx(120)
    assert statistics["hhi"] == pytest.approx(5 / 9)
    assert statistics["effective_partners"] == pytest.approx(1.8)
    assert statistics["n_overlap_pairs"] == 1
    assert statistics["overlap_value_share"] == pytest.approx(1.0)
    pfm = cells.loc["15111"]
    assert pfm["cd_disbursement_usd"] == pytest.approx(150)
    assert pfm["hhi"] == pytest.approx(1.0)
    assert pfm["effective_partners"] == pytest.approx(1.0)
    assert pfm["n_overlap_pairs"] == 0


def test_the_metrics_tables_follow_the_schema(result: dict[str, pd.DataFrame]) -> None:
    reports, foreign = schema_reports(result)
    for table in METRIC_TABLES:
        assert reports[table].counts == {}, table
    for table in ("duplication_pairs", "alignment_links"):
        assert foreign[table].counts == {}, (table, foreign[table].examples[:3])
