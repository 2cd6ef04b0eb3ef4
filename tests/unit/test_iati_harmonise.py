"""IATI harmonisation on the real publisher files in ../shared/fixtures/iati."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from assets.harmonise.schema import table_schema
from assets.iati.classify import normalise_text
from assets.iati.codelists import load_codelists
from assets.iati.harmonise import (
    HarmonisedFile,
    HarmoniseOptions,
    combine,
    harmonise_file,
)
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from tests.conftest import CODELISTS, IATI_FIXTURES, RATES

VALID = IATI_FIXTURES / "valid"
LEGACY = IATI_FIXTURES / "legacy"
INVALID = IATI_FIXTURES / "invalid"


@cache
def options(languages: tuple[str, ...] = ("en", "fr", "es", "pt")) -> HarmoniseOptions:
    settings = load_settings()
    return HarmoniseOptions(
        rules=settings.cd_rules,
        rates=load_exchange_rates(
            [RATES / "imf-monthly-subset.csv", RATES / "monthly-average-sdr-per-unit.json"]
        ),
        codelists=load_codelists(CODELISTS),
        preferred_languages=languages,
        rate_fallback_months=12,
    )


@cache
def harmonised(path: Path) -> HarmonisedFile:
    return harmonise_file(path, options())


ACCEPTANCE = [
    (VALID / "iati-activities-am-armenia.xml", 43, 6444),
    (VALID / "who-arg.xml", 157, 871),
    (VALID / "CAF-ActivityFile-2025-10-10.xml", 478, 945),
    (VALID / "MAEC_IATI_INDONESIA.xml", 83, 216),
    (LEGACY / "dfid-AF-1.01.xml", 247, 396),
]


@pytest.mark.parametrize(("path", "activities", "transactions"), ACCEPTANCE, ids=lambda v: str(v))
def test_acceptance_counts(path: Path, activities: int, transactions: int) -> None:
    result = harmonised(path)
    assert result.status == "ok", result.source["reason"]
    assert len(result.tables["activities"]) == activities
    assert len(result.tables["transactions"]) == transactions
    source = result.source
    assert source["n_records"] == activities
    assert source["n_accepted"] == activities
    assert source["n_quarantined"] == 0


def _xml_sums(path: Path) -> dict[str, Decimal]:
    """Sum of transaction/value per iati-identifier, read straight from the XML.

    Transactions with two values or two types are left out: the harmoniser
    quarantines them (see test_ambiguous_transactions_are_quarantined).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.parse(str(path), parser).getroot()
    activities = [root] if root.tag == "iati-activity" else root.findall("iati-activity")
    sums: dict[str, Decimal] = {}
    for activity in activities:
        identifier = (activity.findtext("iati-identifier") or "").strip()
        total = Decimal(0)
        for transaction in activity.findall("transaction"):
            values = transaction.findall("value")
            if len(values) == 1 and len(transaction.findall("transaction-type")) == 1:
                total += Decimal((values[0].text or "0").strip())
        sums[identifier] = total
    return sums


ALL_FILES = sorted([*VALID.glob("*.xml"), *LEGACY.glob("*.xml")])


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_value_sums_per_activity_equal_the_xml(path: Path) -> None:
    result = harmonised(path)
    transactions = result.tables["transactions"]
    ours = transactions.groupby("activity_id")["value"].sum().to_dict()
    for identifier, expected in _xml_sums(path).items():
        got = ours.get(identifier, 0.0)
        assert math.isclose(float(got), float(expected), rel_tol=1e-12, abs_tol=1e-6), (
            f"{path.name} {identifier}: {got} != {expected}"
        )


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_source_balances_and_rows_carry_provenance(path: Path) -> None:
    result = harmonised(path)
    source = result.source
    assert source["n_records"] == source["n_accepted"] + source["n_quarantined"]
    assert len(source["sha256"]) == 64
    for table in ("activities", "transactions", "activity_countries", "results", "budgets"):
        frame = result.tables[table]
        if frame.empty:
            continue
        assert (frame["source"] == "iati").all()
        assert (frame["source_file"] == path.name).all()
        assert (frame["source_sha256"] == source["sha256"]).all()
        assert frame["source_ref"].notna().all()


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_shares_never_inflate_totals(path: Path) -> None:
    result = harmonised(path)
    # countries and regions share the activity between them
    recipients = pd.concat([result.tables["activity_countries"], result.tables["activity_regions"]])
    if not recipients.empty:
        sums = recipients.groupby("activity_id")["share"].sum()
        assert ((sums - 1.0).abs() < 1e-9).all()
    sectors = result.tables["activity_sectors"]
    if not sectors.empty:
        sums = sectors.groupby(["activity_id", "vocabulary"])["share"].sum()
        assert ((sums - 1.0).abs() < 1e-9).all()


