"""Profile figures on the small compact of ``tests/profile_compact.py``, computed by hand.

Every expected number below is worked out in the comment beside it from the hand-written
tables, not read back from the code.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from assets import warehouse
from assets.metrics.alignment import METRICS
from assets.warehouse import register_frames, set_up
from publish.profiles import ProfileOptions, Profiles, _unmeasured, build_profiles, slug
from tests.profile_compact import COUNTRY_NAMES, PEER_GROUPS, SECTOR_NAMES, golden_tables
from tests.unit.test_release_files import release_files

OPTIONS = ProfileOptions(
    country_names=COUNTRY_NAMES,
    sector_names=SECTOR_NAMES,
    peer_groups=PEER_GROUPS,
    countries=("GH", "KE", "NP"),
)


def profiles_of(
    tables: Mapping[str, pd.DataFrame], options: ProfileOptions | None = None
) -> Profiles:
    """The profiles of frames registered in DuckDB as the release's tables."""
    with duckdb.connect() as con:
        set_up(con)
        register_frames(con, tables)
        return build_profiles(con, options)


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return profiles_of(golden_tables(), OPTIONS)


def _country(profiles: Profiles, code: str) -> dict[str, Any]:
    return next(p for p in profiles.countries if p["code"] == code)


def _partner(profiles: Profiles, code: str) -> dict[str, Any]:
    return next(p for p in profiles.partners if p["code"] == code)


def _money(rows: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    return {(r["key"], r["year"]): r["usd"] for r in rows}


def _rows(profiles: Profiles, path: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(profiles.rows[path].decode("utf-8"))))


def test_partner_names_come_from_the_organisations_table() -> None:
    """The release's organisations table names a partner (issue 23), not the name an
    activity happens to give its reporting organisation."""
    tables = golden_tables()
    organisations = tables["organisations"]
    organisations.loc[organisations["org_ref"] == "XM-B", "name"] = "Bank B (as organisations)"
    partners = profiles_of(tables, OPTIONS).partners
    assert [p["name"] for p in partners] == ["Agency A", "Bank B (as organisations)", "Donor D"]


def test_pages_for_every_compact_country_and_every_cd_partner(profiles: Profiles) -> None:
    assert [p["code"] for p in profiles.countries] == ["GH", "KE", "NP"]
    # Council C has no capacity-development activity: no partner page.
    assert [p["code"] for p in profiles.partners] == ["XM-A", "XM-B", "XM-D"]
    assert [p["name"] for p in profiles.partners] == ["Agency A", "Bank B", "Donor D"]


def test_ghana_money(profiles: Profiles) -> None:
    ghana = _country(profiles, "GH")
    # All disbursements: 1,000,000 + 500,000 (A1) + 400,000 (B1) + 600,000 (C1, roads).
    # CD: everything but the roads = 1,900,000; share 1.9 / 2.5 = 0.76.
    assert ghana["totals"] == {
        "disbursement_usd": 2_500_000.0,
        "cd_disbursement_usd": 1_900_000.0,
        "cd_share": 0.76,
        "cd_activities": 2,
        "partners": 2,
    }
    assert ghana["years"] == [2023, 2024]
    assert _money(ghana["money"]["by_partner"]) == {
        ("XM-A", 2023): 1_000_000.0,
        ("XM-A", 2024): 500_000.0,
        ("XM-B", 2023): 400_000.0,
    }
    assert ghana["money"]["by_partner"][0]["label"] == "Agency A"
    assert _money(ghana["money"]["by_modality"]) == {
        ("training", 2023): 1_000_000.0,
        ("training", 2024): 500_000.0,
        ("technical_assistance", 2023): 400_000.0,
    }
    # PFM: A1's 1,000,000 + half of B1's 400,000 in 2023; A1's 500,000 in 2024.
    # Employment: the other half of B1.
    assert _money(ghana["money"]["by_sector"]) == {
        ("15111", 2023): 1_200_000.0,
        ("15111", 2024): 500_000.0,
        ("16020", 2023): 200_000.0,
    }
    assert ghana["money"]["by_sector"][0]["label"] == "Public finance management (PFM)"


