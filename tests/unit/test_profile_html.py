"""Country and partner profile pages, rendered from hand-made profile dicts.

The dicts follow the data contract in the docstring of ``publish/profiles.py`` (what
:func:`publish.profiles.build_profiles` gives): a small compact where Ghana gets CD money from two
partners (Demo Agency and Nordic Bank), has two CD priorities of which one nobody
funds, one results indicator with baseline, actuals and target (and one without any
number), alignment metrics (one resting on a third of the activities), peers among
three countries and a West African group, a shared indicator with Kenya, a duplication
hotspot, an overlapping pair and two source files. Senegal has nothing at all.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from publish import render
from publish.formats import format_decimal_places, format_share
from publish.profile_html import (
    PageContext,
    _money_names,
    available_languages,
    render_all,
    render_country_page,
    render_partner_page,
    render_profiles_index,
)
from publish.site import ALIGNMENT_METRICS

NNBSP = "\u202f"  # narrow no-break space: French thousands separator
NBSP = "\u00a0"  # no-break space: before % (CLDR) and the currency
ROOT = Path(__file__).resolve().parents[2]

DEMO = {
    "activity_id": "XM-DEMO-1001-PFM",
    "title": "PFM training for district treasuries",
    "partner": "Demo Agency",
    "partner_code": "XM-DEMO-1001",
}
NORDIC = {
    "activity_id": "XM-NB-2-STAT",
    "title": "Budget and statistics advice",
    "partner": "Nordic Bank",
    "partner_code": "XM-NB-2",
}
STRANGER = {
    "activity_id": "XM-OTHER-9",
    "title": "Audit support",
    "partner": "Other Fund",
    "partner_code": "XM-OTHER",
}


def ghana() -> dict[str, Any]:
    return {
        "kind": "country",
        "code": "GH",
        "name": "Ghana",
        "slug": "GH",
        "groups": {"region": "West Africa", "income": "Lower-middle income"},
        "years": [2022, 2023],
        "totals": {
            "disbursement_usd": 2_500_000.0,
            "cd_disbursement_usd": 1_234_567.0,
            "cd_share": 0.4938,
            "cd_activities": 3,
            "partners": 2,
        },
        "money": {
            "by_partner": [
                {"key": "XM-DEMO-1001", "label": "Demo Agency", "year": 2022, "usd": 734_567.0},
                {"key": "XM-DEMO-1001", "label": "Demo Agency", "year": 2023, "usd": 300_000.0},
                {"key": "XM-NB-2", "label": "Nordic Bank", "year": 2023, "usd": 200_000.0},
            ],
            "by_modality": [
                {"key": "training", "label": "training", "year": 2022, "usd": 734_567.0},
                {"key": "training", "label": "training", "year": 2023, "usd": 300_000.0},
                {"key": "unknown", "label": "unknown", "year": 2023, "usd": 200_000.0},
            ],
            "by_sector": [
                {
                    "key": "15111",
                    "label": "Public finance management (PFM)",
                    "year": 2022,
                    "usd": 734_567.0,
                },
                {
                    "key": "15111",
                    "label": "Public finance management (PFM)",
                    "year": 2023,
                    "usd": 300_000.0,
                },
                {
                    "key": "16062",
                    "label": "Statistical capacity building",
                    "year": 2023,
                    "usd": 200_000.0,
                },
            ],
        },
        "priorities": [
            {
                "priority_id": "GH-P1",
                "title": "Public financial management",
                "sector_code": "15111",
                "start_year": 2022,
                "end_year": 2026,
                "usd": 1_234_567.0,
                "n_activities": 2,
                "funded": True,
                "activities": [
                    {**DEMO, "basis": "partner_declared"},
                    {**NORDIC, "basis": "sector_match"},
                ],
            },
            {
                "priority_id": "GH-P2",
                "title": "Statistics for planning",
                "sector_code": None,
                "start_year": 2023,
                "end_year": None,
                "usd": 0.0,
                "n_activities": 0,
                "funded": False,
                "activities": [],
            },
        ],
        "results": [
            {
                "result_id": "GH-R1",
                "indicator_id": "GH-IND-1",
                "indicator_title": "Districts filing budgets on time",
                "priority_id": "GH-P1",
                "activity_id": None,
                "measure": "unit",
                "ascending": True,
                "baseline_year": 2020,
                "baseline_value": 10.0,
                "target_year": 2025,
                "target_value": 50.0,
                "actuals": [
                    {"period_end": "2023-12-31", "value": 20.0},
                    {"period_end": "2024-12-31", "value": 30.0},
                ],
                "latest_actual": 30.0,
                "progress": 0.5,
            },
            {
                "result_id": "GH-R2",
                "indicator_id": "GH-IND-2",
                "indicator_title": "Statistical law adopted",
                "priority_id": "GH-P2",
                "activity_id": None,
                "measure": None,
                "ascending": None,
                "baseline_year": None,
                "baseline_value": None,
                "target_year": None,
                "target_value": None,
                "actuals": [],
                "latest_actual": None,
                "progress": None,
            },
        ],
        "metrics": [
            {
                "metric": "on_budget",
                "year": 2023,
                "numerator": 100_000.0,
                "denominator": 400_000.0,
                "value": 0.25,
                "n_activities": 1,
                "n_activities_eligible": 3,
                "coverage": 1 / 3,
            },
            {
                "metric": "priority_alignment",
                "year": 2023,
                "numerator": 300_000.0,
                "denominator": 500_000.0,
                "value": 0.6,
                "n_activities": 3,
                "n_activities_eligible": 3,
                "coverage": 1.0,
            },
        ],
        "peers": [
            {
                "metric": "priority_alignment",
                "year": 2023,
                "value": 0.6,
                "comparisons": [
                    {
                        "group_kind": "all",
                        "group": "All compact countries",
                        "n": 3,
                        "rank": 2,
                        "quantiles": {
                            "min": 0.3,
                            "q25": 0.45,
                            "median": 0.6,
                            "q75": 0.7,
                            "max": 0.8,
                        },
                        "members": [
                            {
                                "code": "KE",
                                "name": "Kenya",
                                "value": 0.8,
                                "year": 2023,
                                "is_self": False,
                            },
                            {
                                "code": "GH",
                                "name": "Ghana",
                                "value": 0.6,
                                "year": 2023,
                                "is_self": True,
                            },
                            {
                                "code": "SN",
                                "name": "Senegal",
                                "value": 0.3,
                                "year": 2022,
                                "is_self": False,
                            },
                        ],
                    },
                    {
                        "group_kind": "region",
                        "group": "West Africa",
                        "n": 2,
                        "rank": 1,
                        "quantiles": {
                            "min": 0.3,
                            "q25": 0.375,
                            "median": 0.45,
                            "q75": 0.525,
                            "max": 0.6,
                        },
                        "members": [
                            {
                                "code": "GH",
                                "name": "Ghana",
                                "value": 0.6,
                                "year": 2023,
                                "is_self": True,
                            },
                            {
                                "code": "SN",
                                "name": "Senegal",
                                "value": 0.3,
                                "year": 2022,
                                "is_self": False,
                            },
                        ],
                    },
                ],
            }
        ],
        "shared_indicators": [
            {
                "reference": "SDG:17.18.1",
                "title": "Statistical capacity indicator",
                "members": [
                    {
                        "code": "KE",
                        "name": "Kenya",
                        "progress": 0.75,
                        "latest_actual": 75.0,
                        "target_value": 100.0,
                        "is_self": False,
                    },
                    {
                        "code": "GH",
                        "name": "Ghana",
                        "progress": 0.5,
                        "latest_actual": 30.0,
                        "target_value": 50.0,
                        "is_self": True,
                    },
                ],
                "rank": 2,
                "n": 2,
                "quantiles": {
                    "min": 0.5,
                    "q25": 0.5625,
                    "median": 0.625,
                    "q75": 0.6875,
                    "max": 0.75,
                },
            }
        ],
        "hotspot_year": 2023,
        "hotspots": [
            {
                "sector_code": "15111",
                "sector_name": "Public finance management (PFM)",
                "priority_id": None,
                "year": 2023,
                "n_partners": 2,
                "n_activities": 2,
                "cd_disbursement_usd": 500_000.0,
                "hhi": 0.52,
                "effective_partners": 1.92,
                "fragmentation_ratio": 0.5,
                "n_overlap_pairs": 1,
                "overlap_value_share": 1.0,
            }
        ],
        "pairs": [
            {
                "pair_id": "oe-0001",
                "kind": "overlapping_effort",
                "score": 0.42,
                "sector_overlap": 0.5,
                "date_overlap": 0.84,
                "title_similarity": None,
                "a": dict(DEMO),
                "b": dict(STRANGER),
            }
        ],
        "quality": [
            {
                "source_file": "demo-agency.xml",
                "source": "iati",
                "status": "ok",
                "n_records": 12,
                "n_accepted": 12,
                "n_quarantined": 0,
                "reason": None,
            },
            {
                "source_file": "gh-report-2024.xlsx",
                "source": "country_report",
                "status": "partial",
                "n_records": 10,
                "n_accepted": 8,
                "n_quarantined": 2,
                "reason": "2 rows with an unknown priority",
            },
        ],
        "rows": {
            "alignment_metrics": "countries/GH/rows/alignment_metrics.csv",
            "cd_priorities": "countries/GH/rows/cd_priorities.csv",
            "results": "countries/GH/rows/results.csv",
            "sources": "countries/GH/rows/sources.csv",
            "transactions": "countries/GH/rows/transactions.csv",
        },
    }


def senegal() -> dict[str, Any]:
    """A compact country about which the release knows nothing yet."""
    return {
        "kind": "country",
        "code": "SN",
        "name": "Senegal",
        "slug": "SN",
        "groups": {},
        "years": [],
        "totals": {
            "disbursement_usd": 0.0,
            "cd_disbursement_usd": 0.0,
            "cd_share": None,
            "cd_activities": 0,
            "partners": 0,
        },
        "money": {"by_partner": [], "by_modality": [], "by_sector": []},
        "priorities": [],
        "results": [],
        "metrics": [],
        "peers": [],
        "shared_indicators": [],
        "hotspots": [],
        "pairs": [],
        "quality": [],
        "rows": {},
    }


def demo_agency() -> dict[str, Any]:
    return {
        "kind": "partner",
        "code": "XM-DEMO-1001",
        "name": "Demo Agency",
        "slug": "XM-DEMO-1001",
        "years": [2022, 2023],
        "totals": {
            "cd_disbursement_usd": 1_034_567.0,
            "disbursement_usd": 1_500_000.0,
            "cd_activities": 4,
            "countries": 1,
        },
        "money": {
            "by_country": [
                {"key": "GH", "label": "Ghana", "year": 2022, "usd": 734_567.0},
                {"key": "GH", "label": "Ghana", "year": 2023, "usd": 300_000.0},
            ],
            "by_sector": [
                {
                    "key": "15111",
                    "label": "Public finance management (PFM)",
                    "year": 2022,
                    "usd": 734_567.0,
                },
                {
                    "key": "15111",
                    "label": "Public finance management (PFM)",
                    "year": 2023,
                    "usd": 300_000.0,
                },
            ],
            "by_modality": [
                {"key": "training", "label": "training", "year": 2022, "usd": 734_567.0},
                {"key": "training", "label": "training", "year": 2023, "usd": 300_000.0},
            ],
        },
        "alignment": [
            {
                "country_code": "GH",
                "country_name": "Ghana",
                "metric": "priority_alignment",
                "year": 2023,
                "numerator": 300_000.0,
                "denominator": 300_000.0,
                "value": 1.0,
                "coverage": 1.0,
                "n_activities": 2,
                "n_activities_eligible": 2,
            },
            {
                "country_code": "GH",
                "country_name": "Ghana",
                "metric": "on_budget",
                "year": 2023,
                "numerator": 0.0,
                "denominator": 300_000.0,
                "value": 0.0,
                "coverage": 0.25,
                "n_activities": 1,
                "n_activities_eligible": 4,
            },
        ],
        "overlaps": [
            {
                "pair_id": "oe-0001",
                "country_code": "GH",
                "score": 0.42,
                "own": dict(DEMO),
                "other": dict(NORDIC),
            }
        ],
        "declarations": {
            "n_cd_activities": 4,
            "n_declared": 3,
            "share": 0.75,
            "fields": [
                {"field": "priority_ids", "known": 3, "total": 4, "share": 0.75},
                {"field": "on_budget", "known": 1, "total": 4, "share": 0.25},
            ],
        },
        "quality": [
            {
                "source_file": "demo-agency.xml",
                "source": "iati",
                "status": "ok",
                "n_records": 12,
                "n_accepted": 12,
                "n_quarantined": 0,
                "reason": None,
            }
        ],
        "rows": {
            "alignment_metrics": "partners/XM-DEMO-1001/rows/alignment_metrics.csv",
            "transactions": "partners/XM-DEMO-1001/rows/transactions.csv",
        },
    }


def nordic_bank() -> dict[str, Any]:
    """A partner with money in the data but no declaration, metric or overlap."""
    return {
        "kind": "partner",
        "code": "XM-NB-2",
        "name": "Nordic Bank",
        "slug": "XM-NB-2",
        "years": [2023],
        "totals": {
            "cd_disbursement_usd": 200_000.0,
            "disbursement_usd": 200_000.0,
            "cd_activities": 1,
            "countries": 1,
        },
        "money": {
            "by_country": [{"key": "GH", "label": "Ghana", "year": 2023, "usd": 200_000.0}],
            "by_sector": [],
            "by_modality": [],
        },
        "alignment": [],
        "overlaps": [],
        "declarations": {"n_cd_activities": 0, "n_declared": 0, "share": None, "fields": []},
        "quality": [],
        "rows": {},
    }


CONTEXT = PageContext(
    version="2026.11.28",
    title="Capacity Development Compact",
    published="2026-11-28",
    partner_pages={"XM-DEMO-1001": "XM-DEMO-1001", "XM-NB-2": "XM-NB-2"},
    country_pages={"GH": "GH", "KE": "KE", "SN": "SN"},
)


def country_page(profile: dict[str, Any], lang: str = "en") -> Any:
    return lxml.html.document_fromstring(render_country_page(profile, lang, CONTEXT))


def partner_page(profile: dict[str, Any], lang: str = "en") -> Any:
    return lxml.html.document_fromstring(render_partner_page(profile, lang, CONTEXT))


def text(node: Any) -> str:
    """The node's text, ASCII blanks collapsed (no-break spaces are kept: they are checked)."""
    return re.sub(r"[ \t\r\n]+", " ", node.text_content()).strip()