MODALITIES = set(
    next(f for f in table_schema("activities")["fields"] if f["name"] == "modality")["constraints"][
        "enum"
    ]
)


def test_ambiguous_transactions_are_quarantined() -> None:
    result = harmonised(VALID / "provider-activity-id.xml")
    assert result.status == "partial"
    quarantine = result.tables["quarantine"]
    ambiguous = quarantine[quarantine["rule"] == "ambiguous_transaction"]
    assert ambiguous["source_ref"].tolist() == ["/iati-activity/transaction[1]"]
    assert ambiguous["value"].tolist() == ["271111; 103021"]
    assert ambiguous["message"].iloc[0].startswith("line 34: 2 transaction-type and 2 value")
    assert len(result.tables["transactions"]) == 10


def test_legacy_letter_codes_are_mapped() -> None:
    transactions = harmonised(LEGACY / "dfid-AF-1.01.xml").tables["transactions"]
    assert set(transactions["transaction_type"]) <= {str(n) for n in range(1, 14)}
    raw = (LEGACY / "dfid-AF-1.01.xml").read_text(encoding="utf-8")
    assert (
        raw.count('<transaction-type code="D"') == (transactions["transaction_type"] == "3").sum()
    )
    assert (
        raw.count('<transaction-type code="C"') == (transactions["transaction_type"] == "2").sum()
    )


def test_legacy_roles_dates_and_sector_vocabulary() -> None:
    result = harmonised(LEGACY / "dfid-AF-1.01.xml")
    activity = result.tables["activities"].set_index("activity_id").loc["GB-1-107171"]
    # <activity-date type="start-actual">2006-11-09Z</activity-date>: a 1.0x type with a Z suffix
    assert activity["start_actual"] == dt.date(2006, 11, 9)
    assert activity["end_actual"] == dt.date(2011, 3, 31)
    assert activity["start_date"] == dt.date(2006, 11, 9)
    assert activity["title"] == "Helmand Agriculture And Rural Development Programme (HARDP): MRRD"
    orgs = result.tables["participating_orgs"]
    roles = orgs[orgs["activity_id"] == "GB-1-107171"].set_index("role")["org_ref"].to_dict()
    assert roles["1"] == "GB"
    assert roles["3"] == "GB-1"
    assert set(result.tables["activity_sectors"]["vocabulary"]) == {"1"}


def test_timezone_suffixed_dates() -> None:
    activities = harmonised(VALID / "iati-activities-am-armenia.xml").tables["activities"]
    first = activities.set_index("activity_id").loc["XM-DAC-46004-51090-001-LN3657"]
    # last-updated-datetime="2025-08-19T12:58:55.000+08:00"
    assert first["last_updated"] == pd.Timestamp("2025-08-19T04:58:55Z")
    assert activities["iati_version"].eq("2.03").all()


def test_byte_order_mark_bare_root_and_leading_comment() -> None:
    wri = harmonised(VALID / "wri-521257057-strategic-plan-2023-2027.xml")
    assert wri.status == "ok"
    assert wri.tables["activities"]["title"].tolist() == ["2023-2027 WRI Strategic Plan"]
    assert len(wri.tables["activity_countries"]) == 6
    bare = harmonised(VALID / "default_currency.xml")
    assert bare.status == "ok"
    assert bare.tables["activities"]["activity_id"].tolist() == ["47045-ARM-202-G05-H-00"]
    bare = harmonised(VALID / "provider-activity-id.xml")
    assert bare.tables["activities"]["activity_id"].tolist() == ["GB-CHC-1068839-dfid_ag_11-13"]
    assert bare.tables["activities"]["source_ref"].tolist() == ["/iati-activity"]
    assert harmonised(VALID / "who-arg.xml").status == "ok"