def test_a_transaction_without_a_country_is_split_by_share(profiles: Profiles) -> None:
    # A2's 2,000,000 with no recipient country: Kenya 60%, Nepal 40%. Kenya also gets
    # D1's 300,000; D1's 900,000 of incoming funds is not a disbursement.
    kenya, nepal = _country(profiles, "KE"), _country(profiles, "NP")
    assert kenya["totals"]["cd_disbursement_usd"] == 1_500_000.0
    assert kenya["totals"]["cd_share"] == 1.0
    assert _money(kenya["money"]["by_partner"]) == {
        ("XM-A", 2024): 1_200_000.0,
        ("XM-D", 2024): 300_000.0,
    }
    assert nepal["totals"]["cd_disbursement_usd"] == 800_000.0


def test_priorities_with_their_money_and_the_one_nobody_funds(profiles: Profiles) -> None:
    priorities = {p["priority_id"]: p for p in _country(profiles, "GH")["priorities"]}
    funded, unfunded = priorities["GH-P1"], priorities["GH-P2"]
    # A1 (1,500,000 in Ghana) and B1 (400,000) are linked to GH-P1.
    assert (funded["usd"], funded["n_activities"], funded["funded"]) == (1_900_000.0, 2, True)
    assert [(a["activity_id"], a["partner"], a["basis"]) for a in funded["activities"]] == [
        ("XM-A-1", "Agency A", "partner_declared"),
        ("XM-B-1", "Bank B", "sector_match"),
    ]
    assert (unfunded["usd"], unfunded["n_activities"], unfunded["funded"]) == (0.0, 0, False)
    assert unfunded["title"] == "Statistics for planning"


def test_results_indicator_progress(profiles: Profiles) -> None:
    (indicator,) = _country(profiles, "GH")["results"]
    assert indicator["indicator_title"] == "Statistical capacity score"
    assert (indicator["baseline_value"], indicator["target_value"]) == (10.0, 50.0)
    assert indicator["actuals"] == [
        {"period_end": "2023-12-31", "value": 20.0},
        {"period_end": "2024-12-31", "value": 30.0},
    ]
    # (30 - 10) / (50 - 10) = 0.5
    assert (indicator["latest_actual"], indicator["progress"]) == (30.0, 0.5)


def test_metrics_show_the_latest_year_with_numerator_denominator_and_coverage(
    profiles: Profiles,
) -> None:
    metrics = {m["metric"]: m for m in _country(profiles, "GH")["metrics"]}
    alignment = metrics["priority_alignment"]
    # 2024 (400,000 / 500,000), not 2023's 100 / 1,000.
    assert alignment == {
        "metric": "priority_alignment",
        "year": 2024,
        "numerator": 400_000.0,
        "denominator": 500_000.0,
        "value": 0.8,
        "n_activities": 1,
        "n_activities_eligible": 1,
        "coverage": 1.0,
    }


def test_metrics_without_a_row_are_not_measured_with_the_reason(profiles: Profiles) -> None:
    ghana = _country(profiles, "GH")
    unmeasured = {u["metric"]: u["reason"] for u in ghana["unmeasured"]}
    # Ghana has rows for priority_alignment and parallel_piu_count only
    assert set(unmeasured) == set(METRICS) - {"priority_alignment", "parallel_piu_count"}
    assert unmeasured["traceability"] == "no_incoming_funds"
    assert unmeasured["on_budget"] == "no_known_value"
    assert {m["metric"] for m in ghana["metrics"]} & set(unmeasured) == set()
    # a country that reported no priorities is told so; one whose priorities cover no
    # year with money, that
    assert _unmeasured(("priority_alignment", "cd_share"), [{"metric": "cd_share"}], False) == [
        {"metric": "priority_alignment", "reason": "no_priorities"}
    ]
    assert _unmeasured(("priority_alignment",), [], True) == [
        {"metric": "priority_alignment", "reason": "no_priority_years"}
    ]


