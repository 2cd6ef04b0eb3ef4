"""Where an activity's money goes: sector, country and region shares, from the activity's
own percentages or from its transactions (``share_basis``), with figures computed by hand.

IATI 2.0x lets a publisher give ``sector`` and ``recipient-country``/``recipient-region``
on each transaction instead of on the activity; countries and regions share the activity
between them. The small files here are written by the tests; the real publishers' files
in ../shared/fixtures cover the activity-level cases (WRI's six countries and two regions,
Spain's Indonesia file with a region beside each country, CAF's region-only activities).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from assets.iati.harmonise import HarmoniseOptions, harmonise_file, harmonise_paths
from assets.settings import load_settings
from tests.conftest import IATI_FIXTURES, PROJECT_ROOT

VALID = IATI_FIXTURES / "valid"


def _options() -> HarmoniseOptions:
    return HarmoniseOptions(rules=load_settings().cd_rules)


def _transaction(
    kind: str, value: float, *children: str, currency: str | None = None, date: str = "2024-03-01"
) -> str:
    money = f' currency="{currency}"' if currency else ""
    return (
        f'<transaction><transaction-type code="{kind}"/>'
        f'<transaction-date iso-date="{date}"/>'
        f'<value value-date="{date}"{money}>{value}</value>{"".join(children)}</transaction>'
    )


def _activity(identifier: str, *children: str) -> str:
    return (
        f'<iati-activity default-currency="EUR"><iati-identifier>{identifier}</iati-identifier>'
        '<reporting-org ref="XM-TEST-1" type="10"><narrative>Test</narrative></reporting-org>'
        f"<title><narrative>{identifier}</narrative></title>{''.join(children)}</iati-activity>"
    )


def _write(folder: Path, name: str, *activities: str) -> Path:
    path = folder / name
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<iati-activities version="2.03">'
        + "".join(activities)
        + "</iati-activities>\n",
        encoding="utf-8",
    )
    return path


def _sector(code: str, vocabulary: str | None = None) -> str:
    given = f' vocabulary="{vocabulary}"' if vocabulary else ""
    return f'<sector code="{code}"{given}/>'


def _country(code: str, percentage: float | None = None) -> str:
    given = f' percentage="{percentage:g}"' if percentage is not None else ""
    return f'<recipient-country code="{code}"{given}/>'


def _region(code: str, percentage: float | None = None, vocabulary: str | None = None) -> str:
    given = f' percentage="{percentage:g}"' if percentage is not None else ""
    vocab = f' vocabulary="{vocabulary}"' if vocabulary else ""
    return f'<recipient-region code="{code}"{given}{vocab}/>'


def _shares(frame: pd.DataFrame, activity: str, code: str) -> dict[str, tuple[float, str]]:
    rows = frame[frame["activity_id"] == activity]
    return {
        str(r[code]): (round(float(r["share"]), 10), str(r["share_basis"]))
        for _, r in rows.iterrows()
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("shares")
    path = _write(
        folder,
        "transaction-level.xml",
        # Sectors and recipients on the transactions only. The commitment is not weighed:
        # disbursements and expenditures give the dimension. The -100 disbursement
        # corrects Kenya's 300: Kenya nets 200, Tanzania 100, the region 298 100 (400 in
        # all); sector 11220 nets 300 + 100 - 100 = 300, 15110 100.
        _activity(
            "XM-TEST-1-T1",
            _transaction("2", 1000, _sector("12220"), _country("UG")),
            _transaction("3", 300, _sector("11220"), _country("KE")),
            _transaction("3", 100, _sector("15110"), _country("TZ")),
            _transaction("4", 100, _sector("11220"), _region("298")),
            _transaction("3", -100, _sector("11220"), _country("KE")),
        ),
        # DAC sectors on the activity, DAC categories (vocabulary 2) and countries on the
        # two commitments: Mali 500 of 2,000, Senegal 1,500.
        _activity(
            "XM-TEST-1-T2",
            _sector("11110"),
            _transaction("2", 500, _sector("111", "2"), _country("ML")),
            _transaction("2", 1500, _sector("112", "2"), _country("SN")),
        ),
        # Two currencies cannot be weighed together: an even split and a warning.
        _activity(
            "XM-TEST-1-T3",
            _transaction("3", 100, _country("KE")),
            _transaction("3", 900, _country("UG"), currency="USD"),
        ),
        # Countries and regions on the activity share it: Burkina Faso 40, West Africa 60;
        # the UN M49 region describes the same money again and is not counted.
        _activity(
            "XM-TEST-1-T4",
            _country("BF", 40),
            _region("289", 60, "1"),
            _region("011", 100, "2"),
        ),
        # Only a region, in the reporting organisation's own vocabulary.
        _activity("XM-TEST-1-T5", _region("SAHEL", None, "99")),
        # A transaction with both a country and a region: the country counts.
        _activity(
            "XM-TEST-1-T6",
            _transaction("3", 10, _country("GH"), _region("289")),
            _transaction("3", 30, _region("289")),
        ),
        # Transactions whose values net to nothing: an even split and a warning.
        _activity(
            "XM-TEST-1-T7",
            _transaction("3", 50, _sector("11220")),
            _transaction("3", -50, _sector("11220")),
            _transaction("3", 0, _sector("15110")),
        ),
    )
    return dict(harmonise_file(path, _options()).tables)


def test_sectors_and_countries_on_transactions_give_the_activity_its_shares(
    written: dict[str, pd.DataFrame],
) -> None:
    countries, regions = written["activity_countries"], written["activity_regions"]
    assert _shares(countries, "XM-TEST-1-T1", "country_code") == {
        "KE": (0.5, "transaction"),
        "TZ": (0.25, "transaction"),
    }
    assert _shares(regions, "XM-TEST-1-T1", "region_code") == {"298": (0.25, "transaction")}
    sectors = written["activity_sectors"]
    assert _shares(sectors, "XM-TEST-1-T1", "code") == {
        "11220": (0.75, "transaction"),
        "15110": (0.25, "transaction"),
    }
    t1 = sectors[sectors["activity_id"] == "XM-TEST-1-T1"]
    assert t1["percentage"].isna().all()
    # the row points at the first transaction that gives the code
    assert t1.set_index("code").loc["15110", "source_ref"].endswith("/transaction[3]")


def test_activity_level_sectors_of_one_vocabulary_and_transaction_level_of_another(
    written: dict[str, pd.DataFrame],
) -> None:
    sectors = written["activity_sectors"]
    t2 = sectors[sectors["activity_id"] == "XM-TEST-1-T2"]
    assert {(r.vocabulary, r.code): (r.share, r.share_basis) for r in t2.itertuples()} == {
        ("1", "11110"): (1.0, "activity"),
        ("2", "111"): (0.25, "transaction"),
        ("2", "112"): (0.75, "transaction"),
    }
    assert _shares(written["activity_countries"], "XM-TEST-1-T2", "country_code") == {
        "ML": (0.25, "transaction"),
        "SN": (0.75, "transaction"),
    }


def test_what_cannot_be_weighed_is_split_evenly_and_said(
    written: dict[str, pd.DataFrame],
) -> None:
    assert _shares(written["activity_countries"], "XM-TEST-1-T3", "country_code") == {
        "KE": (0.5, "even"),
        "UG": (0.5, "even"),
    }
    assert _shares(written["activity_sectors"], "XM-TEST-1-T7", "code") == {
        "11220": (0.5, "even"),
        "15110": (0.5, "even"),
    }
    quarantine = written["quarantine"].set_index("rule")
    currencies = quarantine.loc["transaction_currencies_differ"]
    assert currencies["table"] == "activity_countries"
    assert currencies["value"] == "EUR, USD"
    assert currencies["source_ref"] == "/iati-activities/iati-activity[3]"
    assert currencies["message"].endswith(
        "recipient countries and regions are given on transactions in 2 currencies "
        "(EUR, USD), which cannot be weighed together; the activity is split evenly among "
        "the 2 of them"
    )
    zero = quarantine.loc["transaction_values_zero"]
    assert zero["table"] == "activity_sectors"
    assert zero["message"].endswith(
        "sectors of vocabulary 1 are given on transactions whose values add up to nothing; "
        "the activity is split evenly among the 2 of them"
    )


def test_countries_and_regions_share_the_activity(written: dict[str, pd.DataFrame]) -> None:
    assert _shares(written["activity_countries"], "XM-TEST-1-T4", "country_code") == {
        "BF": (0.4, "activity")
    }
    regions = written["activity_regions"]
    assert _shares(regions, "XM-TEST-1-T4", "region_code") == {"289": (0.6, "activity")}
    assert _shares(regions, "XM-TEST-1-T5", "region_code") == {"SAHEL": (1.0, "activity")}
    assert regions.set_index("region_code").loc["SAHEL", "vocabulary"] == "99"
    not_counted = written["quarantine"].set_index("rule").loc["region_vocabulary_not_counted"]
    assert not_counted["table"] == "activity_regions"
    assert not_counted["source_ref"] == "/iati-activities/iati-activity[4]/recipient-region[2]"
    assert (
        "recipient-region 011 of vocabulary 2 not recorded: the activity's regions are "
        "counted in vocabulary 1" in not_counted["message"]
    )


def test_a_transaction_with_a_country_and_a_region_counts_the_country(
    written: dict[str, pd.DataFrame],
) -> None:
    # Ghana 10 of 40, West Africa 30 of 40.
    assert _shares(written["activity_countries"], "XM-TEST-1-T6", "country_code") == {
        "GH": (0.25, "transaction")
    }
    assert _shares(written["activity_regions"], "XM-TEST-1-T6", "region_code") == {
        "289": (0.75, "transaction")
    }
    both = written["quarantine"].set_index("rule").loc["country_and_region"]
    assert both["source_ref"] == "/iati-activities/iati-activity[6]/transaction[1]"
    assert "only the country counts" in both["message"]


def test_every_activity_with_transaction_sectors_or_countries_has_share_rows(
    written: dict[str, pd.DataFrame],
) -> None:
    """On every shared fixture file, the demo and the written file: an activity whose
    transactions give a DAC sector or a recipient country has sector or recipient rows."""
    _, tables = harmonise_paths(
        [VALID, IATI_FIXTURES / "legacy", PROJECT_ROOT / "demo" / "iati"], _options()
    )
    for frames in (tables, written):
        transactions = frames["transactions"]
        with_sector = set(transactions.loc[transactions["sector_code"].notna(), "activity_id"])
        with_country = set(
            transactions.loc[transactions["recipient_country"].notna(), "activity_id"]
        )
        sectors = frames["activity_sectors"]
        assert with_sector <= set(sectors.loc[sectors["vocabulary"] == "1", "activity_id"])
        recipients = set(frames["activity_countries"]["activity_id"]) | set(
            frames["activity_regions"]["activity_id"]
        )
        assert with_country <= recipients
    assert {"XM-TEST-1-T1", "XM-TEST-1-T2", "XM-TEST-1-T3"} <= with_country


def test_real_files_split_countries_and_regions_together() -> None:
    """WRI gives six countries (48%) and two regions (998 37%, 298 15%) on its activity;
    Spain's Indonesia activities give Indonesia 100% and the region 789 with no
    percentage, which therefore gets nothing."""
    wri = harmonise_file(VALID / "wri-521257057-strategic-plan-2023-2027.xml", _options()).tables
    countries, regions = wri["activity_countries"], wri["activity_regions"]
    assert round(countries["share"].sum(), 10) == 0.48
    assert dict(zip(regions["region_code"], regions["share"].round(10), strict=True)) == {
        "998": 0.37,
        "298": 0.15,
    }
    assert set(countries["share_basis"]) == set(regions["share_basis"]) == {"activity"}
    spain = harmonise_file(VALID / "MAEC_IATI_INDONESIA.xml", _options()).tables
    by_activity = (
        spain["activity_countries"]
        .groupby("activity_id")["share"]
        .sum()
        .add(spain["activity_regions"].groupby("activity_id")["share"].sum(), fill_value=0.0)
    )
    assert len(by_activity) == 83
    assert ((by_activity - 1.0).abs() < 1e-9).all()
    first = spain["activity_regions"].iloc[0]
    assert (first["region_code"], first["share"]) == ("789", 0.0)
