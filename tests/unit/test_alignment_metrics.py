"""Alignment links and metrics on a small hand-built country (Kenya, KE).

Three partners, twelve activities, KE 2024 (and one 2023 expenditure):

| act | partner | CD | KE USD 2024 | TC | government | declaration 2024 |
|---|---|---|---|---|---|---|
| A1 | GB | yes | 100 | D02 | channel 1 | PR1; pfm T proc T me F bud T rcf T co T jp F piu F |
| A2 | GB | yes | 100 (KE half) | D01 | channel 1 | PR9 (not KE's); all F, piu T |
| A3 | GB | yes | 50 | no | no | all unknown |
| A4 | GB | no | 150 | | | |
| B1 | SE | yes | 80 | D02 | impl. org 10 | pfm T proc F me T co T jp T piu F |
| B2 | SE | yes | 120 | B04 (PBA) | no | none |
| B3 | SE | no | 100 | | | |
| C1 | UNDP | yes | 60 | FTC flag | no | pfm T proc T me T bud T jp F piu T |
| C2 | UNDP | yes | 40 | D02 | channel 2 | PR2; pfm F rcf F co F bud F |
| C3 | UNDP | no | 200 | | | |
| C4 | UNDP | yes | commitment only (not active) | | | |
| C5 | UNDP | yes | 2023: 30 expenditure | | | |

Fields not listed are empty (unknown). co = coordinated, jp = joint_programme,
rcf = results_from_country_framework, bud = on_budget.
A1 also has a disbursement of 999 that does not count toward totals (left out).
Priorities: PR1 (15111, PFM), PR2 (16062, statistics), PR3 (43060, funded by nobody).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
import pytest

from assets.harmonise.schema import field_names, table_frame
from assets.metrics.alignment import (
    CONFIDENCE_PARTNER_DECLARED,
    CONFIDENCE_RESULT_REFERENCE,
    CONFIDENCE_SECTOR_MATCH,
    METRICS,
)
from tests.metrics_run import run_metrics

PROV = {
    "source": "partner_submission",
    "source_file": "ke-2024.xlsx",
    "source_sha256": "0" * 64,
    "source_ref": "Sheet1!A2",
}
GB, SE, UNDP = "GB-GOV-1", "SE-0", "XM-DAC-41114"
D2024 = dt.date(2024, 6, 30)


def _frame(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    return table_frame(table, [{**PROV, **row} for row in rows])


def _activity(aid: str, partner: str, is_cd: bool, aid_type: str = "", basis: str = "") -> dict:
    return {
        "activity_id": aid,
        "reporting_org_ref": partner,
        "is_cd": is_cd,
        "default_aid_type": aid_type or None,
        "cd_basis": (basis or "cd_keyword") if is_cd else None,
    }


def _tx(aid: str, n: int, usd: float, **extra: Any) -> dict:
    return {
        "transaction_id": f"{aid}-{n}",
        "activity_id": aid,
        "transaction_type": "3",
        "transaction_date": D2024,
        "value": usd,
        "currency": "USD",
        "value_usd": usd,
        "usd_rate": 1.0,
        "counts_toward_totals": True,
        **extra,
    }


def _decl(aid: str, partner: str, **flags: Any) -> dict:
    return {"activity_id": aid, "partner_org_ref": partner, "period": "2024", **flags}


ALL_FALSE = dict.fromkeys(
    [
        "uses_country_pfm",
        "uses_country_procurement",
        "uses_country_me",
        "on_budget",
        "results_from_country_framework",
        "coordinated",
        "joint_programme",
    ],
    False,
)


def _result(rid: str, aid: str, **extra: Any) -> dict:
    return {"result_id": rid, "activity_id": aid, "indicator_id": f"{aid}-ind1", **extra}


def alignment_tables() -> dict[str, pd.DataFrame]:
    """Kenya's twelve activities of the module docstring."""
    activities = [
        _activity("A1", GB, True, "D02", "aid_type_technical_cooperation;cd_sector"),
        _activity("A2", GB, True, "D01", "aid_type_technical_cooperation"),
        _activity("A3", GB, True, "C01", "cd_sector"),
        _activity("A4", GB, False, "C01"),
        _activity("B1", SE, True, "D02", "aid_type_technical_cooperation"),
        _activity("B2", SE, True, "B04"),
        _activity("B3", SE, False),
        _activity("C1", UNDP, True, "C01", "ftc_flag"),
        _activity("C2", UNDP, True, "D02", "aid_type_technical_cooperation"),
        _activity("C3", UNDP, False),
        _activity("C4", UNDP, True, "D02", "aid_type_technical_cooperation"),
        _activity("C5", UNDP, True, "D02", "aid_type_technical_cooperation"),
    ]
    countries = [
        {"activity_id": a["activity_id"], "country_code": "KE", "share": 1.0}
        for a in activities
        if a["activity_id"] != "A2"
    ] + [
        {"activity_id": "A2", "country_code": "KE", "percentage": 50.0, "share": 0.5},
        {"activity_id": "A2", "country_code": "UG", "percentage": 50.0, "share": 0.5},
    ]
    sectors = [
        {
            "activity_id": "A1",
            "vocabulary": "1",
            "code": "15111",
            "share": 1.0,
            "is_cd_sector": True,
        },
        {
            "activity_id": "A3",
            "vocabulary": "1",
            "code": "15111",
            "share": 1.0,
            "is_cd_sector": True,
        },
        # PR3's sector, but not a CD sector: no sector_match, PR3 stays unfunded
        {
            "activity_id": "B2",
            "vocabulary": "1",
            "code": "43060",
            "share": 1.0,
            "is_cd_sector": False,
        },
        # a CD sector code that is a priority's sector, but on a non-CD activity: no link
        {
            "activity_id": "A4",
            "vocabulary": "1",
            "code": "15111",
            "share": 1.0,
            "is_cd_sector": True,
        },
    ]
    transactions = [
        _tx("A1", 1, 100.0, aid_type="D02", disbursement_channel="1"),
        _tx("A1", 2, 999.0, aid_type="D02", counts_toward_totals=False),
        _tx(
            "A1",
            3,
            500.0,
            transaction_type="1",
            counts_toward_totals=False,
            provider_activity_id="GB-GOV-1-PARENT",
        ),
        _tx("A2", 1, 200.0, aid_type="D01", disbursement_channel="1"),
        _tx("A3", 1, 50.0, aid_type="C01"),
        _tx("A4", 1, 150.0, aid_type="C01"),
        _tx("B1", 1, 80.0, aid_type="D02"),
        _tx("B2", 1, 120.0, aid_type="B04"),
        _tx(
            "B2",
            2,
            70.0,
            transaction_type="1",
            counts_toward_totals=False,
            provider_activity_id="SE-0-FUND",
        ),
        _tx("B2", 3, 30.0, transaction_type="1", counts_toward_totals=False),
        _tx("B3", 1, 100.0),
        _tx("C1", 1, 60.0, aid_type="C01"),
        _tx("C2", 1, 40.0, aid_type="D02", disbursement_channel="2"),
        _tx("C3", 1, 200.0),
        _tx("C4", 1, 500.0, transaction_type="2"),
        _tx("C5", 1, 30.0, transaction_type="4", transaction_date=dt.date(2023, 3, 1)),
    ]
    declarations = [
        _decl(
            "A1",
            GB,
            priority_ids="PR1",
            uses_country_pfm=True,
            uses_country_procurement=True,
            uses_country_me=False,
            on_budget=True,
            results_from_country_framework=True,
            coordinated=True,
            joint_programme=False,
            parallel_piu=False,
        ),
        _decl("A2", GB, priority_ids="PR9", **ALL_FALSE, parallel_piu=True),
        _decl("A3", GB),  # every field empty: unknown
        _decl(
            "B1",
            SE,
            uses_country_pfm=True,
            uses_country_procurement=False,
            uses_country_me=True,
            coordinated=True,
            joint_programme=True,
            parallel_piu=False,
        ),
        _decl(
            "C1",
            UNDP,
            uses_country_pfm=True,
            uses_country_procurement=True,
            uses_country_me=True,
            on_budget=True,
            joint_programme=False,
            parallel_piu=True,
        ),
        _decl(
            "C2",
            UNDP,
            priority_ids="PR2",
            uses_country_pfm=False,
            on_budget=False,
            results_from_country_framework=False,
            coordinated=False,
        ),
        # a 2023 declaration of A1 does not apply to 2024
        {**_decl("A1", GB, on_budget=False, parallel_piu=True), "period": "2023"},
    ]
    results = [
        _result(
            "r-A1",
            "A1",
            from_country_framework=True,
            government_data_source=True,
            baseline_value=10.0,
            target_value=20.0,
        ),
        _result("r-A2", "A2", from_country_framework=False, baseline_value=1.0),
        # one indicator, two reporting periods: counted once; linked to PR2
        _result(
            "r-B1-a",
            "B1",
            country_code="KE",
            priority_id="PR2",
            from_country_framework=True,
            government_data_source=False,
            baseline_value=0.0,
            target_value=5.0,
        ),
        _result(
            "r-B1-b",
            "B1",
            country_code="KE",
            priority_id="PR2",
            from_country_framework=True,
            government_data_source=False,
            baseline_value=0.0,
            target_value=8.0,
        ),
        _result("r-B2", "B2", baseline_value=3.0, target_value=4.0),
        _result(
            "r-C1",
            "C1",
            from_country_framework=True,
            government_data_source=True,
            reference_code="KE-MTP-4.2",
            baseline_value=2.0,
        ),
        # a country's own result (no activity): not a CD results indicator of a partner
        {
            "result_id": "r-KE",
            "country_code": "KE",
            "priority_id": "PR3",
            "from_country_framework": True,
        },
    ]
    # Kenya's priorities cover 2024 on (none covers 2023); Uganda reported none
    priorities = [
        {
            "country_code": "KE",
            "priority_id": "PR1",
            "title": "PFM",
            "sector_code": "15111",
            "start_year": 2024,
            "end_year": 2027,
        },
        {
            "country_code": "KE",
            "priority_id": "PR2",
            "title": "Statistics",
            "sector_code": "16062",
            "start_year": 2024,
        },
        {
            "country_code": "KE",
            "priority_id": "PR3",
            "title": "Disaster risk",
            "sector_code": "43060",
            "start_year": 2025,
            "end_year": 2030,
        },
    ]
    orgs = [
        {"activity_id": "B1", "role": "4", "org_ref": "KE-GOV-KNBS", "org_type": "10"},
        {"activity_id": "B2", "role": "1", "org_ref": "SE-0", "org_type": "10"},
    ]
    return {
        "activities": _frame("activities", activities),
        "activity_countries": _frame("activity_countries", countries),
        "activity_sectors": _frame("activity_sectors", sectors),
        "transactions": _frame("transactions", transactions),
        "partner_declarations": _frame("partner_declarations", declarations),
        "results": _frame("results", results),
        "cd_priorities": _frame("cd_priorities", priorities),
        "participating_orgs": table_frame("participating_orgs", orgs),
    }