def test_peer_ranks_and_quantiles(profiles: Profiles) -> None:
    peers = {p["metric"]: p for p in _country(profiles, "GH")["peers"]}
    everyone, africa = peers["priority_alignment"]["comparisons"]
    # GH 0.8, KE 0.5, NP 0.2: first of three; quartiles of (0.2, 0.5, 0.8) by linear
    # interpolation: 0.35 and 0.65.
    assert (everyone["group_kind"], everyone["n"], everyone["rank"]) == ("all", 3, 1)
    assert everyone["tied"] == 1  # no other country has 0.8
    assert everyone["quantiles"] == {
        "min": 0.2,
        "q25": 0.35,
        "median": 0.5,
        "q75": 0.65,
        "max": 0.8,
    }
    assert [(m["code"], m["is_self"]) for m in everyone["members"]] == [
        ("GH", True),
        ("KE", False),
        ("NP", False),
    ]
    # Africa (GH, KE): first of two; quartiles of (0.5, 0.8): 0.575, 0.65, 0.725.
    assert (africa["group_kind"], africa["group"], africa["n"], africa["rank"]) == (
        "region",
        "Africa",
        2,
        1,
    )
    assert africa["quantiles"] == {
        "min": 0.5,
        "q25": 0.575,
        "median": 0.65,
        "q75": 0.725,
        "max": 0.8,
    }
    # Parallel implementation units: fewer is better, so Ghana's 2 is last of three.
    piu = peers["parallel_piu_count"]
    assert piu["lower_is_better"] is True
    assert (piu["comparisons"][0]["rank"], piu["comparisons"][0]["n"]) == (3, 3)
    assert [m["code"] for m in piu["comparisons"][0]["members"]] == ["KE", "NP", "GH"]


def test_a_results_indicator_shared_with_a_peer(profiles: Profiles) -> None:
    (shared,) = _country(profiles, "GH")["shared_indicators"]
    # SDG 17.18.1: Kenya (75 - 0) / (100 - 0) = 0.75 ahead of Ghana's 0.5.
    assert (shared["reference"], shared["n"], shared["rank"]) == ("SDG:17.18.1", 2, 2)
    assert [(m["code"], m["progress"]) for m in shared["members"]] == [
        ("KE", 0.75),
        ("GH", 0.5),
    ]
    assert shared["quantiles"] == {
        "min": 0.5, "q25": 0.5625, "median": 0.625, "q75": 0.6875, "max": 0.75
    }  # fmt: skip
    assert _country(profiles, "NP")["shared_indicators"] == []


def test_duplication_hotspots_and_overlapping_pairs(profiles: Profiles) -> None:
    ghana = _country(profiles, "GH")
    # 2023, the latest year with CD disbursements (2025's cell disbursed nothing)
    assert [(h["sector_code"], h["year"], h["n_partners"]) for h in ghana["hotspots"]] == [
        ("15111", 2023, 2),
        ("16020", 2023, 1),
    ]
    assert ghana["hotspot_year"] == 2023
    assert ghana["hotspots"][0]["cd_disbursement_usd"] == 1_200_000.0
    assert ghana["hotspots"][0]["sector_name"] == "Public finance management (PFM)"
    (pair,) = ghana["pairs"]
    assert (pair["score"], pair["a"]["partner"], pair["b"]["partner"]) == (
        0.42,
        "Agency A",
        "Bank B",
    )


def test_data_quality_of_the_sources_behind_the_page(profiles: Profiles) -> None:
    ghana = _country(profiles, "GH")
    # The IATI files of its activities and its own country report.
    assert [(q["source_file"], q["status"]) for q in ghana["quality"]] == [
        ("gh-report.xlsx", "ok"),
        ("xm-a.xml", "ok"),
        ("xm-b.xml", "partial"),
        ("xm-c.xml", "ok"),
    ]