def section(tree: Any, section_id: str) -> Any:
    (found,) = tree.xpath(f'//section[@id="{section_id}"]')
    return found


def table_rows(tree: Any, table_id: str) -> list[list[str]]:
    (table,) = tree.xpath(f'//table[@id="{table_id}"]')
    return [[text(cell) for cell in row.xpath("./th|./td")] for row in table.xpath(".//tbody/tr")]


# ------------------------------------------------------------------- the figures


def test_country_figures_in_english() -> None:
    tree = country_page(ghana())
    headline = {
        card.get("data-figure"): text(card.xpath('.//span[@class="figure-value"]')[0])
        for card in tree.xpath('//section[@id="headline"]//div[@class="figure"]')
    }
    assert headline == {
        "cd_disbursement_usd": "USD 1.2 million",
        "cd_share": "49.4%",
        "cd_activities": "3",
        "partners": "2",
    }
    # The money tables give every dollar, per year and in total.
    assert table_rows(tree, "table-money-by-partner") == [
        ["Demo Agency", "USD 734,567", "USD 300,000", "USD 1,034,567"],
        ["Nordic Bank", "–", "USD 200,000", "USD 200,000"],
        ["Total", "USD 734,567", "USD 500,000", "USD 1,234,567"],
    ]
    assert table_rows(tree, "table-money-by-modality")[:2] == [
        ["Training", "USD 734,567", "USD 300,000", "USD 1,034,567"],
        ["Modality unknown", "–", "USD 200,000", "USD 200,000"],
    ]
    assert tree.xpath('//time[@datetime="2026-11-28"]')[0].text == "28 November 2026"
    assert "USD 2.5 million" in text(section(tree, "headline"))