@pytest.fixture(scope="module")
def published() -> dict[str, pd.DataFrame]:
    return run_metrics(alignment_tables())


@pytest.fixture(scope="module")
def links(published: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return published["alignment_links"]


@pytest.fixture(scope="module")
def metrics(published: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return published["alignment_metrics"]


@pytest.fixture(scope="module")
def covered(published: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return published["alignment_metrics"]


def test_links_have_basis_and_confidence(links: pd.DataFrame) -> None:
    assert list(links.columns) == field_names("alignment_links")
    got = {
        (r.activity_id, r.country_code, r.priority_id, r.basis): r.confidence
        for r in links.itertuples(index=False)
    }
    assert got == {
        ("A1", "KE", "PR1", "partner_declared"): CONFIDENCE_PARTNER_DECLARED,
        ("A1", "KE", "PR1", "sector_match"): CONFIDENCE_SECTOR_MATCH,
        ("A3", "KE", "PR1", "sector_match"): CONFIDENCE_SECTOR_MATCH,
        ("B1", "KE", "PR2", "result_reference"): CONFIDENCE_RESULT_REFERENCE,
        ("C2", "KE", "PR2", "partner_declared"): CONFIDENCE_PARTNER_DECLARED,
    }
    assert (CONFIDENCE_PARTNER_DECLARED, CONFIDENCE_RESULT_REFERENCE, CONFIDENCE_SECTOR_MATCH) == (
        1.0,
        0.9,
        0.5,
    )
    # PR9 is not a KE priority, PR3 is funded by nobody
    assert not set(links["priority_id"]) & {"PR9", "PR3"}


def _rows(frame: pd.DataFrame, partner: str, year: int = 2024) -> dict[str, Any]:
    part = frame[
        (frame["country_code"] == "KE")
        & (frame["partner_org_ref"].fillna("") == partner)
        & (frame["year"] == year)
    ]
    assert part["metric"].is_unique
    return {r["metric"]: r for r in part.to_dict("records")}


def _check(
    row: dict[str, Any],
    numerator: float,
    denominator: float,
    value: float | None,
    n_activities: int,
) -> None:
    assert row["numerator"] == pytest.approx(numerator)
    assert row["denominator"] == pytest.approx(denominator)
    if value is None:
        assert pd.isna(row["value"])
    else:
        assert row["value"] == pytest.approx(value)
    assert row["n_activities"] == n_activities


def test_output_columns_are_the_schema(metrics: pd.DataFrame) -> None:
    assert list(metrics.columns) == field_names("alignment_metrics")
    assert set(metrics["method_version"]) == {"1"}
    # each metric at most once per country x partner x year, plus the all-partners rows,
    # and only where it measured something: never an empty value
    groups = metrics.groupby(["country_code", "partner_org_ref", "year"], dropna=False)
    assert all(g["metric"].is_unique and set(g["metric"]) <= set(METRICS) for _, g in groups)
    assert metrics["value"].notna().all()
    assert (metrics["denominator"] != 0).all()
    assert {
        (p if isinstance(p, str) else "", y)
        for p, y in zip(metrics["partner_org_ref"], metrics["year"], strict=True)
    } == {(GB, 2024), (SE, 2024), (UNDP, 2024), (UNDP, 2023), ("", 2024), ("", 2023)}


def test_one_partner_year(metrics: pd.DataFrame) -> None:
    m = _rows(metrics, GB)
    # CD A1 100 + A2 100 (KE half of 200) + A3 50 = 250; all = 250 + A4 150 = 400
    _check(m["cd_share"], 250, 400, 0.625, 4)
    # linked: A1 (declared + sector), A3 (sector) = 150 of 250 CD
    _check(m["priority_alignment"], 150, 250, 0.6, 3)
    # indicators: A1 from framework, A2 not -> 1 / 2
    _check(m["results_framework_use"], 1, 2, 0.5, 2)
    # A1 declared true, A2 declared false (and its indicator false), A3 unknown -> 1 / 2
    _check(m["objectives_from_country_framework"], 1, 2, 0.5, 2)
    # A1 government data, A2 unknown -> 1 / 1
    _check(m["government_data_use"], 1, 1, 1.0, 1)
    # TC A1 100 coordinated, A2 100 not -> 100 / 200
    _check(m["coordinated_tc"], 100, 200, 0.5, 2)
    # pfm 100/200 = .5, procurement 100/200 = .5, M&E 0/200 = 0 -> (0.5+0.5+0) / 3
    _check(m["country_systems_use"], 1.0, 3, 1 / 3, 2)
    # government sector: A1 100 on budget, A2 100 not (A3 not government) -> 100 / 200
    _check(m["on_budget"], 100, 200, 0.5, 2)
    # PIU: A2 yes, A1 no, A3 unknown -> count 1 of 2 known
    _check(m["parallel_piu_count"], 1, 2, 1, 2)
    # joint programme: A1 no, A2 no, A3 unknown -> 0 / 200
    _check(m["programme_based"], 0, 200, 0.0, 2)
    # incoming funds: A1's one carries provider-activity-id -> 1 / 1
    _check(m["traceability"], 1, 1, 1.0, 1)
    # A1 has baseline and target; A2 baseline only; A3 no results -> 1 / 3
    _check(m["results_reporting"], 1, 3, 1 / 3, 3)


def test_all_partners(metrics: pd.DataFrame) -> None:
    m = _rows(metrics, "")
    # CD: GB 250 + SE (80 + 120) + UNDP (60 + 40) = 550; all: 400 + 300 + 300 = 1000
    _check(m["cd_share"], 550, 1000, 0.55, 10)
    # linked: A1 100, A3 50, B1 80 (result reference PR2), C2 40 (declared PR2) = 270 / 550
    _check(m["priority_alignment"], 270, 550, 270 / 550, 7)
    # indicators: A1 T, A2 F, B1 T (two periods, once), C1 T; B2 unknown -> 3 / 4
    _check(m["results_framework_use"], 3, 4, 0.75, 4)
    # A1 T (declared), B1 T and C1 T (indicator), A2 F, C2 F; A3, B2 unknown -> 3 / 5
    _check(m["objectives_from_country_framework"], 3, 5, 0.6, 5)
    # A1 T, B1 F, C1 T; A2, B2 unknown -> 2 / 3
    _check(m["government_data_use"], 2, 3, 2 / 3, 3)
    # TC: A1 100 T, A2 100 F, B1 80 T, C2 40 F, C1 60 (FTC flag) unknown -> 180 / 320
    _check(m["coordinated_tc"], 180, 320, 0.5625, 4)
    # pfm: T A1 100 + B1 80 + C1 60 = 240 of 380 (A2 100, C2 40 false)
    # procurement: T A1 100 + C1 60 = 160 of 340 (A2, B1 false; C2 unknown)
    # M&E: T B1 80 + C1 60 = 140 of 340 (A1, A2 false; C2 unknown)
    systems = 240 / 380 + 160 / 340 + 140 / 340  # 1.4551083591
    _check(m["country_systems_use"], systems, 3, systems / 3, 5)  # 0.4850361197
    # government sector: A1 100 T, A2 100 F, C2 40 F (channel 2); B1 80 unknown -> 100 / 240
    _check(m["on_budget"], 100, 240, 100 / 240, 3)
    # PIU: A2, C1 yes; A1, B1 no; A3, B2, C2 unknown -> 2 (of 4 known)
    _check(m["parallel_piu_count"], 2, 4, 2, 4)
    # PBA: B1 joint 80, B2 basket (B04) 120 = 200; known adds A1 100, A2 100, C1 60 = 460
    _check(m["programme_based"], 200, 460, 200 / 460, 5)
    # incoming: A1 with id, B2 one with id and one without -> 2 / 3
    _check(m["traceability"], 2, 3, 2 / 3, 2)
    # baseline and target: A1, B1, B2 of 7 active CD activities -> 3 / 7
    _check(m["results_reporting"], 3, 7, 3 / 7, 7)


def test_unknown_declarations_are_left_out_and_coverage_shown(covered: pd.DataFrame) -> None:
    gb = _rows(covered, GB)
    # A3 declared nothing: 2 of the 3 CD activities are known
    for metric in (
        "objectives_from_country_framework",
        "country_systems_use",
        "parallel_piu_count",
    ):
        assert gb[metric]["n_activities"] == 2
        assert gb[metric]["n_activities_eligible"] == 3
        assert gb[metric]["coverage"] == pytest.approx(2 / 3)
    every = _rows(covered, "")
    assert every["programme_based"]["coverage"] == pytest.approx(5 / 7)
    assert every["results_reporting"]["coverage"] == pytest.approx(1.0)


def test_nothing_to_measure_is_not_a_row(metrics: pd.DataFrame) -> None:
    undp = _rows(metrics, UNDP)
    # UNDP has no incoming funds in 2024: no traceability, not a 0
    assert "traceability" not in undp
    assert len(undp) == len(METRICS) - 1
    # 2023: C5 spent 30, all CD, declared nothing and reported no results; no priority of
    # Kenya covers 2023
    assert set(_rows(metrics, UNDP, 2023)) == {"cd_share", "results_reporting"}
    c5 = _rows(metrics, UNDP, 2023)
    _check(c5["cd_share"], 30, 30, 1.0, 1)
    _check(c5["results_reporting"], 0, 1, 0.0, 1)
    assert c5["results_reporting"]["coverage"] == 1.0
    assert set(_rows(metrics, "", 2023)) == {"cd_share", "results_reporting"}
    assert not metrics["value"].dropna().map(math.isnan).any()


def test_priority_alignment_only_where_the_country_has_priorities(metrics: pd.DataFrame) -> None:
    uganda = metrics[metrics["country_code"] == "UG"]
    # Uganda reported no priorities: A2's other half (100 of 200) has no priority metric,
    # but its other metrics (all from GB's declaration of A2, all false) are measured
    got = {
        (p if isinstance(p, str) else "", m): v
        for p, m, v in zip(
            uganda["partner_org_ref"], uganda["metric"], uganda["value"], strict=True
        )
    }
    assert "priority_alignment" not in {m for _, m in got}
    assert got[(GB, "cd_share")] == 1.0
    assert got[("", "cd_share")] == 1.0
    assert got[(GB, "coordinated_tc")] == 0.0
    assert got[(GB, "parallel_piu_count")] == 1
    # Kenya's priorities cover 2024: measured for each partner there
    kenya = metrics[(metrics["country_code"] == "KE") & (metrics["metric"] == "priority_alignment")]
    assert set(zip(kenya["partner_org_ref"].fillna(""), kenya["year"], strict=True)) == {
        (GB, 2024),
        (SE, 2024),
        (UNDP, 2024),
        ("", 2024),
    }


def test_empty_inputs_give_an_empty_schema_frame() -> None:
    out = run_metrics({})["alignment_metrics"]
    assert out.empty
    assert list(out.columns) == field_names("alignment_metrics")