def test_partner_profile(profiles: Profiles) -> None:
    agency = _partner(profiles, "XM-A")
    # A1 in Ghana (1,500,000) and A2 split 1,200,000 Kenya / 800,000 Nepal.
    assert agency["totals"] == {
        "disbursement_usd": 3_500_000.0,
        "cd_disbursement_usd": 3_500_000.0,
        "cd_activities": 2,
        "countries": 3,
        "cd_to_countries_usd": 3_500_000.0,
        "cd_regional_usd": 0.0,
        "cd_unspecified_usd": 0.0,
    }
    assert _money(agency["money"]["by_country"]) == {
        ("GH", 2023): 1_000_000.0,
        ("GH", 2024): 500_000.0,
        ("KE", 2024): 1_200_000.0,
        ("NP", 2024): 800_000.0,
    }
    assert [(a["country_code"], a["metric"], a["value"]) for a in agency["alignment"]] == [
        ("GH", "priority_alignment", 1.0),
        ("KE", "priority_alignment", 1.0),
    ]
    (overlap,) = agency["overlaps"]
    assert (overlap["own"]["activity_id"], overlap["other"]["partner"]) == ("XM-A-1", "Bank B")
    # Both CD activities declared; on_budget known for A1 only, priorities for A1 only.
    declarations = agency["declarations"]
    assert (declarations["n_cd_activities"], declarations["n_declared"]) == (2, 2)
    fields = {f["field"]: (f["known"], f["total"]) for f in declarations["fields"]}
    assert fields["on_budget"] == (1, 2)
    assert fields["uses_country_pfm"] == (2, 2)
    assert fields["coordinated"] == (0, 2)
    assert [q["source_file"] for q in agency["quality"]] == ["xm-a.xml"]
    # Donor D: D1's 300,000 to Kenya, D2's 200,000 by its region's share and 50,000 to the
    # region its transaction names, D3's 100,000 to no recipient: 300,000 + 250,000 +
    # 100,000 = 650,000, all of it in the totals, only Kenya's by country.
    donor = _partner(profiles, "XM-D")
    assert donor["totals"] == {
        "disbursement_usd": 650_000.0,
        "cd_disbursement_usd": 650_000.0,
        "cd_activities": 3,
        "countries": 1,
        "cd_to_countries_usd": 300_000.0,
        "cd_regional_usd": 250_000.0,
        "cd_unspecified_usd": 100_000.0,
    }
    assert _money(donor["money"]["by_country"]) == {("KE", 2024): 300_000.0}
    assert _money(donor["money"]["by_sector"]) == {
        ("15111", 2024): 550_000.0,
        ("16062", 2024): 100_000.0,
    }
    assert donor["years"] == [2024]
    bank = _partner(profiles, "XM-B")
    assert bank["declarations"]["n_declared"] == 0
    assert bank["declarations"]["share"] == 0.0


def test_every_figure_has_its_rows(profiles: Profiles) -> None:
    ghana = _country(profiles, "GH")
    assert set(ghana["rows"]) == {
        "alignment_links",
        "alignment_metrics",
        "cd_priorities",
        "duplication_metrics",
        "duplication_pairs",
        "results",
        "sources",
        "transactions",
    }
    transactions = _rows(profiles, ghana["rows"]["transactions"])
    # Every disbursement behind Ghana's totals (the roads too: they are in the CD share).
    assert sorted(r["transaction_id"] for r in transactions) == ["t1", "t2", "t4", "t5"]
    metrics = _rows(profiles, ghana["rows"]["alignment_metrics"])
    assert {r["country_code"] for r in metrics} == {"GH"}
    assert len(metrics) == 4  # 2023 and 2024 alignment, 2024 PIUs, Agency A's 2024
    for profile in [*profiles.countries, *profiles.partners]:
        for path in profile["rows"].values():
            assert path in profiles.rows
            folder = "countries" if profile["kind"] == "country" else "partners"
            assert path.startswith(f"{folder}/{profile['slug']}/rows/")