def test_country_figures_in_french() -> None:
    tree = country_page(ghana(), "fr")
    assert tree.get("lang") == "fr"
    headline = [text(v) for v in tree.xpath('//section[@id="headline"]//*[@class="figure-value"]')]
    assert headline == [f"1,2 million{NBSP}USD", f"49,4{NBSP}%", "3", "2"]
    rows = table_rows(tree, "table-money-by-partner")
    assert rows[-1] == [
        "Total",
        f"734{NNBSP}567{NBSP}USD",
        f"500{NNBSP}000{NBSP}USD",
        f"1{NNBSP}234{NNBSP}567{NBSP}USD",
    ]
    assert tree.xpath('//time[@datetime="2026-11-28"]')[0].text == "28 novembre 2026"
    assert text(tree.xpath("//h2[@id='money-h']")[0]) == "Les versements DC dans le temps"
    # Coded values are translated, data is not.
    assert rows[0][0] == "Demo Agency"
    assert table_rows(tree, "table-money-by-modality")[0][0] == "Formation"


def test_french_numbers_ordinals_and_dates() -> None:
    assert format_decimal_places(1234.5, 1, "fr") == f"1{NNBSP}234,5"
    assert format_share(0.42, "fr") == f"42,0{NBSP}%"
    assert render.usd(1_234_567, "fr", compact=False) == f"1{NNBSP}234{NNBSP}567{NBSP}USD"
    assert render.usd(1_234_567, "fr") == f"1,2 million{NBSP}USD"
    assert render.usd(2.5e9, "fr") == f"2,5 milliards{NBSP}USD"
    assert render.usd(329_643.61, "fr") == f"329{NNBSP}644{NBSP}USD"
    assert render.usd(None, "fr") == "–"
    assert render.long_date("2026-11-01", "fr") == "1er novembre 2026"
    assert render.long_date("2026-11-02", "fr") == "2 novembre 2026"
    assert render.long_date("2026-11-01", "en") == "1 November 2026"
    assert [render.rank(r, 5, locale="fr") for r in (1, 2, 3, 21)] == [
        "1er sur 5", "2e sur 5", "3e sur 5", "21e sur 5",
    ]  # fmt: skip
    # a rank shared with another page reads as shared, in both languages
    assert (render.rank(1, 4, 2), render.rank(3, 4, 2)) == ("joint 1st of 4", "joint 3rd of 4")
    assert (render.rank(1, 4, 2, "fr"), render.rank(1, 4, 1)) == ("1er ex æquo sur 4", "1st of 4")
    assert [render.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st",
        "111th",
    ]  # fmt: skip
    assert render.years([2023, 2021, 2022]) == "2021 to 2023"
    assert render.years([2019, 2023], "fr") == "de 2019 à 2023"
    assert render.years([2023], "fr") == "2023"


# ------------------------------------------------------------ peers and metrics