def test_preferred_language_order() -> None:
    path = VALID / "multiple_locales_descriptions.xml"
    english = harmonised(path).tables["activities"].iloc[0]
    assert english["title"].startswith("Algeria - Emergency Humanitarian Assistance")
    assert english["title_language"] == "en"
    french = harmonise_file(path, options(("fr", "en"))).tables["activities"].iloc[0]
    assert french["title"].startswith("Algérie - Aide Humanitaire")
    assert french["title_language"] == "fr"


def test_usd_conversion_from_imf_rates() -> None:
    result = harmonised(LEGACY / "dfid-AF-1.01.xml")
    transactions = result.tables["transactions"]
    gbp = transactions[(transactions["currency"] == "GBP") & transactions["value_usd"].notna()]
    assert len(gbp) > 0
    row = gbp.iloc[0]
    rate = options().rates.lookup("GBP", row["value_date"])  # type: ignore[union-attr]
    assert rate is not None
    assert row["usd_rate"] == rate.rate
    assert row["usd_rate_period"] == rate.period
    assert math.isclose(row["value_usd"], row["value"] / rate.rate)
    assert "imf-monthly-subset.csv" in row["usd_rate_source"]


def test_xdr_converts_through_sdr_rates() -> None:
    transactions = harmonised(VALID / "multiple_locales_descriptions.xml").tables["transactions"]
    assert (transactions["currency"] == "XDR").all()
    assert transactions["value_usd"].notna().all()
    assert (transactions["value_usd"] > transactions["value"]).all()  # one SDR is worth > 1 USD


def test_missing_rate_leaves_value_usd_empty_with_a_warning() -> None:
    monthly_only = HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates([RATES / "imf-monthly-subset.csv"]),
    )
    result = harmonise_file(VALID / "iati-activities-am-armenia.xml", monthly_only)
    budgets = result.tables["budgets"]
    eur = budgets[budgets["currency"] == "EUR"]
    assert len(eur) == 15
    assert eur["value_usd"].isna().all()  # the IMF monthly subset ends in 2022-08
    quarantine = result.tables["quarantine"]
    warnings = quarantine[quarantine["rule"] == "no_exchange_rate"]
    assert len(warnings) == 15 + int((result.tables["transactions"]["currency"] == "EUR").sum())
    assert (warnings["severity"] == "warning").all()
    assert warnings["message"].str.contains("no EUR rate for 2025-").any()
    assert result.status == "ok"  # warnings do not make a file partial


def test_rate_fallback_month_is_recorded() -> None:
    transactions = harmonised(LEGACY / "dfid-CD-1.01.xml").tables["transactions"]
    converted = transactions[transactions["value_usd"].notna()]
    months = converted["value_date"].map(lambda d: f"{d:%Y-%m}")
    assert (converted["usd_rate_period"] <= months).all()


def test_no_default_currency_is_a_warning_not_a_guess() -> None:
    result = harmonised(VALID / "MAEC_IATI_INDONESIA.xml")
    transactions = result.tables["transactions"]
    without = transactions[transactions["currency"].isna()]
    assert without["value_usd"].isna().all()
    quarantine = result.tables["quarantine"]
    assert len(quarantine[quarantine["rule"] == "no_currency"]) == len(without)


def test_incoming_funds_do_not_count_toward_totals() -> None:
    transactions = harmonised(VALID / "provider-activity-id.xml").tables["transactions"]
    incoming = transactions[transactions["transaction_type"] == "1"]
    assert len(incoming) > 0
    assert not incoming["counts_toward_totals"].any()
    assert (incoming["exclusion_reason"] == "incoming funds").all()
    assert incoming["provider_activity_id"].notna().any()
    assert transactions.loc[transactions["transaction_type"] != "1", "counts_toward_totals"].all()


def test_results_indicators_baselines_targets_periods() -> None:
    results = harmonised(VALID / "worldbank-sv.xml").tables["results"]
    assert len(results) > 0
    assert set(results["level"]) <= {"output", "intermediate_outcome", "impact", "other"}
    assert results["result_id"].is_unique
    with_target = results[results["target_value"].notna()]
    assert len(with_target) > 0
    assert results["period_end"].notna().any()


