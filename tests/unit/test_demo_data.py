"""The project's own fictional demo set (demo/): valid IATI 2.03, covered by the demo
codelists and exchange rates, and described truthfully by demo/README.md.

The figures in the README's tables are recomputed here from the XML (with an independent
reading of the CD rules in config/compact.yaml), so the README cannot go stale.
"""

from __future__ import annotations

import calendar
import csv
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
import yaml
from lxml import etree

from assets.iati.codelists import load_codelists
from assets.settings import load_settings
from assets.submissions.check import CheckedSubmission, check_submission
from assets.submissions.harmonise import harmonise_submission
from assets.submissions.read import read_submission
from tests.conftest import IATI_SCHEMAS, PROJECT_ROOT

DEMO = PROJECT_ROOT / "demo"
DEMO_IATI = DEMO / "iati"
DEMO_CODELISTS = DEMO / "codelists"
DEMO_RATES = DEMO / "exchange-rates.csv"
DEMO_README = DEMO / "README.md"
CONFIG = PROJECT_ROOT / "config" / "compact.yaml"
ACTIVITY_XSD = IATI_SCHEMAS / "2.03" / "iati-activities-schema.xsd"

#: Currency-months deliberately missing from demo/exchange-rates.csv (so the
#: nearest-earlier-month fallback is exercised); demo/README.md documents them.
DOCUMENTED_GAPS = {("GBP", "2024-03")}
RATES_HEADER = ["Date", "Rate", "Currency", "Frequency", "Source", "Country code", "Country"]
RATES_SOURCE = "DEMO (illustrative values, not IMF data)"
RATES_FIRST_MONTH, RATES_LAST_MONTH = "2020-01", "2026-10"
#: Every currency used must have a rate for each month of this span (gaps aside).
COVERAGE_FIRST_MONTH = "2021-01"
#: Plausible units-per-USD bands for the illustrative rates.
RATE_BANDS = {"EUR": (0.80, 1.02), "GBP": (0.70, 0.86)}
CODELIST_COMMENT = (
    "demo subset written for cdcompact; the full official codelists are fetched by the "
    "live configuration"
)
RULE_ORDER = ("aid_type_technical_cooperation", "ftc_flag", "cd_sector", "cd_keyword")
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DAC_VOCABULARY = {None, "1"}

DEMO_FILES = sorted(DEMO_IATI.glob("*.xml"))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True)


@cache
def _tree(path: Path) -> etree._ElementTree:
    return etree.parse(str(path), _parser())


def _activities(path: Path) -> list[etree._Element]:
    return _tree(path).getroot().findall("iati-activity")


def _all_activities() -> Iterator[etree._Element]:
    for path in DEMO_FILES:
        yield from _activities(path)


def _month(iso_date: str) -> str:
    return iso_date[:7]