def test_file_names_never_come_from_raw_identifiers() -> None:
    assert slug("XM-DAC-41114") == "XM-DAC-41114"
    assert slug("../../etc/passwd") == "etc_passwd"
    assert slug("GB-COH/123 456") == "GB-COH_123_456"
    assert slug("..") == "_"


def test_no_tables_no_profiles() -> None:
    empty = profiles_of({})
    assert (empty.countries, empty.partners, empty.rows) == ([], [], {})


def test_extracts_written_in_parts_are_the_extracts_written_whole(
    profiles: Profiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large table's lines are sorted and written in parts (a few rows each here): every
    extract holds the same bytes as when each table is one part."""
    monkeypatch.setattr(warehouse, "PART_ROWS", 2)
    parts = profiles_of(golden_tables(), OPTIONS)
    assert sorted(parts.rows) == sorted(profiles.rows)
    assert len(profiles.rows["countries/GH/rows/transactions.csv"].splitlines()) > 3
    for path in profiles.rows:
        assert parts.rows[path] == profiles.rows[path], path


def test_extracts_hold_the_release_csv_lines_of_their_rows(tmp_path: Path) -> None:
    """Every extract is byte for byte what the release's CSV writer gives for the page's
    rows, with cells that exercise each rule of that writer: formula-like and quoted text,
    line breaks, whole and fractional numbers, huge and negative ones, empty cells,
    booleans, dates, timestamps with and without microseconds, and a table without a
    primary key whose rows sort by every column."""
    tables = golden_tables()
    transactions = tables["transactions"].copy()
    transactions["provider_org_ref"] = transactions["provider_org_ref"].astype("object")
    transactions.loc[0, "provider_org_ref"] = '=HYPERLINK("http://example.org")'
    transactions.loc[1, "receiver_org_ref"] = 'Ministry, "Treasury"\r\nAccra'
    transactions.loc[2, "receiver_org_ref"] = "@sum\tand -1"
    rates = [1e16, 0.1, 1.5e-7, -0.0, 2.5, None, 1234567890123456.7]
    transactions["usd_rate"] = (rates * 2)[: len(transactions)]
    flags = [True, False, None, True, None, False, True]
    transactions["humanitarian"] = pd.array((flags * 2)[: len(transactions)], dtype="boolean")
    transactions["value_date"] = transactions["transaction_date"]
    transactions.loc[3, "value_date"] = None
    tables["transactions"] = transactions
    sources = tables["sources"].copy()
    sources["fetched_at"] = pd.to_datetime(
        ["2026-11-27T02:00:00.123456Z", "2026-11-27T02:00:00Z"] + [None] * (len(sources) - 2),
        utc=True,
        format="ISO8601",
    )
    tables["sources"] = sources
    metrics = tables["alignment_metrics"]
    extra = metrics[metrics["country_code"] == "GH"].head(2).copy()
    extra["numerator"] = [1e21, -3.5]
    extra["value"] = [None, -0.25]
    tables["alignment_metrics"] = pd.concat([metrics, extra, extra], ignore_index=True)
    profiles = profiles_of(tables, OPTIONS)

    def extract(path: str) -> bytes:
        return profiles.rows[path]

    def csv_bytes(table: str, frame: pd.DataFrame) -> bytes:  # as the release writes it
        return release_files(table, frame, tmp_path / f"release-{len(list(tmp_path.iterdir()))}")[0]

    ghana_activities = {"XM-A-1", "XM-B-1", "XM-C-1"}
    assert extract("countries/GH/rows/transactions.csv") == csv_bytes(
        "transactions", transactions[transactions["activity_id"].isin(ghana_activities)]
    )
    for table in ("alignment_metrics", "results", "cd_priorities", "alignment_links"):
        frame = tables[table]
        assert extract(f"countries/GH/rows/{table}.csv") == csv_bytes(
            table, frame[frame["country_code"] == "GH"]
        ), table
    ghana_files = {"gh-report.xlsx", "xm-a.xml", "xm-b.xml", "xm-c.xml"}
    assert extract("countries/GH/rows/sources.csv") == csv_bytes(
        "sources", sources[sources["source_file"].isin(ghana_files)]
    )
    assert b".123456Z" in extract("countries/GH/rows/sources.csv")
    metrics = tables["alignment_metrics"]
    assert extract("partners/XM-A/rows/alignment_metrics.csv") == csv_bytes(
        "alignment_metrics", metrics[metrics["partner_org_ref"] == "XM-A"]
    )
    assert b'"Ministry, ""Treasury""\r\nAccra"' in extract("partners/XM-A/rows/transactions.csv")


def test_on_the_shared_fixtures_a_partners_money_is_all_of_its_disbursements() -> None:
    """Every partner of the real publishers' files: its CD disbursements to countries,
    regional and global, and unspecified add up to its CD disbursements, which are all the
    dated USD disbursements of its CD activities (none vanishes for going to a region or
    to no recipient at all)."""
    from tests.unit.test_release_files import _real_tables

    tables = _real_tables()
    profiles = profiles_of(tables, ProfileOptions())
    activities = tables["activities"].drop_duplicates("activity_id")
    transactions = tables["transactions"].merge(
        activities[["activity_id", "reporting_org_ref", "is_cd"]], on="activity_id"
    )
    counted = transactions[
        transactions["transaction_type"].isin(["3", "4"])
        & transactions["counts_toward_totals"].fillna(False).astype(bool)
        & transactions["value_usd"].notna()
        & transactions["transaction_date"].notna()
        & transactions["is_cd"].fillna(False).astype(bool)
    ]
    expected = counted.groupby("reporting_org_ref")["value_usd"].sum()
    assert len(profiles.partners) >= 3
    regional = 0.0
    for partner in profiles.partners:
        totals = partner["totals"]
        parts = (
            totals["cd_to_countries_usd"] + totals["cd_regional_usd"] + totals["cd_unspecified_usd"]
        )
        assert parts == pytest.approx(totals["cd_disbursement_usd"], abs=0.05), partner["code"]
        assert totals["cd_disbursement_usd"] == pytest.approx(
            float(expected.get(partner["code"], 0.0)), abs=0.05
        ), partner["code"]
        regional += totals["cd_regional_usd"]
    assert regional > 0  # one of Spain's Indonesia activities gives most of itself to 789


def test_tied_countries_share_the_rank_and_say_so() -> None:
    tables = golden_tables()
    metrics = tables["alignment_metrics"].copy()
    kenya = (
        (metrics["country_code"] == "KE")
        & (metrics["metric"] == "priority_alignment")
        & metrics["partner_org_ref"].isna()
    )
    metrics.loc[kenya, ["numerator", "value"]] = [1_200_000.0, 0.8]  # as Ghana's 0.8
    tied = profiles_of({**tables, "alignment_metrics": metrics}, OPTIONS)
    for code in ("GH", "KE"):
        peers = {p["metric"]: p for p in _country(tied, code)["peers"]}
        everyone = peers["priority_alignment"]["comparisons"][0]
        # GH and KE 0.8, NP 0.2: both first, two sharing it
        assert (everyone["n"], everyone["rank"], everyone["tied"]) == (3, 1, 2)
    nepal = {p["metric"]: p for p in _country(tied, "NP")["peers"]}
    everyone = nepal["priority_alignment"]["comparisons"][0]
    assert (everyone["rank"], everyone["tied"]) == (3, 1)  # third, alone