def test_invalid_fixture_files_are_rejected_with_a_reason() -> None:
    expected = {
        "truncated.xml": ("not_well_formed", "not well-formed XML at line 4"),
        "not-xml.xml": ("not_xml", "not XML"),
        "organisation-file-not-activities.xml": ("organisation_file", "organisation file"),
        "xml-but-not-iati.xml": ("not_iati_activities", "root element is <tag>"),
        "iati-act-schema-errors.xml": ("missing_identifier", "none of the 1 activities"),
    }
    for name, (rule, reason) in expected.items():
        result = harmonise_file(INVALID / name, options())
        assert result.status == "rejected", name
        assert reason in result.source["reason"], (name, result.source["reason"])
        assert rule in set(result.tables["quarantine"]["rule"]), name
        source = result.source
        assert source["n_records"] == source["n_accepted"] + source["n_quarantined"]


# CD classification of named real activities (rules: config/compact.yaml).
CLASSIFIED = [
    (VALID / "worldbank-sv.xml", "44000-P095314", True, {"cd_sector", "cd_keyword"}),
    (
        VALID / "MAEC_IATI_INDONESIA.xml",
        "ES-DIR3-E04585801-009-001301",
        True,
        {"aid_type_technical_cooperation", "cd_sector"},
    ),
    (LEGACY / "dfid-AF-1.01.xml", "GB-1-113361-101", True, {"cd_sector"}),
    (VALID / "who-arg.xml", "XM-DAC-928-AR-2016-17-01.003.AM01.ARG01", True, {"cd_keyword"}),
    (VALID / "iati-activities-am-armenia.xml", "XM-DAC-46004-51090-001-LN3657", False, set()),
    (VALID / "acfspain-ph.xml", "ES-CIF-G81164105-PHF5AC", False, set()),
    (LEGACY / "dfid-AF-1.01.xml", "GB-1-107171", False, set()),
]


@pytest.mark.parametrize(
    ("path", "activity_id", "is_cd", "basis"), CLASSIFIED, ids=[c[1] for c in CLASSIFIED]
)
def test_cd_classification_of_real_activities(
    path: Path, activity_id: str, is_cd: bool, basis: set[str]
) -> None:
    activity = harmonised(path).tables["activities"].set_index("activity_id").loc[activity_id]
    assert bool(activity["is_cd"]) is is_cd
    got = set(activity["cd_basis"].split(";")) if isinstance(activity["cd_basis"], str) else set()
    assert got == basis
    if is_cd:
        assert activity["modality"] in MODALITIES
    else:
        assert pd.isna(activity["modality"])


def test_spanish_keywords_classify_caf_activities() -> None:
    path = VALID / "CAF-ActivityFile-2025-10-10.xml"
    activities = harmonised(path).tables["activities"]
    keyword = set(
        activities.loc[activities["cd_basis"].fillna("").str.contains("cd_keyword"), "activity_id"]
    )
    assert len(keyword) == 79
    spanish = [normalise_text(p) for p in load_settings().cd_rules.keywords["es"]]
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    for activity in root.getroot().iter("iati-activity"):
        identifier = activity.findtext("iati-identifier")
        texts = " ".join(
            n.text or "" for n in activity.xpath("title/narrative | description/narrative")
        )
        matched = any(phrase in normalise_text(texts) for phrase in spanish)
        assert matched is (identifier in keyword), identifier


def test_same_activity_in_two_files_keeps_one_and_quarantines_the_other(tmp_path: Path) -> None:
    original = VALID / "provider-activity-id.xml"
    copy = tmp_path / "zz-republished.xml"
    copy.write_bytes(original.read_bytes())
    files = [harmonise_file(original, options()), harmonise_file(copy, options())]
    tables = combine(files)
    assert tables["activities"]["activity_id"].tolist() == ["GB-CHC-1068839-dfid_ag_11-13"]
    assert set(tables["transactions"]["source_file"]) == {"provider-activity-id.xml"}
    quarantine = tables["quarantine"]
    dup = quarantine[quarantine["rule"] == "duplicate_activity_across_files"]
    assert dup["source_file"].tolist() == ["zz-republished.xml"]
    assert "provider-activity-id.xml" in dup["message"].iloc[0]
    sources = tables["sources"].set_index("source_file")
    assert sources.loc["zz-republished.xml", "status"] == "rejected"
    assert sources.loc["zz-republished.xml", "n_quarantined"] == 1
    for row in tables["sources"].itertuples():
        assert row.n_records == row.n_accepted + row.n_quarantined