def test_rank_and_quantiles_per_comparison_group() -> None:
    tree = country_page(ghana())
    peers = section(tree, "peers")
    assert [text(h) for h in peers.xpath(".//h4")][:2] == [
        "All compact countries: 2nd of 3",
        "Region: West Africa: 1st of 2",
    ]
    assert table_rows(tree, "table-quantiles-0") == [
        ["All compact countries", "3", "2nd of 3", "30.0%", "45.0%", "60.0%", "70.0%", "80.0%"],
        ["Region: West Africa", "2", "1st of 2", "30.0%", "37.5%", "45.0%", "52.5%", "60.0%"],
    ]
    headers = [text(th) for th in tree.xpath('//table[@id="table-quantiles-0"]//thead//th')]
    assert headers[-5:] == ["Minimum", "First quartile", "Median", "Third quartile", "Maximum"]
    # Never a combined score: one block per metric, and the page says so.
    assert "never combined into a single score" in text(peers)
    assert not tree.xpath('//*[contains(@id, "score")]')

    tied = ghana()
    tied["peers"][0]["comparisons"][0]["tied"] = 2  # another country shares the 2nd place
    assert text(section(country_page(tied), "peers").xpath(".//h4")[0]) == (
        "All compact countries: joint 2nd of 3"
    )
    assert table_rows(country_page(tied), "table-quantiles-0")[0][2] == "joint 2nd of 3"

    french = country_page(ghana(), "fr")
    assert table_rows(french, "table-quantiles-0")[0][:3] == [
        "Tous les pays du pacte",
        "3",
        "2e sur 3",
    ]
    assert table_rows(french, "table-quantiles-0")[1][2] == "1er sur 2"
    assert f"45,0{NBSP}%" in table_rows(french, "table-quantiles-0")[0]


def test_the_country_stands_out_in_peer_charts_not_only_by_colour() -> None:
    tree = country_page(ghana())
    (chart,) = tree.xpath('//svg[@id="chart-peers-0-0"]')
    (own,) = chart.xpath('.//rect[@data-self="true"]')
    assert own.get("fill") == "url(#chart-peers-0-0-hatch)"  # a pattern, not just a colour
    assert own.get("stroke-width") == "2.0"
    assert chart.xpath('.//pattern[@id="chart-peers-0-0-hatch"]')
    (label,) = chart.xpath('.//text[contains(@class, "self") and contains(@class, "label")]')
    assert text(label) == "▶ Ghana (this country)"
    assert [text(t) for t in chart.xpath('.//text[contains(@class, "value")]')] == [
        "80.0%",
        "60.0%",
        "30.0%",
    ]
    assert "median 60.0%" in text(chart)
    desc = chart.xpath(".//desc")[0].text
    assert desc == "3 countries, best first; Ghana is 2nd of 3; median 60.0%"
    rows = tree.xpath('//table[@id="table-peers-0-0"]//tbody/tr')
    assert [r.get("class") for r in rows] == [None, "self", None]
    assert rows[1].xpath(".//strong")
    assert "(this country)" in text(rows[1])
    # Other countries link to their own page.
    assert rows[0].xpath(".//a/@href") == ["../countries/KE.html"]


def test_shared_results_indicators_are_ranked_too() -> None:
    tree = country_page(ghana())
    heading = text(tree.xpath('//h4[@id="shared-0"]')[0])
    assert heading == "Statistical capacity indicator (SDG:17.18.1): 2nd of 2"
    assert table_rows(tree, "table-shared-0") == [
        ["Kenya", "75", "100", "75.0%"],
        ["▶ Ghana (this country)", "30", "50", "50.0%"],
    ]
    assert table_rows(tree, "table-shared-quantiles-0") == [
        ["Countries reporting it", "2", "2nd of 2", "50.0%", "56.2%", "62.5%", "68.8%", "75.0%"]
    ]


def test_alignment_metrics_with_numerator_denominator_coverage_and_anchor() -> None:
    tree = country_page(ghana())
    rows = tree.xpath('//table[@id="table-alignment"]//tbody/tr')
    # In the order of the catalogue's metrics, whatever the order of the data.
    assert [r.get("data-metric") for r in rows] == ["priority_alignment", "on_budget"]
    on_budget = rows[1]
    cells = [text(c) for c in on_budget.xpath("./td")]
    assert cells[:6] == ["2023", "25.0%", "100,000", "400,000", "1", "3"]
    assert cells[6].startswith("33.3%")
    assert "Low coverage" in cells[6]
    assert on_budget.xpath('.//*[@data-flag="low-coverage"]')
    assert not rows[0].xpath('.//*[@data-flag="low-coverage"]')
    head = text(on_budget.xpath("./th")[0])
    assert head.startswith(ALIGNMENT_METRICS["on_budget"][0])
    assert f"Reference: {ALIGNMENT_METRICS['on_budget'][1]}" in head
    assert "CD disbursements declared on the national budget" in head
    french = country_page(ghana(), "fr")
    french_row = french.xpath('//tr[@data-metric="on_budget"]')[0]
    assert "Couverture faible" in text(french_row)
    assert "Inscrit au budget" in text(french_row)


def test_a_metric_with_nothing_to_measure_says_not_measured_and_why() -> None:
    profile = ghana()
    profile["unmeasured"] = [
        {"metric": "traceability", "reason": "no_incoming_funds"},
        {"metric": "results_framework_use", "reason": "no_known_value"},
    ]
    tree = country_page(profile)
    rows = tree.xpath('//table[@id="table-alignment"]//tbody/tr')
    assert [(r.get("data-metric"), r.get("data-unmeasured")) for r in rows] == [
        ("priority_alignment", None),
        ("results_framework_use", "no_known_value"),
        ("on_budget", None),
        ("traceability", "no_incoming_funds"),
    ]
    # one cell across the value columns: no 0.0%, no coverage, no low-coverage flag
    (cell,) = rows[3].xpath("./td")
    assert text(cell) == "Not measured: no incoming funds to CD activities in this country."
    assert cell.get("colspan") == "7"
    assert not rows[3].xpath('.//*[@data-flag="low-coverage"]')
    assert text(rows[1].xpath("./td")[0]).startswith("Not measured: no activity this metric")
    french = country_page(profile, "fr")
    (row,) = french.xpath('//tr[@data-metric="traceability"]')
    assert text(row.xpath("./td")[0]) == (
        "Non mesuré : aucun fonds reçu par des activités DC dans ce pays."
    )


# ------------------------------------------------------- priorities, results, pairs