def _months(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


# --- CD rules, read independently of the harmoniser -------------------------------------


@dataclass(frozen=True)
class Rules:
    aid_types: frozenset[str]
    ftc_flag: bool
    cd_sectors: frozenset[str]
    keywords: re.Pattern[str]


def _normalise(text: str) -> str:
    """Casefolded, accents removed, hyphens and white space runs as one space."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s\-‐‑–—]+", " ", plain).strip()


@cache
def _rules() -> Rules:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["cd_classification"]
    phrases = sorted(
        {_normalise(p) for ps in config["keywords"].values() for p in ps}, key=len, reverse=True
    )
    return Rules(
        aid_types=frozenset(config["technical_cooperation_aid_types"]),
        ftc_flag=bool(config["ftc_flag"]),
        cd_sectors=frozenset(str(code) for code in config["cd_sectors"]),
        keywords=re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, phrases)) + r")(?!\w)"),
    )


def cd_basis(activity: etree._Element) -> tuple[str, ...]:
    """The config's CD rules that match ``activity``, in the config's order."""
    rules = _rules()
    aid_types = {
        el.get("code")
        for el in activity.findall("default-aid-type") + activity.findall("transaction/aid-type")
        if el.get("vocabulary") in DAC_VOCABULARY
    }
    ftc = any(
        flag.get("code") == "1" and flag.get("significance") in {"1", "true"}
        for flag in activity.findall("crs-add/other-flags")
    )
    sectors = {
        el.get("code")
        for el in activity.findall("sector") + activity.findall("transaction/sector")
        if el.get("vocabulary") in DAC_VOCABULARY
    }
    texts = [
        n.text or ""
        for n in activity.findall("title/narrative") + activity.findall("description/narrative")
    ]
    matched = {
        "aid_type_technical_cooperation": bool(aid_types & rules.aid_types),
        "ftc_flag": rules.ftc_flag and ftc,
        "cd_sector": bool(sectors & rules.cd_sectors),
        "cd_keyword": bool(rules.keywords.search(_normalise(" \n ".join(texts)))),
    }
    return tuple(rule for rule in RULE_ORDER if matched[rule])


# --- figures per file ---------------------------------------------------------------------


def _currency(value: etree._Element, activity: etree._Element) -> str:
    return value.get("currency") or activity.get("default-currency") or ""


@dataclass
class Figures:
    publisher: str = ""
    activities: int = 0
    transactions: int = 0
    budgets: int = 0
    results_rows: int = 0
    cd_activities: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)

    def add(self, other: Figures) -> None:
        self.activities += other.activities
        self.transactions += other.transactions
        self.budgets += other.budgets
        self.results_rows += other.results_rows
        self.cd_activities += other.cd_activities
        for currency, amount in other.sums.items():
            self.sums[currency] = self.sums.get(currency, Decimal(0)) + amount


def figures(path: Path) -> Figures:
    out = Figures()
    publishers = set()
    for activity in _activities(path):
        publishers.add(activity.find("reporting-org").get("ref"))
        out.activities += 1
        transactions = activity.findall("transaction")
        out.transactions += len(transactions)
        out.budgets += len(activity.findall("budget"))
        out.results_rows += len(activity.findall("result/indicator/period"))
        out.cd_activities += bool(cd_basis(activity))
        for transaction in transactions:
            value = transaction.find("value")
            currency = _currency(value, activity)
            amount = Decimal((value.text or "").strip())
            out.sums[currency] = out.sums.get(currency, Decimal(0)) + amount
    assert len(publishers) == 1, f"{path.name}: one publisher per demo file"
    out.publisher = publishers.pop() or ""
    return out


# --- the README's tables --------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [
        c.strip().replace("`", "").replace("**", "").strip() for c in line.strip("| \n").split("|")
    ]


def markdown_table(text: str, heading: str) -> list[dict[str, str]]:
    """Rows of the first pipe table after ``heading``, keyed by the header cells."""
    assert heading in text, f"demo/README.md has no section {heading!r}"
    lines: list[str] = []
    for line in text.split(heading, 1)[1].splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    assert len(lines) >= 3, f"no table under {heading!r}"
    header = _cells(lines[0])
    return [dict(zip(header, _cells(line), strict=True)) for line in lines[2:]]


def parse_sums(cell: str) -> dict[str, Decimal]:
    """``USD 1,200,000; GBP 120,000`` as amounts by currency."""
    out: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in cell.split(";"))):
        currency, amount = part.split(maxsplit=1)
        out[currency] = out.get(currency, Decimal(0)) + Decimal(amount.replace(",", ""))
    return out


@cache
def _readme() -> str:
    return DEMO_README.read_text(encoding="utf-8")


# --- tests: files, schema -------------------------------------------------------------------


@pytest.fixture(scope="module")
def activity_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(ACTIVITY_XSD), _parser()))


def test_there_are_four_demo_files_from_four_publishers() -> None:
    assert len(DEMO_FILES) == 4
    publishers = {figures(path).publisher for path in DEMO_FILES}
    assert len(publishers) == 4
    assert all("-DEMO-" in ref for ref in publishers)


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda p: p.name)
def test_demo_file_is_valid_iati_2_03(path: Path, activity_schema: etree.XMLSchema) -> None:
    tree = _tree(path)
    assert tree.getroot().get("version") == "2.03"
    valid = activity_schema.validate(tree)
    assert valid, "\n".join(str(error) for error in activity_schema.error_log)
    assert 3 <= len(_activities(path)) <= 6


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda p: p.name)
def test_demo_file_says_it_is_fictional(path: Path) -> None:
    first = next(iter(_tree(path).getroot().itersiblings(preceding=True)), None)
    assert isinstance(first, etree._Comment)
    assert "FICTIONAL DEMO DATA" in first.text
    assert "cdcompact" in first.text


def test_demo_covers_countries_currencies_and_publishers() -> None:
    countries: set[str] = set()
    currencies: set[str] = set()
    publishers: set[str] = set()
    for activity in _all_activities():
        publishers.add(activity.find("reporting-org").get("ref"))
        countries.update(el.get("code") for el in activity.findall("recipient-country"))
        for value in activity.findall("transaction/value") + activity.findall("budget/value"):
            currencies.add(_currency(value, activity))
    assert len(countries) >= 3
    assert {"GH", "KE", "NP"} <= countries
    assert len(currencies) >= 2
    assert len(publishers) >= 3


def test_demo_exercises_the_features_the_readme_describes() -> None:
    activities = list(_all_activities())
    ids = {a.findtext("iati-identifier") for a in activities}
    assert len(ids) == len(activities), "activity identifiers are unique"

    def having(predicate: Callable[[etree._Element], object]) -> list[etree._Element]:
        return [a for a in activities if predicate(a)]

    # funding chain: incoming funds pointing at another demo activity
    chain = [
        t
        for a in activities
        for t in a.findall("transaction")
        if t.find("transaction-type").get("code") == "1"
        and t.find("provider-org") is not None
        and t.find("provider-org").get("provider-activity-id") in ids
    ]
    assert chain
    # hierarchy 2 child whose parent is in the demo
    children = having(lambda a: a.get("hierarchy") == "2")
    assert children
    for child in children:
        parents = [r.get("ref") for r in child.findall("related-activity[@type='1']")]
        assert parents
        assert set(parents) <= ids
    # a multi-country activity with percentages summing to 100
    multi = having(lambda a: len(a.findall("recipient-country")) > 1)
    assert multi
    for activity in multi:
        assert (
            sum(Decimal(c.get("percentage")) for c in activity.findall("recipient-country")) == 100
        )
    # sectors 50/50, and sectors without percentages
    assert having(lambda a: [s.get("percentage") for s in a.findall("sector")] == ["50", "50"])
    assert having(
        lambda a: (
            len(a.findall("sector")) > 1
            and all(s.get("percentage") is None for s in a.findall("sector"))
        )
    )
    # an explicit transaction currency other than the activity default
    assert having(
        lambda a: any(
            v.get("currency") not in (None, a.get("default-currency"))
            for v in a.findall("transaction/value")
        )
    )
    # indicator reference with vocabulary 99 (the country results framework one)
    assert having(lambda a: a.findall("result/indicator/reference[@vocabulary='99']"))
    # titles in en and fr
    assert having(
        lambda a: (
            {n.get(XML_LANG) or a.get(XML_LANG) for n in a.findall("title/narrative")}
            >= {"en", "fr"}
        )
    )
    # codes used across the set
    every = Counter[str]()
    for a in activities:
        every.update(f"tt{t.get('code')}" for t in a.findall("transaction/transaction-type"))
        every.update(f"role{p.get('role')}" for p in a.findall("participating-org"))
        every.update(f"date{d.get('type')}" for d in a.findall("activity-date"))
        every.update(f"budget{b.get('type')}" for b in a.findall("budget"))
    for key in ["tt1", "tt2", "tt3", "tt4", "budget1", "budget2"]:
        assert every[key], key
    for n in "1234":
        assert every[f"role{n}"], n
        assert every[f"date{n}"], n
    # every indicator has periods (the README counts one results row per period)
    for indicator in (i for a in activities for i in a.findall("result/indicator")):
        assert indicator.findall("period")
        assert indicator.find("baseline") is not None
    # non-CD activities exist too
    assert having(lambda a: not cd_basis(a))
    # every rule matches at least one activity on its own
    single_rule = {cd_basis(a) for a in activities}
    for rule in RULE_ORDER:
        assert (rule,) in single_rule, rule


# --- tests: codelists -----------------------------------------------------------------------


@cache
def _codelist_codes() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted(DEMO_CODELISTS.rglob("*.xml")):
        root = _tree(path).getroot()
        out[root.get("name")] = {code.text for code in root.iter("code")}
    return out


def _used_codes() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}

    def add(codelist: str, values: Iterable[str | None]) -> None:
        used.setdefault(codelist, set()).update(v for v in values if v)

    for a in _all_activities():
        add(
            "Sector",
            (
                s.get("code")
                for s in a.findall("sector") + a.findall("transaction/sector")
                if s.get("vocabulary") in DAC_VOCABULARY
            ),
        )
        add(
            "AidType",
            (
                t.get("code")
                for t in a.findall("default-aid-type") + a.findall("transaction/aid-type")
                if t.get("vocabulary") in DAC_VOCABULARY
            ),
        )
        add("TransactionType", (t.get("code") for t in a.findall("transaction/transaction-type")))
        add(
            "FinanceType",
            (
                t.get("code")
                for t in a.findall("default-finance-type") + a.findall("transaction/finance-type")
            ),
        )
        add(
            "FlowType",
            (
                t.get("code")
                for t in a.findall("default-flow-type") + a.findall("transaction/flow-type")
            ),
        )
        add(
            "Country",
            (
                c.get("code")
                for c in a.findall("recipient-country") + a.findall("transaction/recipient-country")
            ),
        )
        add(
            "Currency",
            [a.get("default-currency")] + [v.get("currency") for v in a.findall(".//value")],
        )
        add("OrganisationRole", (p.get("role") for p in a.findall("participating-org")))
        add("ActivityStatus", (s.get("code") for s in a.findall("activity-status")))
        add("BudgetType", (b.get("type") for b in a.findall("budget")))
        add("BudgetStatus", (b.get("status") for b in a.findall("budget")))
        add("ActivityDateType", (d.get("type") for d in a.findall("activity-date")))
        add(
            "OrganisationType",
            (
                o.get("type")
                for path in (
                    "reporting-org",
                    "participating-org",
                    "transaction/provider-org",
                    "transaction/receiver-org",
                )
                for o in a.findall(path)
            ),
        )
    return used


@pytest.mark.parametrize(
    "codelist",
    [
        "Sector",
        "AidType",
        "TransactionType",
        "FinanceType",
        "FlowType",
        "Country",
        "Currency",
        "OrganisationRole",
        "ActivityStatus",
        "BudgetType",
        "BudgetStatus",
        "ActivityDateType",
        "OrganisationType",
    ],
)
def test_codes_used_by_the_demo_are_in_the_demo_codelists(codelist: str) -> None:
    used = _used_codes()[codelist]
    assert used, f"the demo uses no {codelist} codes"
    missing = used - _codelist_codes().get(codelist, set())
    assert not missing, f"{codelist}: {sorted(missing)} not in demo/codelists"


def test_demo_codelists_are_small_labelled_subsets() -> None:
    codes = _codelist_codes()
    assert codes["TransactionType"] == {str(n) for n in range(1, 14)}
    assert codes["OrganisationRole"] == {"1", "2", "3", "4"}
    assert codes["ActivityStatus"] == {"1", "2", "3", "4", "5", "6"}
    assert codes["AidType"] >= {"D01", "D02"}
    assert len(codes["Sector"]) < 40
    for path in sorted(DEMO_CODELISTS.rglob("*.xml")):
        root = _tree(path).getroot()
        assert root.tag == "codelist"
        assert root.get("name") == path.stem
        comments = [c.text for c in root.itersiblings(preceding=True)]
        assert any(CODELIST_COMMENT in " ".join(c.split()) for c in comments), path.name
        for item in root.iter("codelist-item"):
            assert item.findtext("code"), path.name
            assert item.findtext("name/narrative"), path.name


# --- tests: exchange rates ------------------------------------------------------------------


@cache
def _rate_rows() -> list[dict[str, str]]:
    with DEMO_RATES.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == RATES_HEADER
        return list(reader)


def _rate_months() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in _rate_rows():
        out.setdefault(row["Currency"], set()).add(_month(row["Date"]))
    return out


def _non_usd_currencies() -> set[str]:
    return _used_codes()["Currency"] - {"USD"}


def test_rates_file_is_in_the_imf_csv_format() -> None:
    seen = set()
    for row in _rate_rows():
        year, month, day = map(int, row["Date"].split("-"))
        assert day == calendar.monthrange(year, month)[1], row["Date"]
        assert row["Frequency"] == "M"
        assert row["Source"] == RATES_SOURCE
        low, high = RATE_BANDS[row["Currency"]]
        assert low <= float(row["Rate"]) <= high, row
        key = (row["Currency"], row["Date"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)


def test_every_currency_used_has_a_rate_for_every_month() -> None:
    months = _rate_months()
    assert _non_usd_currencies() <= set(months)
    for currency in _non_usd_currencies():
        expected = set(_months(COVERAGE_FIRST_MONTH, RATES_LAST_MONTH))
        missing = expected - months[currency]
        gaps = {month for cur, month in DOCUMENTED_GAPS if cur == currency}
        assert missing == gaps, f"{currency}: undocumented gaps {sorted(missing - gaps)}"
        assert min(months[currency]) == RATES_FIRST_MONTH
        assert max(months[currency]) == RATES_LAST_MONTH


def test_documented_gap_is_in_the_readme_and_used_by_a_value_date() -> None:
    value_months = {
        (_currency(v, a), _month(v.get("value-date")))
        for a in _all_activities()
        for v in a.findall("transaction/value")
    }
    for currency, month in DOCUMENTED_GAPS:
        assert f"{currency} {month}" in _readme()
        assert (currency, month) in value_months, "the gap should exercise the fallback"


def test_every_non_usd_value_date_is_within_the_rates() -> None:
    for activity in _all_activities():
        for value in activity.findall(".//value"):
            if _currency(value, activity) != "USD":
                month = _month(value.get("value-date"))
                assert RATES_FIRST_MONTH <= month <= RATES_LAST_MONTH, month


# --- tests: README stays in step with the XML -----------------------------------------------


def test_readme_per_file_table_matches_the_xml() -> None:
    rows = markdown_table(_readme(), "## Expected figures")
    by_file = {row["File"]: row for row in rows}
    total = Figures()
    assert set(by_file) == {p.name for p in DEMO_FILES} | {"all files"}
    for path in DEMO_FILES:
        row = by_file[path.name]
        got = figures(path)
        total.add(got)
        assert row["Publisher"] == got.publisher
        assert int(row["Activities"]) == got.activities, path.name
        assert int(row["Transactions"]) == got.transactions, path.name
        assert int(row["Budgets"]) == got.budgets, path.name
        assert int(row["Results rows"]) == got.results_rows, path.name
        assert int(row["CD activities"]) == got.cd_activities, path.name
        assert parse_sums(row["Transaction values by currency"]) == got.sums, path.name
    row = by_file["all files"]
    assert int(row["Activities"]) == total.activities
    assert int(row["Transactions"]) == total.transactions
    assert int(row["Budgets"]) == total.budgets
    assert int(row["Results rows"]) == total.results_rows
    assert int(row["CD activities"]) == total.cd_activities
    assert parse_sums(row["Transaction values by currency"]) == total.sums


def test_readme_per_activity_table_matches_the_xml() -> None:
    rows = markdown_table(_readme(), "## Activities and CD classification")
    by_id = {row["Activity"]: row for row in rows}
    activities = {a.findtext("iati-identifier"): a for a in _all_activities()}
    assert set(by_id) == set(activities)
    for identifier, activity in activities.items():
        row = by_id[identifier]
        basis = cd_basis(activity)
        assert row["CD"] == ("yes" if basis else "no"), identifier
        assert row["cd_basis"] == (";".join(basis) or "-"), identifier
        countries = ", ".join(
            c.get("code")
            + (f" {c.get('percentage')}" if len(activity.findall("recipient-country")) > 1 else "")
            for c in activity.findall("recipient-country")
        )
        assert row["Countries"] == countries, identifier
        sectors = ", ".join(s.get("code") for s in activity.findall("sector"))
        assert row["Sectors"] == sectors, identifier


# --- the demo's submissions (demo/submissions/) ---------------------------------------------

DEMO_SUBMISSIONS = sorted(p for p in (DEMO / "submissions").iterdir() if p.is_dir())


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _iati_titles() -> dict[str, str]:
    titles = {}
    for activity in _all_activities():
        english = activity.find(f"title/narrative[@{XML_LANG}='en']")
        first = english if english is not None else activity.find("title/narrative")
        titles[activity.findtext("iati-identifier").strip()] = (first.text or "").strip()
    return titles


def _kind(folder: Path) -> str:
    return "country_report" if (folder / "cd_priorities.csv").exists() else "partner_submission"


def _checked(folder: Path) -> CheckedSubmission:
    """A demo submission checked as the night checks it, against the demo's IATI ids."""
    return check_submission(
        read_submission(folder),
        load_settings(),
        load_codelists(DEMO_CODELISTS),
        set(_iati_titles()),
    )


def test_the_demo_has_three_country_reports_and_two_partner_submissions() -> None:
    kinds = Counter(_kind(folder) for folder in DEMO_SUBMISSIONS)
    assert kinds == {"country_report": 3, "partner_submission": 2}
    # a folder of the templates' CSV files only: every file is one of the template's
    for folder in DEMO_SUBMISSIONS:
        template = PROJECT_ROOT / "templates" / _kind(folder)
        assert {p.name for p in folder.iterdir()} <= {p.name for p in template.glob("*.csv")}
        for path in folder.glob("*.csv"):
            header = (template / path.name).read_text(encoding="utf-8").splitlines()[0]
            assert path.read_text(encoding="utf-8").splitlines()[0] == header, path


@pytest.mark.parametrize("folder", DEMO_SUBMISSIONS, ids=lambda p: p.name)
def test_demo_submission_passes_the_check(folder: Path) -> None:
    checked = _checked(folder)
    titles = _iati_titles()
    assert [(p.sheet, p.row, p.rule, p.message) for p in checked.problems] == []
    # an activity marked as in IATI is one of the demo's, under its IATI title
    activities = folder / "activities.csv"
    for row in _csv_rows(activities) if activities.exists() else []:
        if row["in_iati"] == "yes":
            assert titles[row["activity_id"]] == row["title"]


def test_demo_readme_counts_the_rows_of_each_submission() -> None:
    table = markdown_table(_readme(), "## Submissions")
    assert sorted(row["Folder"] for row in table) == [p.name for p in DEMO_SUBMISSIONS]
    counts = {
        "priorities": "cd_priorities.csv",
        "results": "results.csv",
        "activities": "activities.csv",
        "declarations": "declarations.csv",
    }
    for row in table:
        folder = DEMO / "submissions" / row["Folder"]
        said = dict(
            (name, int(number))
            for number, name in (part.split() for part in row["Rows"].split(", "))
        )
        assert said == {
            name: len(_csv_rows(folder / file))
            for name, file in counts.items()
            if (folder / file).exists()
        }
        who = _csv_rows(folder / "metadata.csv")[0]
        assert (who.get("country_code") or who["partner_org_ref"]) in row["Type"]
        assert who["reporting_period"] in row["Type"]


def test_a_partner_activity_not_in_iati_keeps_its_sector_money_and_declaration() -> None:
    tables = harmonise_submission(
        _checked(DEMO / "submissions" / "demo-skills-trust-2025"),
        source_file="demo-skills-trust-2025.zip",
        sha256="0" * 64,
        size=1,
        uri="inbox:demo-skills-trust-2025.zip",
        cd_sectors=frozenset(load_settings().cd_rules.cd_sectors),
        codelists=load_codelists(DEMO_CODELISTS),
    ).tables
    academy = "GB-DEMO-2002:GH-PFM-ACADEMY"
    sectors = tables["activity_sectors"]
    assert sectors[["activity_id", "vocabulary", "code", "code_name", "share"]].values.tolist() == [
        [academy, "1", "15111", "Public finance management (PFM)", 1.0]
    ]
    assert sectors["is_cd_sector"].tolist() == [True]
    money = tables["transactions"]
    assert money[["activity_id", "transaction_type", "value", "currency"]].values.tolist() == [
        [academy, "3", 300000.0, "USD"]
    ]
    assert str(money["transaction_date"].iloc[0])[:10] == "2025-12-31"  # the period's end
    declared = tables["partner_declarations"].set_index("activity_id")
    assert declared.loc[academy, "priority_ids"] == "GH-CD-1"
    assert bool(declared.loc[academy, "parallel_piu"]) is True
    assert len(declared) == 4