# -- every record accounted for, on every fixture ---------------------------------------------


def _activity_elements(path: Path) -> int | None:
    """``iati-activity`` elements of a well-formed file, counted by lxml; None if not."""
    try:
        return sum(
            1
            for _ in etree.iterparse(
                str(path), events=("end",), tag=("iati-activity", "{*}iati-activity"),
                resolve_entities=False, no_network=True, load_dtd=False,
            )
        )  # fmt: skip
    except etree.XMLSyntaxError:
        return None


@pytest.mark.parametrize(
    "path",
    sorted(IATI_FIXTURES.rglob("*.xml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_activity_of_every_fixture_is_accepted_or_quarantined(path: Path) -> None:
    result = harmonised(path)
    source = result.source
    n_records, n_accepted, n_quarantined = (
        int(source[c]) for c in ("n_records", "n_accepted", "n_quarantined")
    )
    assert n_records == n_accepted + n_quarantined, source
    activities = result.tables["activities"]
    quarantine = result.tables["quarantine"]
    assert activities["activity_id"].is_unique
    assert len(activities) == n_accepted
    whole_activities = quarantine[
        (quarantine["table"] == "activities") & (quarantine["severity"] == "error")
    ]
    counted = _activity_elements(path)
    if source["status"] == "rejected" and n_accepted == 0 and counted != n_records:
        # The file itself was refused (not XML, not activities, broken): one reason for
        # the whole file, and nothing of it in any table.
        assert (quarantine["table"] == "sources").sum() + len(whole_activities) >= 1
        assert all(len(result.tables[t]) == 0 for t in ("transactions", "budgets", "results"))
        return
    assert counted == n_records, (counted, source)
    # Each activity not accepted has its own reason, each accepted one its own row.
    assert whole_activities["source_ref"].nunique() == n_quarantined
    for table in ("transactions", "budgets", "activity_sectors", "activity_countries"):
        assert set(result.tables[table]["activity_id"].dropna()) <= set(activities["activity_id"])


def _activity_with_result(identifier: str, recipients: str) -> str:
    return f"""
  <iati-activity default-currency="USD" last-updated-datetime="2024-01-01T00:00:00">
    <iati-identifier>{identifier}</iati-identifier>
    <reporting-org ref="XM-TEST" type="40"><narrative>Test</narrative></reporting-org>
    <title><narrative>Statistics capacity {identifier}</narrative></title>
    {recipients}
    <result type="1">
      <title><narrative>Surveys run</narrative></title>
      <indicator measure="1">
        <title><narrative>Surveys</narrative></title>
        <baseline year="2022" value="1"/>
        <period>
          <period-start iso-date="2023-01-01"/><period-end iso-date="2023-12-31"/>
          <target value="3"/><actual value="2"/>
        </period>
      </indicator>
    </result>
  </iati-activity>"""


def test_a_result_takes_its_activitys_only_country(tmp_path: Path) -> None:
    path = tmp_path / "results-countries.xml"
    activities = [
        _activity_with_result("XM-TEST-ONE", '<recipient-country code="KE"/>'),
        _activity_with_result(
            "XM-TEST-TWO",
            '<recipient-country code="KE" percentage="60"/>'
            '<recipient-country code="UG" percentage="40"/>',
        ),
        _activity_with_result("XM-TEST-NONE", '<recipient-region code="289"/>'),
    ]
    path.write_text(
        '<iati-activities version="2.03" generated-datetime="2024-01-01T00:00:00">'
        + "".join(activities)
        + "\n</iati-activities>\n",
        encoding="utf-8",
    )
    results = harmonised(path).tables["results"]
    got = dict(zip(results["activity_id"], results["country_code"].fillna(""), strict=True))
    # one country: the result is about it; several or none: it stays empty
    assert got == {"XM-TEST-ONE": "KE", "XM-TEST-TWO": "", "XM-TEST-NONE": ""}