def test_unfunded_priority_is_marked_in_words() -> None:
    tree = country_page(ghana())
    rows = {r.get("data-priority"): r for r in tree.xpath('//table[@id="table-priorities"]//tr')}
    assert rows["GH-P2"].get("data-funded") == "false"
    assert text(rows["GH-P2"]).endswith("No partner funds this priority")
    assert text(rows["GH-P1"]).endswith("Funded")
    (detail,) = tree.xpath('//div[@class="priority"][@data-priority="GH-P2"]')
    assert text(detail.xpath('.//p[@class="unfunded"]')[0]) == "No partner funds this priority"
    (funded,) = tree.xpath('//div[@class="priority"][@data-priority="GH-P1"]')
    assert not funded.xpath('.//p[@class="unfunded"]')
    items = [text(li) for li in funded.xpath(".//li")]
    assert items == [
        "XM-DEMO-1001-PFM PFM training for district treasuries · Demo Agency "
        "(linked by the partner's declaration)",
        "XM-NB-2-STAT Budget and statistics advice · Nordic Bank (linked by same sector)",
    ]
    assert funded.xpath(".//a/@href") == [
        "../partners/XM-DEMO-1001.html",
        "../partners/XM-NB-2.html",
    ]
    french = country_page(ghana(), "fr")
    assert french.xpath('//p[@class="unfunded"]/text()') == [
        "Aucun partenaire ne finance cette priorité"
    ]
    assert french.xpath('//div[@data-priority="GH-P1"]//a/@href')[0] == (
        "../partners/XM-DEMO-1001.fr.html"
    )


def test_results_progress_chart_and_table() -> None:
    tree = country_page(ghana())
    (chart,) = tree.xpath('//svg[@id="chart-result-0"]')
    assert chart.xpath("./title")[0].text == "Progress of Districts filing budgets on time"
    assert chart.xpath("./desc")[0].text == (
        "Baseline: 10 (2020); Latest: 30 (31 December 2024); Target: 50 (2025); "
        "50.0% of the way from baseline to target"
    )
    # Baseline (circle) → latest actual (diamond) → target (square) along one scale.
    (baseline,) = chart.xpath("./circle[@r='6']/@cx")
    (diamond,) = chart.xpath("./polygon/@points")
    (square,) = chart.xpath("./rect[@width='12']/@x")
    latest = float(diamond.split(",")[0])
    assert float(baseline) < latest < float(square) + 6
    assert [text(t) for t in chart.xpath("./text")] == [
        "Target: 50 (2025)",
        "Latest: 30 (31 December 2024)",
        "Baseline: 10 (2020)",
    ]
    assert table_rows(tree, "table-result-0") == [
        ["Baseline", "2020", "10"],
        ["Actual", "31 December 2023", "20"],
        ["Actual", "31 December 2024", "30"],
        ["Target", "2025", "50"],
        ["Progress toward the target", "", "50.0%"],
    ]
    # The indicator without a number says so instead of drawing an empty chart.
    assert not tree.xpath('//svg[@id="chart-result-1"]')
    assert tree.xpath('//p[@data-empty="chart-result-1"]')


def test_duplication_hotspots_and_pairs_link_both_partners() -> None:
    tree = country_page(ghana())
    (hotspot,) = table_rows(tree, "table-hotspots")
    (note,) = tree.xpath('//h3[@id="hotspots"]/following-sibling::p[1]')
    assert text(note).startswith("2023, the country's latest year with CD disbursements")
    assert hotspot[:4] == ["Public finance management (PFM) (15111)", "–", "2023", "2"]
    assert hotspot[5:7] == ["USD 500,000", "0.52"]
    assert hotspot[7] == "1.9"
    (pair,) = tree.xpath('//table[@id="table-pairs"]//tbody/tr')
    assert text(pair.xpath("./th")[0]) == "0.42"
    cells = pair.xpath("./td")
    assert "XM-DEMO-1001-PFM" in text(cells[0])
    assert "XM-OTHER-9" in text(cells[1])
    assert cells[0].xpath(".//a/@href") == ["../partners/XM-DEMO-1001.html"]
    # Sector overlap, date overlap, title similarity (not computed).
    assert [text(c) for c in cells[2:]] == ["50.0%", "84.0%", "–"]
    # A partner without a page is named, not linked.
    assert cells[1].xpath(".//a") == []
    assert "Other Fund" in text(cells[1])


def test_data_quality_of_the_sources() -> None:
    tree = country_page(ghana())
    assert table_rows(tree, "table-quality") == [
        ["demo-agency.xml", "IATI", "OK", "12", "12", "0", ""],
        [
            "gh-report-2024.xlsx",
            "Country report",
            "Partly accepted",
            "10",
            "8",
            "2",
            "2 rows with an unknown priority",
        ],
    ]
    assert section(tree, "quality").xpath('.//a[@data-link="quality"]/@href') == [
        "../quality/index.html"
    ]


# ------------------------------------------------------------------------ links


def test_links_to_row_extracts_and_full_tables() -> None:
    tree = country_page(ghana())
    money = section(tree, "money")
    assert set(money.xpath('.//a[@data-rows="transactions"]/@href')) == {
        "../countries/GH/rows/transactions.csv"
    }
    assert set(money.xpath('.//a[@data-table="transactions"]/@href')) == {
        "../data/transactions.csv"
    }
    # One pair of links after each of the three charts' tables.
    assert len(money.xpath('.//p[@class="data-links"]')) == 3
    alignment = section(tree, "alignment")
    assert alignment.xpath('.//a[@data-rows="alignment_metrics"]/@href') == [
        "../countries/GH/rows/alignment_metrics.csv"
    ]
    # No extract for a table: only the full table is linked.
    duplication = section(tree, "duplication")
    assert duplication.xpath(".//a[@data-rows]") == []
    assert duplication.xpath(".//a[@data-table]/@href") == [
        "../data/duplication_metrics.csv",
        "../data/duplication_pairs.csv",
    ]
    crumbs = {a.get("data-link"): a.get("href") for a in tree.xpath("//header//a[@data-link]")}
    assert crumbs == {
        "catalogue": "../../../index.html",
        "release": "../",
        "index": "index.html",
        "other-index": "../partners/index.html",
        "quality": "../quality/index.html",
    }


def test_every_page_links_to_its_other_languages() -> None:
    english = country_page(ghana())
    (switch,) = english.xpath('//nav[@class="lang"]')
    (french_link,) = switch.xpath(".//a")
    assert (french_link.get("href"), french_link.get("hreflang"), french_link.get("lang")) == (
        "GH.fr.html",
        "fr",
        "fr",
    )
    assert text(french_link) == "Français"
    assert switch.xpath('.//span[@aria-current="page"]/@lang') == ["en"]
    alternates = english.xpath('//link[@rel="alternate"]')
    assert [(a.get("hreflang"), a.get("href")) for a in alternates] == [
        ("en", "GH.html"),
        ("fr", "GH.fr.html"),
    ]
    french = country_page(ghana(), "fr")
    (english_link,) = french.xpath('//nav[@class="lang"]//a')
    assert (english_link.get("href"), english_link.get("hreflang")) == ("GH.html", "en")
    assert french.xpath('//header//a[@data-link="index"]/@href') == ["index.fr.html"]


