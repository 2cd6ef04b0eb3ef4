"""Overlapping effort pairs and duplication / fragmentation metrics on a hand-built country
(the metrics stage, run on frames by :func:`tests.metrics_run.run_metrics`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pandas as pd
import pytest

from assets.harmonise.schema import field_names, table_frame
from assets.metrics.duplication import (
    DEFAULT_SEARCH,
    PairSearch,
    PairSearchStats,
    overlap_clusters,
)
from assets.metrics.similarity import text_similarity
from assets.settings import MetricsSettings
from tests.metrics_run import SETTINGS, run_metrics

P1, P2, P3 = "GB-GOV-1", "DE-1", "XM-DAC-41114"
CD_SECTORS = {"15110", "15111", "15112", "11330"}


def d(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


# id, partner, is_cd, country, {sector: share}, start, end, title
Row = tuple[str, str, bool, str, dict[str, float], str | None, str | None, str]
ACTIVITIES: list[Row] = [
    # the overlapping pair A1 x A2
    (
        "A01",
        P1,
        True,
        "KE",
        {"15111": 0.8, "15110": 0.2},
        "2023-01-01",
        "2024-12-31",
        "Public financial management reform support in Kenya",
    ),
    (
        "A02",
        P2,
        True,
        "KE",
        {"15111": 1.0},
        "2023-01-01",
        "2025-06-30",
        "Support to public financial management reform, Kenya",
    ),
    # same partner as A02, dates overlap A02 only -> excluded (same partner)
    (
        "A04",
        P2,
        True,
        "KE",
        {"15111": 1.0},
        "2025-01-01",
        "2025-06-30",
        "Public financial management reform support, phase 2",
    ),
    # other country -> excluded
    (
        "A05",
        P3,
        True,
        "UG",
        {"15111": 1.0},
        "2023-01-01",
        "2024-12-31",
        "Public financial management reform support in Uganda",
    ),
    # not CD -> excluded
    (
        "A06",
        P3,
        False,
        "KE",
        {"15111": 1.0},
        "2023-01-01",
        "2025-06-30",
        "Public financial management reform support",
    ),
    # disjoint dates -> excluded
    (
        "A07",
        P2,
        True,
        "KE",
        {"15111": 1.0},
        "2019-01-01",
        "2020-12-31",
        "Public financial management reform support, earlier phase",
    ),
    # another CD sector only -> never in the 15111 block
    (
        "A08",
        P3,
        True,
        "KE",
        {"15112": 1.0},
        "2023-01-01",
        "2023-12-31",
        "Public financial management for county governments",
    ),
    # same sector and dates overlap, but different work -> excluded by the text
    (
        "A09",
        P3,
        True,
        "KE",
        {"11330": 1.0},
        "2023-01-01",
        "2024-12-31",
        "Vocational training scholarships for young women in Mombasa",
    ),
    (
        "A10",
        P2,
        True,
        "KE",
        {"11330": 1.0},
        "2023-01-01",
        "2023-12-31",
        "TVET instructor certification programme",
    ),
    # no end date -> not scored
    (
        "A11",
        P1,
        True,
        "KE",
        {"15111": 1.0},
        "2023-01-01",
        None,
        "Public financial management reform support (bridge)",
    ),
    # dates 2021 (disjoint) but a late disbursement in 2023
    (
        "A12",
        P3,
        True,
        "KE",
        {"15111": 0.5, "15112": 0.5},
        "2021-01-01",
        "2021-12-31",
        "County budget planning and PFM",
    ),
]

# activity, type, date, value_usd, counts_toward_totals
TRANSACTIONS: list[tuple[str, str, str, float, bool]] = [
    ("A01", "3", "2023-03-15", 400_000.0, True),
    ("A01", "4", "2023-09-30", 100_000.0, True),
    ("A02", "2", "2023-01-10", 1_000_000.0, True),  # commitment: not counted
    ("A02", "3", "2023-06-01", 300_000.0, True),
    ("A02", "3", "2023-07-01", 50_000.0, False),  # excluded from totals
    ("A11", "3", "2023-05-05", 100_000.0, True),
    ("A12", "3", "2023-02-01", 100_000.0, True),
    ("A05", "3", "2023-04-01", 900_000.0, True),  # Uganda
    ("A06", "3", "2023-04-01", 777_000.0, True),  # not CD
]


def overlapping_pairs(
    tables: dict[str, pd.DataFrame],
    settings: MetricsSettings = SETTINGS,
    search: PairSearch = DEFAULT_SEARCH,
    stats: PairSearchStats | None = None,
) -> pd.DataFrame:
    """The overlapping_effort pairs of the metrics stage."""
    pairs = run_metrics(tables, settings, search, stats)["duplication_pairs"]
    return pairs.loc[pairs["kind"] == "overlapping_effort"].reset_index(drop=True)


def duplication_metrics(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return run_metrics(tables)["duplication_metrics"]


def clusters(pairs: pd.DataFrame) -> dict[str, int]:
    con = duckdb.connect()
    try:
        con.register("pairs", pairs)
        return overlap_clusters(con, "pairs")
    finally:
        con.close()


def no_text(threshold: float) -> MetricsSettings:
    return MetricsSettings(overlap_threshold=threshold, overlap_use_text=False, method_version="1")


def with_text(threshold: float) -> MetricsSettings:
    return MetricsSettings(overlap_threshold=threshold, overlap_use_text=True, method_version="1")


def build_tables(
    rows: Any = ACTIVITIES, transactions: Any = TRANSACTIONS
) -> dict[str, pd.DataFrame]:
    activities, sectors, countries, txs = [], [], [], []
    for aid, partner, is_cd, country, shares, start, end, title in rows:
        activities.append(
            {
                "activity_id": aid,
                "title": title,
                "description": "",
                "reporting_org_ref": partner,
                "is_cd": is_cd,
                "start_date": d(start),
                "end_date": d(end),
            }
        )
        countries.append({"activity_id": aid, "country_code": country, "share": 1.0})
        for code, share in shares.items():
            sectors.append(
                {
                    "activity_id": aid,
                    "vocabulary": "1",
                    "code": code,
                    "share": share,
                    "percentage": share * 100,
                    "is_cd_sector": code in CD_SECTORS,
                }
            )
    for i, (aid, kind, date, usd, counts) in enumerate(transactions):
        txs.append(
            {
                "transaction_id": f"t{i}",
                "activity_id": aid,
                "transaction_type": kind,
                "transaction_date": d(date),
                "value": usd,
                "currency": "USD",
                "value_usd": usd,
                "counts_toward_totals": counts,
            }
        )
    return {
        "activities": table_frame("activities", activities),
        "activity_sectors": table_frame("activity_sectors", sectors),
        "activity_countries": table_frame("activity_countries", countries),
        "transactions": table_frame("transactions", txs),
    }


# A01 x A02 by hand:
# sector overlap = (min(.8, 1) + min(.2, 0)) / (max(.8, 1) + max(.2, 0)) = .8 / 1.2 = 2/3
# A01 = 2023-01-01..2024-12-31 = 365 + 366 = 731 days (inclusive)
# A02 = 2023-01-01..2025-06-30 = 365 + 366 + 181 = 912 days
# intersection = A01 = 731 days; union = 731 + 912 - 731 = 912 -> date overlap 731/912
SECTOR_12 = 2 / 3
DATE_12 = 731 / 912  # 0.80153...
# A09 x A10: sector 1; A10 = 365 days inside A09 (731) -> 365/731 = 0.4993...
DATE_910 = 365 / 731


def test_pairs_without_text_are_exactly_the_candidates() -> None:
    pairs = overlapping_pairs(build_tables(), no_text(0.0))
    got = {
        (a, b): s
        for a, b, s in pairs[["activity_id_a", "activity_id_b", "score"]].itertuples(index=False)
    }
    # same partner, other country, non-CD, disjoint dates, other sector, no dates: absent
    assert set(got) == {("A01", "A02"), ("A09", "A10")}
    assert got[("A01", "A02")] == pytest.approx(SECTOR_12 * DATE_12)  # 0.53436
    assert got[("A09", "A10")] == pytest.approx(1.0 * DATE_910)  # 0.49932
    assert pairs["title_similarity"].isna().all()


def test_overlapping_pair_with_text() -> None:
    pairs = overlapping_pairs(build_tables())
    assert list(pairs.columns) == field_names("duplication_pairs")
    assert len(pairs) == 1  # A09 x A10 drops out: titles unrelated
    row = pairs.iloc[0]
    assert (row["activity_id_a"], row["activity_id_b"]) == ("A01", "A02")
    assert row["kind"] == "overlapping_effort"
    assert row["country_code"] == "KE"
    assert row["sector_overlap"] == pytest.approx(SECTOR_12)
    assert row["date_overlap"] == pytest.approx(DATE_12)
    assert 0.5 < row["title_similarity"] <= 1.0
    assert row["score"] == pytest.approx(SECTOR_12 * DATE_12 * row["title_similarity"])
    assert row["evidence"].startswith("sectors 15111; dates 2023-01..2024-12; title similarity 0.")
    # stable id, independent of the order of the inputs
    shuffled = build_tables(list(reversed(ACTIVITIES)))
    assert overlapping_pairs(shuffled)["pair_id"].tolist() == [row["pair_id"]]


def test_text_filters_unrelated_titles() -> None:
    sim = text_similarity(
        "Vocational training scholarships for young women in Mombasa",
        "TVET instructor certification programme",
    )
    assert sim < 0.3


def test_multilingual_titles() -> None:
    corpus = [
        "Appui à la gestion des finances publiques",
        "Programa de agua potable rural",
        "Scholarships for engineering students",
    ]
    fr = text_similarity(
        "Renforcement des capacités de gestion des finances publiques au Sénégal",
        "Renforcement de la gestion des finances publiques et du contrôle budgétaire",
        corpus,
    )
    es = text_similarity(
        "Fortalecimiento de la gestión de las finanzas públicas",
        "Fortalecimiento institucional para la gestión de finanzas públicas municipales",
        corpus,
    )
    unrelated = text_similarity(
        "Renforcement des capacités de gestion des finances publiques",
        "Rural water supply and sanitation",
        corpus,
    )
    assert 0.4 < fr < 1.0
    assert 0.4 < es < 1.0
    assert unrelated < 0.1
    # accents are kept: the same word with and without its accent is not identical
    assert text_similarity("gestión pública", "gestion publica") < 0.99


def three_partners_tables() -> dict[str, pd.DataFrame]:
    """Three partners strengthening the same statistical office, and ACTIVITIES."""
    rows: list[Row] = [
        (
            f"B{i}",
            partner,
            True,
            "KE",
            {"16062": 1.0},
            "2022-01-01",
            "2023-12-31",
            "Strengthening the national statistical office",
        )
        for i, partner in enumerate([P1, P2, P3])
    ]
    rows += ACTIVITIES
    tables = build_tables(rows)
    tables["activity_sectors"]["is_cd_sector"] = True
    return tables


def test_three_mutually_overlapping_activities_form_one_cluster() -> None:
    pairs = overlapping_pairs(three_partners_tables())
    b_pairs = pairs.loc[pairs["activity_id_a"].str.startswith("B")]
    assert len(b_pairs) == 3
    assert b_pairs["score"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    found = clusters(pairs)
    assert found["B0"] == found["B1"] == found["B2"]
    assert found["A01"] == found["A02"] != found["B0"]
    assert set(found) == {"A01", "A02", "B0", "B1", "B2"}


def _flow(aid: str, kind: str, **ends: str) -> dict[str, Any]:
    """A transaction of ``aid`` naming the other end of its flow (``ends``)."""
    return {
        "transaction_id": f"flow-{aid}-{kind}",
        "activity_id": aid,
        "transaction_type": kind,
        "transaction_date": d("2022-06-01"),
        "value": 10_000.0,
        "currency": "USD",
        "value_usd": 10_000.0,
        "counts_toward_totals": kind in ("3", "4"),
        **ends,
    }


@pytest.mark.parametrize(
    ("flows", "orgs"),
    [
        # B0 disburses to B1 (receiver-activity-id); B2 gets funds from P1 (provider org)
        ([_flow("B0", "3", receiver_activity_id="B1"), _flow("B2", "1", provider_org_ref=P1)], []),
        # B1 gets funds from B0 (provider-activity-id); B0 commits to P3 (receiver org)
        ([_flow("B1", "11", provider_activity_id="B0"), _flow("B0", "2", receiver_org_ref=P3)], []),
        # B0 disburses to B1; B2 names B0 as its funding organisation's activity
        (
            [_flow("B0", "3", receiver_activity_id="B1")],
            [{"activity_id": "B2", "role": "1", "org_ref": P1, "org_activity_id": "B0"}],
        ),
    ],
)
def test_a_funder_and_its_implementer_are_not_overlapping_effort(
    flows: list[dict[str, Any]], orgs: list[dict[str, Any]]
) -> None:
    tables = three_partners_tables()
    tables["transactions"] = table_frame(
        "transactions", [*tables["transactions"].to_dict("records"), *flows]
    )
    tables["participating_orgs"] = table_frame("participating_orgs", orgs)
    published = run_metrics(tables)
    pairs = published["duplication_pairs"]
    overlap = pairs.loc[
        (pairs["kind"] == "overlapping_effort") & pairs["activity_id_a"].str.startswith("B")
    ]
    # of the three mutually overlapping B activities, only B1 x B2 (no flow between P2's
    # and P3's activities) is two efforts; B0 funds both
    assert list(zip(overlap["activity_id_a"], overlap["activity_id_b"], strict=True)) == [
        ("B1", "B2")
    ]
    assert overlap["score"].tolist() == pytest.approx([1.0])
    # the activity-id link is still published as the same money counted twice
    chains = pairs.loc[pairs["kind"] == "funding_chain"]
    assert list(zip(chains["activity_id_a"], chains["activity_id_b"], strict=True)) == [
        ("B0", "B1")
    ]
    # the cell counts only that pair: KE x 16062 x 2022
    cell = _cell(published["duplication_metrics"], "16062", 2022)
    assert cell["n_overlap_pairs"] == 1


def test_clusters_from_pairs() -> None:
    pairs = table_frame(
        "duplication_pairs",
        [
            {
                "pair_id": "1",
                "activity_id_a": "a",
                "activity_id_b": "b",
                "kind": "overlapping_effort",
            },
            {
                "pair_id": "2",
                "activity_id_a": "b",
                "activity_id_b": "c",
                "kind": "overlapping_effort",
            },
            {
                "pair_id": "3",
                "activity_id_a": "d",
                "activity_id_b": "e",
                "kind": "overlapping_effort",
            },
            {"pair_id": "4", "activity_id_a": "x", "activity_id_b": "y", "kind": "funding_chain"},
        ],
    )
    assert clusters(pairs) == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1}
    assert clusters(pairs.iloc[0:0]) == {}


def _cell(
    metrics: pd.DataFrame, sector: str | None, year: int, priority: str | None = None
) -> pd.Series:
    m = metrics
    sel = (m["country_code"] == "KE") & (m["year"] == year)
    sel &= m["sector_code"].isna() if sector is None else (m["sector_code"] == sector)
    sel &= m["priority_id"].isna() if priority is None else (m["priority_id"] == priority)
    found = m.loc[sel.fillna(False).astype(bool)]
    assert len(found) == 1
    return found.iloc[0]


def test_metrics_for_kenya_pfm_2023() -> None:
    tables = build_tables()
    metrics = duplication_metrics(tables)
    assert list(metrics.columns) == field_names("duplication_metrics")
    assert metrics["priority_id"].isna().all()
    row = _cell(metrics, "15111", 2023)
    # members: A01 (P1), A02 (P2), A11 (P1, no end date, disbursed 2023), A12 (P3, late
    # disbursement). CD disbursement in 15111, 2023 (types 3/4, counted):
    #   A01 (400k + 100k) x 0.8 = 400k; A02 300k; A11 100k; A12 100k x 0.5 = 50k -> 850k
    assert row["n_activities"] == 4
    assert row["n_partners"] == 3
    assert row["cd_disbursement_usd"] == pytest.approx(850_000)
    # partner shares: P1 500/850 = 10/17, P2 300/850 = 6/17, P3 50/850 = 1/17
    # hhi = (100 + 36 + 1) / 289 = 137/289 = 0.47405; effective = 289/137 = 2.10949
    assert row["hhi"] == pytest.approx(137 / 289)
    assert row["effective_partners"] == pytest.approx(289 / 137)
    # fragmentation: reference = 15111 in 2023 across KE and UG = 850k + 900k (A05) = 1,750k
    #   P1: 10/17 = .588 >= 500/1750 = .286 -> significant
    #   P2: 6/17 = .353 >= 300/1750 = .171 -> significant
    #   P3: 1/17 = .059 <  (50 + 900)/1750 = .543, and P1 + P2 = 16/17 = .941 >= 90% already
    #   -> non-significant. ratio = 1/3
    assert row["fragmentation_ratio"] == pytest.approx(1 / 3)
    # one pair (A01 x A02), both in the cell; their money = 400k + 300k = 700k of 850k
    assert row["n_overlap_pairs"] == 1
    assert row["overlap_value_share"] == pytest.approx(700 / 850)  # 14/17 = 0.82353
    assert row["method_version"] == "1"


def test_metrics_single_partner_and_zero_disbursement_cells() -> None:
    tables = build_tables()
    metrics = duplication_metrics(tables)
    # 15110 in 2023: only A01, 500k x 0.2 = 100k from P1 -> hhi 1, nothing fragmented
    row = _cell(metrics, "15110", 2023)
    assert row["cd_disbursement_usd"] == pytest.approx(100_000)
    assert (row["hhi"], row["effective_partners"], row["fragmentation_ratio"]) == (1.0, 1.0, 0.0)
    assert row["n_overlap_pairs"] == 0
    assert row["overlap_value_share"] == 0.0
    # 15111 in 2024: A01 and A02 are running but nothing was disbursed
    row = _cell(metrics, "15111", 2024)
    assert row["n_activities"] == 2
    assert row["n_partners"] == 2
    assert row["cd_disbursement_usd"] == 0.0
    assert row["n_overlap_pairs"] == 1
    for field in ("hhi", "effective_partners", "fragmentation_ratio", "overlap_value_share"):
        assert pd.isna(row[field])
    # non-CD A06 never counted
    assert not (metrics["cd_disbursement_usd"] > 10_000_000).any()


def priority_tables() -> dict[str, pd.DataFrame]:
    """ACTIVITIES, with A01 linked to Kenya's PFM priority and A02 to PFM and statistics
    (partner declarations)."""
    tables = build_tables()
    tables["cd_priorities"] = table_frame(
        "cd_priorities",
        [
            {"country_code": "KE", "priority_id": "KE-PFM", "title": "PFM"},
            {"country_code": "KE", "priority_id": "KE-STAT", "title": "Statistics"},
        ],
    )
    tables["partner_declarations"] = table_frame(
        "partner_declarations",
        [
            {"activity_id": a, "partner_org_ref": p, "period": "2023", "priority_ids": ids}
            for a, p, ids in (("A01", P1, "KE-PFM"), ("A02", P2, "KE-PFM; KE-STAT"))
        ],
    )  # fmt: skip
    return tables


def test_metrics_per_priority() -> None:
    published = run_metrics(priority_tables())
    links = published["alignment_links"]
    assert links[["activity_id", "country_code", "priority_id", "basis"]].values.tolist() == [
        ["A01", "KE", "KE-PFM", "partner_declared"],
        ["A02", "KE", "KE-PFM", "partner_declared"],
        ["A02", "KE", "KE-STAT", "partner_declared"],
    ]
    metrics = published["duplication_metrics"]
    row = _cell(metrics, None, 2023, "KE-PFM")
    # A01 500k (one priority); A02 300k split over its two priorities -> 150k
    # shares 500/650 = 10/13, 150/650 = 3/13 -> hhi = (100 + 9) / 169
    assert row["cd_disbursement_usd"] == pytest.approx(650_000)
    assert row["hhi"] == pytest.approx(109 / 169)
    assert row["n_partners"] == 2
    assert row["n_overlap_pairs"] == 1
    assert row["overlap_value_share"] == pytest.approx(1.0)
    assert _cell(metrics, None, 2023, "KE-STAT")["cd_disbursement_usd"] == pytest.approx(150_000)
    # sector rows are still there
    assert _cell(metrics, "15111", 2023)["n_overlap_pairs"] == 1


def many_sectors_tables(seed: int = 1, n: int = 30) -> dict[str, pd.DataFrame]:
    """n activities of different partners in one (KE, 15111) block, the same dates, each
    with a random handful of up to twelve vocabulary-1 sectors and random shares."""
    import numpy as np

    rng = np.random.default_rng(seed)
    codes = ["15111", *(f"{12000 + i}" for i in range(11))]
    rows: list[Row] = []
    for i in range(n):
        chosen = [codes[0], *rng.choice(codes[1:], int(rng.integers(0, 11)), replace=False)]
        weights = rng.random(len(chosen)) + 0.01
        shares = {code: float(w / weights.sum()) for code, w in zip(chosen, weights, strict=True)}
        rows.append((f"S{i:02d}", f"P{i}", True, "KE", shares, "2022-01-01", "2023-12-31", "x"))
    tables = build_tables(rows, [])
    tables["activity_sectors"]["is_cd_sector"] = tables["activity_sectors"]["code"] == "15111"
    return tables


def test_sector_overlap_dense_and_sparse_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.metrics import duplication

    tables = many_sectors_tables()
    sectors = tables["activity_sectors"]
    shares = {
        aid: dict(zip(group["code"], group["share"].astype(float), strict=True))
        for aid, group in sectors.groupby("activity_id")
    }

    def expected(a: str, b: str) -> float:
        codes = set(shares[a]) | set(shares[b])
        low = sum(min(shares[a].get(c, 0.0), shares[b].get(c, 0.0)) for c in codes)
        high = sum(max(shares[a].get(c, 0.0), shares[b].get(c, 0.0)) for c in codes)
        return low / high

    found = []
    for width in (100, 0):  # every activity's sectors summed one by one, or by row sums
        monkeypatch.setattr(duplication, "_PAD_SECTORS", width)
        pairs = overlapping_pairs(tables, no_text(0.0))
        assert len(pairs) == 30 * 29 // 2
        for a, b, overlap in pairs[["activity_id_a", "activity_id_b", "sector_overlap"]].itertuples(
            index=False
        ):
            assert overlap == pytest.approx(expected(a, b))
        found.append(pairs)
    pd.testing.assert_frame_equal(found[0], found[1], check_exact=False, rtol=1e-12)


def huge_block_tables() -> dict[str, pd.DataFrame]:
    """One block of 10 activities from alternating partners, each starting a month after
    the previous and lasting a year."""
    rows: list[Row] = [
        (f"C{i}", [P1, P2][i % 2], True, "KE", {"15111": 1.0},
         f"2020-{i + 1:02d}-01", f"2021-{i + 1:02d}-01", "Same title")
        for i in range(10)
    ]  # fmt: skip
    return build_tables(rows, [])


def test_huge_block_is_windowed_by_start_date() -> None:
    # with the guard at 5 activities and a window of 2, only neighbours at most 2 apart in
    # start order are compared
    tables = huge_block_tables()
    full = overlapping_pairs(tables, no_text(0.0))
    windowed = overlapping_pairs(tables, no_text(0.0), PairSearch(huge_block=5, window=2))
    # different partners = odd distance in start order; all overlap in dates
    assert len(full) == 25  # 5 x 5 cross-partner pairs
    assert len(windowed) == 9  # distance 1 only (distance 2 is the same partner)
    assert set(zip(windowed["activity_id_a"], windowed["activity_id_b"], strict=True)) <= set(
        zip(full["activity_id_a"], full["activity_id_b"], strict=True)
    )


def _dense_block_tables(n: int = 40) -> dict[str, pd.DataFrame]:
    # one (KE, 15111) block of n activities from three partners, overlapping dates
    # of varied lengths and a few shared title words, plus a second sector for some
    rows: list[Row] = [
        (
            f"D{i:02d}",
            [P1, P2, P3][i % 3],
            True,
            "KE",
            {"15111": 1.0} if i % 4 else {"15111": 0.5, "15110": 0.5},
            f"2020-{i % 12 + 1:02d}-01",
            f"{2021 + i % 3}-{(i * 5) % 12 + 1:02d}-15",
            "Public financial management reform" + (" support" if i % 2 else " programme"),
        )
        for i in range(n)
    ]
    return build_tables(rows, [])


def _pair_set(pairs: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(pairs["activity_id_a"], pairs["activity_id_b"], strict=True))


def test_batched_text_gives_the_same_pairs_as_one_batch() -> None:
    tables = _dense_block_tables()
    whole_stats, batch_stats = PairSearchStats(), PairSearchStats()
    whole = overlapping_pairs(tables, with_text(0.1), PairSearch(), whole_stats)
    batched = overlapping_pairs(tables, with_text(0.1), PairSearch(text_batch=7), batch_stats)
    # the pairs above the threshold (more than 7) had their title similarity computed in
    # several batches
    assert whole_stats.batches == 1
    assert batch_stats.batches > 5
    assert whole_stats.candidates == batch_stats.candidates > 7
    assert len(whole) > 20
    assert _pair_set(batched) == _pair_set(whole)
    pd.testing.assert_frame_equal(batched, whole)


@pytest.mark.parametrize("text_batch", [1, 2, 5, 13, 64, 1000, 2_000_000])
def test_memory_bounded_result_does_not_depend_on_the_batch_size(text_batch: int) -> None:
    tables = _dense_block_tables(30)
    reference = overlapping_pairs(tables, with_text(0.2))
    got = overlapping_pairs(tables, with_text(0.2), PairSearch(text_batch=text_batch))
    assert len(reference) > 0
    pd.testing.assert_frame_equal(got, reference)
    # and with windowing on: the same pairs for any batch size too
    windowed = PairSearch(huge_block=5, window=3)
    small = PairSearch(huge_block=5, window=3, text_batch=text_batch)
    pd.testing.assert_frame_equal(
        overlapping_pairs(tables, with_text(0.2), small),
        overlapping_pairs(tables, with_text(0.2), windowed),
    )


def test_window_hits_are_counted() -> None:
    stats = PairSearchStats()
    overlapping_pairs(
        _dense_block_tables(), no_text(0.0), PairSearch(huge_block=5, window=2), stats
    )
    assert stats.window_hits > 0
    none = PairSearchStats()
    overlapping_pairs(_dense_block_tables(), with_text(0.0), PairSearch(), none)
    assert none.window_hits == 0