# ------------------------------------------------------------------ the pages


def all_pages() -> dict[str, bytes]:
    return render_all(
        [ghana(), senegal()], [demo_agency(), nordic_bank()], ("en", "fr"), context=CONTEXT
    )


def test_render_all_writes_every_page_in_every_language() -> None:
    pages = all_pages()
    assert sorted(pages) == sorted(
        f"{folder}/{stem}{suffix}.html"
        for folder, stems in (
            ("countries", ("index", "GH", "SN")),
            ("partners", ("index", "XM-DEMO-1001", "XM-NB-2")),
        )
        for stem in stems
        for suffix in ("", ".fr")
    )
    for path, page in pages.items():
        tree = lxml.html.document_fromstring(page)
        assert tree.get("lang") == ("fr" if path.endswith(".fr.html") else "en"), path


def test_output_is_deterministic_and_input_untouched() -> None:
    countries, partners = [ghana(), senegal()], [demo_agency(), nordic_bank()]
    before = copy.deepcopy((countries, partners))
    first = render_all(countries, partners, context=CONTEXT)
    second = render_all(copy.deepcopy(countries), copy.deepcopy(partners), context=CONTEXT)
    assert first == second
    assert (countries, partners) == before


def test_page_frame_accessibility_and_responsiveness() -> None:
    for path, page in all_pages().items():
        source = page.decode("utf-8")
        assert source.startswith("<!DOCTYPE html>\n"), path
        tree = lxml.html.document_fromstring(page)
        head = tree.find("head")
        assert head.xpath('./meta[@charset="utf-8"]'), path
        assert head.xpath(
            './meta[@name="viewport"][@content="width=device-width, initial-scale=1"]'
        ), path
        assert head.findtext("title").strip(), path
        # Skip link to the main content.
        (skip,) = tree.xpath('//a[@class="skip"]')
        assert skip.get("href") == "#content", path
        assert tree.xpath('//main[@id="content"]'), path
        for sec in tree.xpath("//main/section"):
            assert sec.get("id"), path
            assert sec.xpath("./h2"), (path, sec.get("id"))
        for table in tree.xpath("//table"):
            assert (table.findtext("caption") or "").strip(), path
            assert all(th.get("scope") in {"col", "row"} for th in table.xpath(".//th")), path
            # Wide tables scroll sideways inside a keyboard-reachable region.
            wrapper = table.getparent()
            assert wrapper.get("class") == "scroll", path
            assert wrapper.get("tabindex") == "0", path
        style = "".join(tree.xpath("//style/text()"))
        assert "@media print" in style
        assert "@media (max-width:640px)" in style
        assert re.search(r"svg\.chart\{width:100%;[^}]*height:auto", style)
        assert "attr(href)" in style  # links are shown when printed
        assert re.search(r"@media print\{\s*nav[^{]*\{display:none", style)


def test_pages_are_self_contained_no_script_no_external_resource() -> None:
    for path, page in all_pages().items():
        source = page.decode("utf-8")
        tree = lxml.html.document_fromstring(page)
        assert not tree.xpath("//script|//iframe|//object|//embed|//img|//form"), path
        assert not tree.xpath("//*[@src]"), path
        assert not re.search(r"\son[a-z]+=", source), path  # no event handlers
        for link in tree.xpath("//link"):
            assert link.get("rel") == "alternate", path
        assert "http://" not in source, path
        assert "https://" not in source, path
        style = "".join(tree.xpath("//style/text()"))
        assert not re.search(r"@import|url\(|@font-face", style), path
        csp = tree.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')
        assert csp == [
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
        ], path


def test_every_chart_is_an_accessible_image() -> None:
    charts = 0
    for path, page in all_pages().items():
        tree = lxml.html.document_fromstring(page)
        for svg in tree.xpath("//svg"):
            charts += 1
            assert svg.get("role") == "img", path
            # (the HTML parser lowercases attribute names)
            assert svg.get("viewbox", "").startswith("0 0 900 "), path
            title_id, desc_id = svg.get("aria-labelledby").split()
            (title,) = svg.xpath(f'./title[@id="{title_id}"]')
            (desc,) = svg.xpath(f'./desc[@id="{desc_id}"]')
            assert title.text.strip(), path
            assert desc.text.strip(), path
            assert svg.getparent().getparent().tag == "figure", path
            fills = set(svg.xpath(".//rect[@class='bar']/@fill"))
            okabe_ito = {
                "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
                "#000000",
            }  # fmt: skip
            assert all(f in okabe_ito or f.startswith("url(#") for f in fills), (path, fills)
    assert charts > 10


def test_money_chart_is_summarised_and_followed_by_its_table() -> None:
    tree = country_page(ghana())
    (chart,) = tree.xpath('//svg[@id="chart-money-by-partner"]')
    assert chart.xpath("./desc")[0].text == (
        "CD disbursements by partner, 2022 to 2023; largest: Demo Agency, USD 1.0 million"
    )
    # Every bar carries its name and amount in text, not only its colour.
    assert [text(t) for t in chart.xpath('.//text[@class="label"]')] == [
        "Demo Agency",
        "Demo Agency",
        "Nordic Bank",
    ]
    assert [text(t) for t in chart.xpath('.//text[@class="value"]')] == [
        "USD 734,567",
        "USD 300,000",
        "USD 200,000",
    ]
    figure = chart.getparent().getparent()
    following = figure.getnext()
    assert following.xpath("./table/@id") == ["table-money-by-partner"]
    french = country_page(ghana(), "fr")
    assert french.xpath('//svg[@id="chart-money-by-partner"]/desc')[0].text == (
        f"Versements DC par partenaire, de 2022 à 2023{NNBSP}; le plus important{NBSP}: "
        f"Demo Agency, 1,0 million{NBSP}USD"
    )


def test_every_string_from_the_data_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    country = ghana()
    country["name"] = evil
    country["priorities"][0]["title"] = evil
    country["priorities"][0]["activities"][0]["partner"] = evil
    country["money"]["by_partner"][0]["label"] = evil
    country["quality"][1]["reason"] = '"><img src=x onerror=alert(1)>'
    country["results"][0]["indicator_title"] = evil
    country["rows"]["transactions"] = "javascript:alert(1)"
    partner = demo_agency()
    partner["name"] = evil
    pages = render_all([country], [partner], context=CONTEXT)
    for path, page in pages.items():
        source = page.decode("utf-8")
        assert "<script" not in source, path
        assert "<img" not in source, path
        tree = lxml.html.document_fromstring(page)
        assert not tree.xpath("//script|//img"), path
        assert not any(h.startswith("javascript:") for h in tree.xpath("//a/@href")), path
    tree = lxml.html.document_fromstring(pages["countries/GH.html"])
    assert text(tree.xpath("//h1")[0]) == f"{evil}GH"
    assert evil in tree.findtext("head/title")
    assert tree.xpath('//a[@data-rows="transactions"]/@href')[0] == "../javascript%3Aalert%281%29"


def test_unsafe_or_clashing_page_names_are_refused() -> None:
    for slug in ("../evil", "index", ".hidden", "a/b", ""):
        profile = ghana()
        profile["slug"] = slug
        profile["code"] = slug
        with pytest.raises(ValueError, match="page name"):
            render_all([profile], [], context=CONTEXT)
    twin = ghana()
    twin["code"] = "GH2"
    twin["slug"] = "GH.fr"  # GH.fr.html would be both twin's page and Ghana's French page
    with pytest.raises(ValueError, match="two pages"):
        render_all([ghana(), twin], [], context=CONTEXT)


# --------------------------------------------------------------- empty sections


EMPTY_COUNTRY = {
    "money": "No CD disbursements to this country in this release.",
    "priorities": "This country has reported no CD priorities.",
    "results": "No results indicators reported for this country.",
    "alignment": "No alignment metrics computed for this country.",
    "peers": "No alignment metric to compare for this country.",
    "shared-indicators": "No results indicator of this country is shared with another country.",
    "hotspots": "No CD disbursements to this country in the duplication metrics.",
    "pairs": "No overlapping activities found in this country.",
    "quality": "No source file is recorded for this page.",
}


def test_empty_country_sections_say_so() -> None:
    tree = country_page(senegal())
    assert [s.get("id") for s in tree.xpath("//main/section")] == [
        "headline",
        "money",
        "priorities",
        "results",
        "alignment",
        "peers",
        "duplication",
        "quality",
    ]
    empty = {p.get("data-empty"): text(p) for p in tree.xpath('//p[@class="empty"]')}
    assert empty == EMPTY_COUNTRY
    assert not tree.xpath("//svg")
    assert tree.xpath('//dl[@class="facts"]//dd/text()')[-1] == "–"  # years
    french = country_page(senegal(), "fr")
    french_empty = {p.get("data-empty"): text(p) for p in french.xpath('//p[@class="empty"]')}
    assert french_empty.keys() == EMPTY_COUNTRY.keys()
    assert french_empty["results"] == "Aucun indicateur de résultats n'a été déclaré pour ce pays."


def test_empty_partner_sections_say_so() -> None:
    tree = partner_page(nordic_bank())
    empty = {p.get("data-empty"): text(p) for p in tree.xpath('//p[@class="empty"]')}
    assert empty == {
        "money-by-sector": "No CD disbursement to break down this way.",
        "money-by-modality": "No CD disbursement to break down this way.",
        "alignment": "No alignment metrics computed for this partner.",
        "overlaps": "No activity of this partner overlaps with another partner's.",
        "declarations": "This partner has no CD activities in compact countries to declare.",
        "quality": "No source file is recorded for this page.",
    }
    assert tree.xpath('//svg[@id="chart-money-by-country"]')


def test_empty_indexes_say_so() -> None:
    pages = render_all([], [], context=CONTEXT)
    assert sorted(pages) == [
        "countries/index.fr.html",
        "countries/index.html",
        "partners/index.fr.html",
        "partners/index.html",
    ]
    tree = lxml.html.document_fromstring(pages["partners/index.html"])
    assert text(tree.xpath('//p[@class="empty"]')[0]) == (
        "No development partner profile in this release."
    )


# --------------------------------------------------------------- partner pages


def test_partner_page() -> None:
    tree = partner_page(demo_agency())
    assert text(tree.xpath("//h1")[0]) == "Demo AgencyXM-DEMO-1001"
    assert [s.get("id") for s in tree.xpath("//main/section")] == [
        "headline",
        "money",
        "alignment",
        "overlaps",
        "declarations",
        "quality",
    ]
    assert table_rows(tree, "table-money-by-country") == [
        ["Ghana", "USD 734,567", "USD 300,000", "USD 1,034,567"],
        ["Total", "USD 734,567", "USD 300,000", "USD 1,034,567"],
    ]
    # One table per metric, a row per country linking to the country's page.
    metrics = [h.get("data-metric") for h in tree.xpath('//section[@id="alignment"]//h3')]
    assert metrics == ["priority_alignment", "on_budget"]
    (row,) = tree.xpath('//table[@id="table-alignment-1"]//tbody/tr')
    assert row.xpath("./th/a/@href") == ["../countries/GH.html"]
    assert "Low coverage" in text(row)
    (overlap,) = tree.xpath('//table[@id="table-overlaps"]//tbody/tr')
    assert overlap.xpath(".//a/@href") == [
        "../countries/GH.html",
        "../partners/XM-DEMO-1001.html",
        "../partners/XM-NB-2.html",
    ]
    assert table_rows(tree, "table-declarations") == [
        ["Country priorities served", "3", "4", "75.0%"],
        ["On the national budget", "1", "4", "25.0%"],
    ]
    (chart,) = tree.xpath('//svg[@id="chart-declarations"]')
    assert [text(t) for t in chart.xpath('.//text[@class="value"]')] == [
        "3 of 4 (75.0%)",
        "1 of 4 (25.0%)",
    ]
    assert chart.xpath("./desc")[0].text == (
        "2 fields; least often declared: On the national budget, 25.0%"
    )
    assert "3 of the partner's 4 CD activities" in text(section(tree, "declarations"))
    assert section(tree, "quality").xpath('.//a[@data-link="quality"]/@href') == [
        "../quality/index.html"
    ]
    french = partner_page(demo_agency(), "fr")
    assert "3 sur 4 (75,0\u00a0%)" in text(french.xpath('//svg[@id="chart-declarations"]')[0])


def test_index_pages_list_every_profile_with_its_figures() -> None:
    tree = lxml.html.document_fromstring(
        render_profiles_index("country", [ghana(), senegal()], "en", CONTEXT)
    )
    assert table_rows(tree, "table-index") == [
        ["Ghana", "GH", "USD 1.2 million", "49.4%", "3", "2", "2022 to 2023"],
        ["Senegal", "SN", "USD 0", "–", "0", "0", "–"],
    ]
    assert tree.xpath('//table[@id="table-index"]//a/@href') == ["GH.html", "SN.html"]
    french = lxml.html.document_fromstring(
        render_profiles_index("partner", [demo_agency()], "fr", CONTEXT)
    )
    assert french.xpath('//table[@id="table-index"]//a/@href') == ["XM-DEMO-1001.fr.html"]
    assert table_rows(french, "table-index")[0][2] == f"1,0 million{NBSP}USD"
    assert french.xpath('//nav[@class="lang"]//a/@href') == ["index.html"]


# ------------------------------------------------------------------ translations


def _catalogue(lang: str) -> Catalog:
    with (ROOT / "publish" / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=lang)


def test_french_is_written_in_french() -> None:
    french = _catalogue("fr")
    same = {m.id for m in french if m.id and m.string == m.id}
    # Framework references (GPEDC 1a.2, Paris 6...) are written alike; the words are not.
    anchors = {m for m in same if isinstance(m, str) and re.match(r"(GPEDC|Paris) ", m)}
    anchor = french.get("Paris 4, target 50%%")
    assert anchor is not None
    assert anchor.string == "Paris 4, cible 50\u00a0%%"
    # Only what both languages write alike: patterns, and words French shares with English.
    assert same - anchors == {
        "%(heading)s · %(title)s %(version)s",
        "Code",
        "Contact",  # a contributor's, in the quality report
        "Point",
        "Score",
        "Total",
        "Minimum",
        "Maximum",
        "Date",  # the catalogue's (index.html, release.html)
        "Table",
        "Transactions",
        "Version",
        "Budget %(year)s",  # the quality report's
        "Distributions",
        "Message",
        "Source",
        "Tables",
        "USD",
        "ok",
    }


def test_every_metric_modality_and_status_has_a_label() -> None:
    french = _catalogue("fr")
    for label, anchor in ALIGNMENT_METRICS.values():
        # The English labels and anchors are the catalogue page's: one name for one metric.
        assert french.get(label) is not None, label
        assert french.get(anchor.replace("%", "%%")) is not None, anchor
    schema = json.loads((ROOT / "schema" / "activities.json").read_text(encoding="utf-8"))
    (modality,) = [f for f in schema["fields"] if f["name"] == "modality"]
    names = _money_names("by_modality", "fr")
    for code in [*modality["constraints"]["enum"], "unknown"]:
        assert names[code] != code.replace("_", " ").capitalize(), code
    tree = country_page(ghana(), "fr")
    statuses = {text(s) for s in tree.xpath('//span[contains(@class, "status-")]')}
    assert statuses
    assert not statuses & {"ok", "partial", "rejected", "unchanged"}


def test_unknown_or_unsafe_languages_are_refused() -> None:
    for lang in ("../en", "EN", "e", "en.json"):
        with pytest.raises(ValueError, match="not a language code"):
            render_country_page(ghana(), lang, CONTEXT)
    with pytest.raises(ValueError, match=r"add publish/locale/xx/LC_MESSAGES/messages\.po"):
        render_country_page(ghana(), "xx", CONTEXT)
    with pytest.raises(ValueError, match=r"add publish/locale/xx/LC_MESSAGES/messages\.po"):
        render_all([ghana()], [], ("en", "xx"), CONTEXT)


@pytest.fixture
def third_language(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """German pages, their catalogue a copy of the French one in a locale folder of its own."""
    for lang in ("fr", "de"):
        folder = tmp_path / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        po = ROOT / "publish" / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
        (folder / "messages.po").write_bytes(po.read_bytes())
    monkeypatch.setattr(render, "LOCALE_ROOT", tmp_path)
    render.translations.cache_clear()
    render.environment.cache_clear()
    yield "de"
    render.translations.cache_clear()
    render.environment.cache_clear()


def test_a_third_language_is_one_catalogue_away(third_language: str) -> None:
    assert available_languages() == ("en", "de", "fr")
    pages = render_all([ghana()], [demo_agency()], ("en", "fr", third_language), CONTEXT)
    assert "countries/GH.de.html" in pages
    assert "partners/index.de.html" in pages
    tree = lxml.html.document_fromstring(pages["countries/GH.de.html"])
    assert tree.xpath("/html/@lang") == ["de"]
    assert tree.xpath('//nav[@class="lang"]//span[@aria-current="page"]/text()') == ["Deutsch"]
    # The copied catalogue's texts, German numbers and country names from CLDR.
    assert text(tree.xpath("//h2[@id='money-h']")[0]) == "Les versements DC dans le temps"
    assert f"49,4{NBSP}%" in text(tree.xpath('//div[@data-figure="cd_share"]')[0])


def test_without_a_quality_report_nothing_links_to_it() -> None:
    context = PageContext(version="2026.11.28", title="Compact", published="2026-11-28",
                          has_quality=False)  # fmt: skip
    # Called as publish/release.py does: the context as the fourth argument.
    pages = render_all([ghana()], [demo_agency()], ("en", "fr"), context)
    assert len(pages) == 8
    for path, page in pages.items():
        tree = lxml.html.document_fromstring(page)
        assert not tree.xpath('//a[contains(@href, "quality/")]'), path
    tree = lxml.html.document_fromstring(pages["countries/GH.html"])
    assert len(table_rows(tree, "table-quality")) == 2  # the sources are still listed
    with pytest.raises(TypeError, match="PageContext"):
        render_all([ghana()], [])


def test_french_pages_name_countries_in_french() -> None:
    """The IATI Country codelist names countries in English only: French pages take
    CLDR's names (Sénégal), English pages keep the codelist's; partners keep theirs."""
    assert text(country_page(senegal(), "fr").xpath("//h1")[0]).startswith("Sénégal")
    assert text(country_page(senegal()).xpath("//h1")[0]).startswith("Senegal")
    french = country_page(ghana(), "fr")
    members = [text(th) for th in french.xpath('//table[@id="table-peers-0-0"]//tbody/tr/th')]
    assert "Sénégal" in members
    assert "Senegal" not in text(french.xpath("//main")[0])
    agency = demo_agency()
    agency["money"]["by_country"].append(
        {"key": "SN", "label": "Senegal", "year": 2023, "usd": 1.0}
    )
    page = text(partner_page(agency, "fr").xpath("//main")[0])
    assert "Sénégal" in page
    assert "Senegal" not in page
    assert text(partner_page(agency, "fr").xpath("//h1")[0]).startswith("Demo Agency")
