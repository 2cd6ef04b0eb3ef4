"""Property-based tests (hypothesis) of the IATI harmoniser and the release writers.

A strategy builds IATI 2.03 ``<iati-activities>`` files with lxml (so every text is
escaped) from the elements the harmoniser reads, with codes mostly from the real
codelists in ../shared/fixtures/codelists and sometimes arbitrary text, and narratives of
any XML-legal Unicode. Three properties:

1. every such file harmonises without an exception, and every activity, transaction and
   budget is accounted for: in its table, or quarantined with an error (never both, never
   lost), with ``n_records = n_accepted + n_quarantined`` in ``sources``;
2. amounts split across countries and sectors (the activity shares the harmoniser
   computes, then the headline, alignment and duplication splits of transactions and
   budgets) never give a part, or a total of parts, larger than the original amount, in
   the original currency and in USD;
3. every harmonised table written by the release writers (CSV and Parquet, and the
   harmonised store's Parquet) reads back with the schema's types value for value.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from assets.harmonise.schema import ACTUAL_DISBURSEMENT_TYPES, field_types, table_frame
from assets.harmonise.store import read_table, write_table
from assets.iati.codelists import Codelists, load_codelists
from assets.iati.conformance import IatiSchemas
from assets.iati.harmonise import (
    IATI_TABLES,
    HarmonisedFile,
    HarmoniseOptions,
    combine,
    harmonise_file,
)
from assets.iati.rates import ExchangeRates, load_exchange_rates
from assets.metrics.stage import add_metrics
from assets.settings import load_settings
from assets.warehouse import ROW, register_frames, set_up
from publish import headline
from publish.files import FORMULA_START
from tests.conftest import CODELISTS, IATI_SCHEMAS, RATES
from tests.metrics_run import register
from tests.unit.test_release_files import canonical_positions, release_files

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: Relative tolerance of the money comparisons (float rounding of shares and rates).
REL_TOL = 1e-6


# -- reference data, loaded once ------------------------------------------------------------
@cache
def codelists() -> Codelists:
    return load_codelists(CODELISTS)


@cache
def rates() -> ExchangeRates:
    return load_exchange_rates(
        [RATES / "imf-monthly-subset.csv", RATES / "monthly-average-sdr-per-unit.json"]
    )


@cache
def options(with_schemas: bool = False) -> HarmoniseOptions:
    return HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=rates(),
        codelists=codelists(),
        schemas=IatiSchemas.from_dir(IATI_SCHEMAS) if with_schemas else None,
    )


@cache
def codes(name: str) -> tuple[str, ...]:
    return tuple(sorted(codelists().codes(name)))


# -- text and values ---------------------------------------------------------------------------
#: Characters XML 1.0 allows (no other control characters, no surrogates, no U+FFFE/FFFF).
XML_CHAR = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF),
    st.sampled_from("\t\n\r"),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFD),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
)
AWKWARD_TEXT = (
    '=HYPERLINK("http://example.org")',
    "+1 (555) 0100",
    "-5 to 10",
    "@SUM(A1)",
    "\tindented",
    "\rreturn first",
    'a "quoted" word, and a comma',
    "two\nlines\r\nand a CRLF",
    "Bogotá, D.C. — año; Ñandú Ærø",
    "Renforcement des capacités",
    "🌍🚀 emoji 👩🏽‍🏫 and a flag 🇰🇪",
    "'already quoted",
    "'=quoted formula",
    "capacity building and technical assistance (training)",
    "NA",
    "NaN",
    "null",
    "None",
    "true",
    "0",
    "",
    "   ",
    "Ω" * 600 + " very long text " + "é" * 2500,
)
TEXT = st.one_of(st.sampled_from(AWKWARD_TEXT), st.text(XML_CHAR, max_size=25))
LANGUAGES = st.one_of(
    st.none(),
    st.sampled_from(["en", "fr", "es", "pt", "de", "EN", "fr-CA", ""]),
    st.text(XML_CHAR, max_size=3),
)


@st.composite
def mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], unusual: st.SearchStrategy[Any]) -> Any:
    """``usual`` eight times in ten, else ``unusual`` (shrinking goes to ``usual``)."""
    return draw(usual if draw(st.integers(0, 9)) < 8 else unusual)


def decimal_text(low: int, high: int, places: int = 2) -> st.SearchStrategy[str]:
    """xsd:decimal text (no exponent)."""
    return st.decimals(
        min_value=low, max_value=high, places=places, allow_nan=False, allow_infinity=False
    ).map(lambda d: format(d, "f"))


def padded(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Values with the surrounding whitespace publishers leave in."""
    return st.builds(
        lambda before, value, after: before + value + after,
        st.sampled_from(["", "", " ", "\n  "]),
        values,
        st.sampled_from(["", "", " ", "\n"]),
    )


AMOUNT = st.one_of(
    padded(decimal_text(-(10**9), 10**9)),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["0", "+250.5", ".5", "1e5", "1E-2"]),
)
NOT_A_NUMBER = st.sampled_from(["12,000", "abc", "1 000", "$5", "--1", "1e", "∞"])
PERCENTAGE = st.one_of(
    st.none(),
    st.sampled_from(["100", "50", "33.33", "25", "12.5", "0"]),
    decimal_text(0, 100),
    # outside 0..100: xsd:decimal admits it, the documentation says it must not happen
    decimal_text(-100, 1000, places=3),
    st.sampled_from(["sixty", "50%", "", " ", "1e2"]),
)
DATE = mostly(
    # mostly where the exchange rates are (1994 to April 2025)
    st.dates(min_value=dt.date(1994, 1, 1), max_value=dt.date(2025, 4, 30)).map(dt.date.isoformat),
    st.one_of(
        st.dates().map(dt.date.isoformat),
        st.sampled_from(["2020-02-30", "2021-13-01", "yesterday", "", "2020-01-01T10:00:00Z"]),
    ),
)
DATETIME = st.one_of(
    st.datetimes(min_value=dt.datetime(1990, 1, 1), timezones=st.sampled_from([None, dt.UTC])).map(
        lambda d: d.isoformat()
    ),
    st.sampled_from(["2024-03-01T12:00:00.123456789+02:00", "2024-03-01", "soon", ""]),
)
BOOLEAN = st.sampled_from(["0", "1", "true", "false", "TRUE", "yes", ""])


@st.composite
def code(draw: st.DrawFn, codelist: str | Sequence[str], arbitrary: int = 2) -> str:
    """A code of the real codelist (or of the given codes), sometimes arbitrary text."""
    real = codes(codelist) if isinstance(codelist, str) else tuple(codelist)
    if draw(st.integers(0, 9)) < arbitrary:
        return draw(TEXT)
    return draw(st.sampled_from(real))


# -- building the file -----------------------------------------------------------------------
def sub(parent: etree._Element, tag: str, **attributes: str | None) -> etree._Element:
    """A child element; attributes given as None are left out."""
    node = etree.SubElement(parent, tag)
    for name, value in attributes.items():
        if value is not None:
            node.set(XML_LANG if name == "lang" else name.replace("_", "-"), value)
    return node


@st.composite
def narratives(draw: st.DrawFn, parent: etree._Element, most: int = 3) -> None:
    for _ in range(draw(st.integers(0, most))):
        sub(parent, "narrative", lang=draw(LANGUAGES)).text = draw(TEXT)


@st.composite
def maybe(draw: st.DrawFn, values: st.SearchStrategy[str]) -> str | None:
    return draw(st.one_of(st.none(), values))


@dataclass
class ActivityFacts:
    """What the generator put in one activity, to check the harmoniser's account of it."""

    pointer: str
    identifier: str | None  # the iati-identifier text as written (None: no element)
    transactions: list[str] = field(default_factory=list)  # pointers
    transaction_values: dict[str, str] = field(default_factory=dict)  # pointer -> raw value
    budgets: list[str] = field(default_factory=list)  # pointers

    @property
    def activity_id(self) -> str | None:
        """The identifier as the harmoniser defines it: whitespace runs made one space,
        trimmed; empty is no identifier."""
        if self.identifier is None:
            return None
        return " ".join(self.identifier.split()) or None


@dataclass
class GeneratedFile:
    xml: str  # shown by hypothesis for a falsifying example
    activities: list[ActivityFacts]

    def write(self, path: Path) -> Path:
        path.write_text(self.xml, encoding="utf-8")
        return path


IDENTIFIER = st.one_of(
    st.sampled_from(["XM-DAC-41301-1", "XM-DAC-41301-2", " XM-DAC-41301-1\n", "GB-1-2003"]),
    st.sampled_from(["", "   ", '=1+1 "x", y', "AA-ÆØÅ-🌍"]),
    st.text(XML_CHAR, min_size=1, max_size=12),
    st.none(),
)
ROLES = ("1", "2", "3", "4", "Funding", "implementing", "5")
VOCABULARIES = ("1", "1", "2", "99", "DAC", "DAC-3", "RO")
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "XDR", "KES", "usd")
#: Disbursements and expenditure (what the figures add up) more often than the others.
TRANSACTION_TYPES = ("3", "4", "3", "4", "2", "1", "11")


@st.composite
def activity(draw: st.DrawFn, position: int) -> tuple[etree._Element, ActivityFacts]:
    pointer = f"/iati-activities/iati-activity[{position}]"
    el = etree.Element("iati-activity")
    for name, values in (
        ("default-currency", mostly(code(CURRENCIES, arbitrary=1), code("Currency"))),
        ("humanitarian", BOOLEAN),
        ("hierarchy", st.sampled_from(["1", "2", "x"])),
        ("last-updated-datetime", DATETIME),
    ):
        if (value := draw(maybe(values))) is not None:
            el.set(name, value)
    if (lang := draw(LANGUAGES)) is not None:
        el.set(XML_LANG, lang)
    identifier = draw(IDENTIFIER)
    if identifier is not None:
        sub(el, "iati-identifier").text = identifier
    facts = ActivityFacts(pointer, identifier)

    if draw(st.booleans()):
        reporting = sub(
            el,
            "reporting-org",
            ref=draw(maybe(st.sampled_from(["XM-DAC-41301", "GB-GOV-1"]) | TEXT)),
            type=draw(maybe(code("OrganisationType"))),
            secondary_reporter=draw(maybe(BOOLEAN)),
        )
        draw(narratives(reporting))
    if draw(st.integers(0, 9)) > 0:
        draw(narratives(sub(el, "title")))
    for _ in range(draw(st.integers(0, 2))):
        description = sub(el, "description", type=draw(maybe(st.sampled_from(["1", "2", "3"]))))
        draw(narratives(description))
    for _ in range(draw(st.integers(0, 3))):
        org = sub(
            el,
            "participating-org",
            role=draw(maybe(st.sampled_from(ROLES))),
            ref=draw(maybe(TEXT)),
            type=draw(maybe(code("OrganisationType"))),
            activity_id=draw(maybe(TEXT)),
        )
        draw(narratives(org, most=1))
    if draw(st.booleans()):
        sub(el, "activity-status", code=draw(code("ActivityStatus")))
    for _ in range(draw(st.integers(0, 4))):
        sub(el, "activity-date", type=draw(code("ActivityDateType", 1)), iso_date=draw(DATE))
    for _ in range(draw(st.integers(0, 4))):
        country_code = draw(code("Country"))
        if draw(st.integers(0, 9)) == 0:
            country_code = country_code.lower()
        sub(el, "recipient-country", code=country_code, percentage=draw(PERCENTAGE))
    for _ in range(draw(st.integers(0, 2))):
        sub(
            el,
            "recipient-region",
            code=draw(code("Region")),
            vocabulary=draw(maybe(code("RegionVocabulary"))),
            percentage=draw(PERCENTAGE),
        )
    for _ in range(draw(st.integers(0, 5))):
        vocabulary = draw(maybe(st.sampled_from(VOCABULARIES)))
        codelist = "SectorCategory" if vocabulary in {"2", "DAC-3"} else "Sector"
        sector = sub(
            el,
            "sector",
            vocabulary=vocabulary,
            code=draw(maybe(code(codelist))),
            percentage=draw(PERCENTAGE),
        )
        draw(narratives(sector, most=1))
    for tag, codelist in (
        ("default-flow-type", "FlowType"),
        ("default-finance-type", "FinanceType"),
        ("default-aid-type", "AidType"),
    ):
        if draw(st.booleans()):
            sub(el, tag, code=draw(code(codelist)), vocabulary=draw(maybe(st.just("1"))))
    for position_in_activity in range(1, draw(st.integers(0, 3)) + 1):
        budget = sub(
            el,
            "budget",
            type=draw(maybe(code("BudgetType"))),
            status=draw(maybe(code("BudgetStatus"))),
        )
        sub(budget, "period-start", iso_date=draw(DATE))
        sub(budget, "period-end", iso_date=draw(DATE))
        if draw(st.integers(0, 9)) > 0:
            value = sub(
                budget,
                "value",
                currency=draw(maybe(code(CURRENCIES))),
                value_date=draw(maybe(DATE)),
            )
            value.text = draw(mostly(AMOUNT, NOT_A_NUMBER))
        facts.budgets.append(f"{pointer}/budget[{position_in_activity}]")
    for position_in_activity in range(1, draw(st.integers(0, 5)) + 1):
        ref = f"{pointer}/transaction[{position_in_activity}]"
        transaction = sub(el, "transaction", humanitarian=draw(maybe(BOOLEAN)))
        # mostly one type and one value; sometimes none or two (quarantined as ambiguous)
        for _ in range(draw(st.sampled_from([1, 1, 1, 1, 1, 1, 1, 0, 2]))):
            kind = mostly(code(TRANSACTION_TYPES + codes("TransactionType")), st.none())
            sub(transaction, "transaction-type", code=draw(kind))
        if draw(st.integers(0, 4)) > 0:
            sub(transaction, "transaction-date", iso_date=draw(DATE))
        for _ in range(draw(st.sampled_from([1, 1, 1, 1, 1, 1, 1, 0, 2]))):
            value = sub(
                transaction,
                "value",
                currency=draw(maybe(code(CURRENCIES))),
                value_date=draw(maybe(DATE)),
            )
            value.text = draw(mostly(AMOUNT, NOT_A_NUMBER | st.just("")))
            facts.transaction_values[ref] = value.text
        if draw(st.booleans()):
            sub(transaction, "provider-org", ref=draw(TEXT), provider_activity_id=draw(TEXT))
        if draw(st.booleans()):
            sub(transaction, "receiver-org", ref=draw(TEXT), receiver_activity_id=draw(TEXT))
        if draw(st.booleans()):
            sub(transaction, "disbursement-channel", code=draw(code(["1", "2", "3", "4"])))
        if draw(st.booleans()):
            vocabulary = draw(maybe(st.sampled_from(VOCABULARIES)))
            sub(transaction, "sector", vocabulary=vocabulary, code=draw(code("Sector")))
        if draw(st.integers(0, 3)) == 0:
            sub(transaction, "recipient-country", code=draw(code("Country")))
        for tag, codelist in (
            ("flow-type", "FlowType"),
            ("finance-type", "FinanceType"),
            ("aid-type", "AidType"),
        ):
            if draw(st.integers(0, 3)) == 0:
                sub(transaction, tag, code=draw(code(codelist)))
        facts.transactions.append(ref)
    for _ in range(draw(st.integers(0, 1))):
        result = sub(el, "result", type=draw(code("ResultType")))
        draw(narratives(sub(result, "title"), most=1))
        for _ in range(draw(st.integers(0, 2))):
            indicator = sub(
                result,
                "indicator",
                measure=draw(maybe(st.sampled_from(["1", "2", "5"]))),
                ascending=draw(maybe(BOOLEAN)),
            )
            draw(narratives(sub(indicator, "title"), most=1))
            if draw(st.booleans()):
                sub(indicator, "reference", vocabulary="1", code=draw(TEXT))
            sub(indicator, "baseline", year=draw(maybe(st.sampled_from(["2020", "20x"]))))
            indicator[-1].set("value", draw(AMOUNT | TEXT))
            for _ in range(draw(st.integers(0, 2))):
                period = sub(indicator, "period")
                sub(period, "period-start", iso_date=draw(DATE))
                sub(period, "period-end", iso_date=draw(DATE))
                sub(period, "target", value=draw(maybe(AMOUNT | TEXT)))
                sub(period, "actual", value=draw(maybe(AMOUNT | TEXT)))
    if draw(st.integers(0, 4)) == 0:
        crs = sub(el, "crs-add")
        sub(crs, "other-flags", code="1", significance=draw(maybe(BOOLEAN)))
    return el, facts


@st.composite
def iati_files(draw: st.DrawFn, most: int = 3) -> GeneratedFile:
    root = etree.Element("iati-activities", version="2.03")
    if (lang := draw(LANGUAGES)) is not None:
        root.set(XML_LANG, lang)
    facts = []
    for position in range(1, draw(st.integers(1, most)) + 1):
        element, activity_facts = draw(activity(position))
        root.append(element)
        facts.append(activity_facts)
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
    return GeneratedFile(text, facts)


def harmonised(
    generated: GeneratedFile, folder: Path, with_schemas: bool = False
) -> HarmonisedFile:
    path = generated.write(folder / "generated.xml")
    return harmonise_file(path, options(with_schemas))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example (hypothesis runs a test many times with one fixture)."""
    return tmp_path_factory.mktemp("properties")


def under(ref: object, pointer: str) -> bool:
    """``ref`` is the element ``pointer`` or inside it."""
    return isinstance(ref, str) and (ref == pointer or ref.startswith(pointer + "/"))


def _show(generated: GeneratedFile) -> str:
    return generated.xml if len(generated.xml) < 6000 else generated.xml[:6000] + " ..."


# -- 1. any well-formed activity harmonises, and nothing is lost ---------------------------------
@settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(generated=iati_files())
def test_every_generated_activity_is_accepted_or_quarantined_once(
    generated: GeneratedFile, folder: Path
) -> None:
    result = harmonised(generated, folder, with_schemas=True)  # never raises
    tables = result.tables
    shown = _show(generated)
    source = result.source
    n = len(generated.activities)
    assert source["n_records"] == n, shown
    assert source["n_records"] == source["n_accepted"] + source["n_quarantined"], shown

    # which activities the harmoniser must accept: the first of each identifier
    first: dict[str, ActivityFacts] = {}
    refused: dict[str, str] = {}  # pointer -> rule
    for facts in generated.activities:
        activity_id = facts.activity_id
        if activity_id is None:
            refused[facts.pointer] = "missing_identifier"
        elif activity_id in first:
            refused[facts.pointer] = "duplicate_identifier"
        else:
            first[activity_id] = facts
    activities = tables["activities"]
    assert sorted(activities["activity_id"]) == sorted(first), shown
    assert source["n_accepted"] == len(first), shown
    assert source["n_quarantined"] == len(refused), shown
    assert (source["status"] == "rejected") == (not first), shown
    for row in activities.itertuples(index=False):
        assert row.source_ref == first[row.activity_id].pointer, shown

    quarantine = tables["quarantine"]
    errors = quarantine[quarantine["severity"] == "error"]
    activity_errors = errors[errors["table"] == "activities"]
    assert dict(zip(activity_errors["source_ref"], activity_errors["rule"], strict=True)) == (
        refused
    ), shown
    assert len(activity_errors) == len(refused), shown

    # no table has a row of a refused activity; every row is under its activity's element
    for table in IATI_TABLES:
        frame = tables[table]
        for activity_id, ref in zip(frame["activity_id"], frame["source_ref"], strict=True):
            assert not any(under(ref, pointer) for pointer in refused), (table, ref, shown)
            assert under(ref, first[activity_id].pointer), (table, activity_id, ref, shown)

    # every transaction and budget of an accepted activity: one row, or one error, not both
    transactions = tables["transactions"]
    budgets = tables["budgets"]
    rows = {
        "transactions": list(transactions["source_ref"]),
        "budgets": list(budgets["source_ref"]),
    }
    error_refs = {t: list(errors.loc[errors["table"] == t, "source_ref"]) for t in rows}
    values = dict(zip(transactions["source_ref"], transactions["value"], strict=True))
    for facts in first.values():
        for table, pointers in (
            ("transactions", facts.transactions),
            ("budgets", facts.budgets),
        ):
            for pointer in pointers:
                found = rows[table].count(pointer), error_refs[table].count(pointer)
                assert found in {(1, 0), (0, 1)}, (table, pointer, found, shown)
        for pointer, raw in facts.transaction_values.items():
            if pointer in values:  # accepted: the published figure is the XML's number
                expected = float(Decimal(" ".join(raw.split())))
                assert values[pointer] == expected, (pointer, raw, values[pointer], shown)
    parts_refused = sum(len(refs) for refs in error_refs.values())
    assert (source["status"] == "ok") == (not refused and not parts_refused), shown

    # the conformance check ran to the end (it turns its own crash into a finding)
    messages = tables["conformance"]["message"].dropna()
    assert not messages.str.contains("internal error").any(), (list(messages), shown)


# -- 2. split amounts never exceed the original ----------------------------------------------
def metric_splits(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The metrics stage's splits of amounts (its work tables): each activity's country
    shares (alignment), each transaction's country shares (``row``: its place in the
    table) and each activity's duplication cells (country x CD sector)."""
    con = duckdb.connect()
    try:
        set_up(con)
        register(con, tables)
        add_metrics(con, load_settings().metrics, keep_work_tables=True)
        return {
            "countries": con.sql("SELECT activity, share FROM m_al_countries ORDER BY pos").df(),
            "allocation": con.sql(
                f"SELECT {ROW} AS row, share FROM m_al_allocation ORDER BY {ROW}, pos"
            ).df(),
            "cells": con.sql(
                "SELECT activity_id, weight FROM m_du_member WHERE sector_code <> '' ORDER BY pos"
            ).df(),
        }
    finally:
        con.close()


def _finite(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _not_more(parts: Sequence[float], original: float) -> bool:
    """Each part, and the parts' total, is no larger than the original (in size)."""
    limit = abs(original) * (1 + REL_TOL) + 1e-9
    return all(abs(p) <= limit for p in parts) and abs(math.fsum(parts)) <= limit


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(generated=iati_files())
def test_split_amounts_never_exceed_the_original(generated: GeneratedFile, folder: Path) -> None:
    tables = combine([harmonised(generated, folder)])  # as the metrics stage gets them
    shown = _show(generated)

    # the harmoniser's shares: 0..1, summing to 1 per activity (countries and regions
    # together) and per activity and vocabulary (sectors)
    recipients = pd.concat(
        [tables["activity_countries"], tables["activity_regions"]], ignore_index=True
    )
    for table, frame, group in (
        ("activity_countries + activity_regions", recipients, ["activity_id"]),
        ("activity_sectors", tables["activity_sectors"], ["activity_id", "vocabulary"]),
    ):
        shares = frame["share"].astype("float64")
        assert shares.notna().all(), (table, frame.to_dict("records"), shown)
        assert shares.between(0.0, 1.0).all(), (table, frame.to_dict("records"), shown)
        sums = shares.groupby([frame[c] for c in group]).sum()
        assert ((sums - 1.0).abs() < 1e-9).all(), (table, sums.to_dict(), shown)

    # every split of an activity's amounts, as the code that makes it weighs them:
    # alignment metrics' country shares (equal where one is missing), each sector
    # vocabulary's shares, and duplication metrics' cells (country x CD sector, CD only)
    weights = metric_splits(tables)
    cells = weights["cells"]
    assert cells["weight"].astype("float64").between(0.0, 1.0 + 1e-9).all(), (
        cells.to_dict("records"),
        shown,
    )
    splits: dict[str, dict[str, list[float]]] = {}
    for activity_id, shares in weights["countries"].groupby("activity", sort=False)["share"]:
        splits.setdefault(activity_id, {})["countries"] = list(shares)
    sectors = tables["activity_sectors"]
    for (activity_id, vocabulary), shares in sectors.groupby(["activity_id", "vocabulary"])[
        "share"
    ]:
        splits.setdefault(activity_id, {})[f"sectors {vocabulary}"] = list(shares)
    for activity_id, cell_weights in cells.groupby("activity_id")["weight"]:
        splits.setdefault(activity_id, {})["duplication cells"] = list(cell_weights)
    allocation = weights["allocation"].groupby("row")["share"].agg(list).to_dict()

    transactions = tables["transactions"]
    for table, frame in (("transactions", transactions), ("budgets", tables["budgets"])):
        for position, row in enumerate(frame.itertuples(index=False)):
            named = dict(splits.get(row.activity_id, {}))
            if table == "transactions":  # its own country, else the activity's shares
                named["countries"] = allocation.get(position, [])
            for amount in (_finite(row.value), _finite(row.value_usd)):  # currency, USD
                if amount is None:
                    continue
                for name, shares in named.items():
                    parts = [amount * share for share in shares]
                    assert _not_more(parts, amount), (row.source_ref, name, amount, parts, shown)

    # headline figures: per activity, the country parts of its counted disbursements are
    # no more (in size) than those disbursements
    with duckdb.connect() as con:
        set_up(con)
        money_tables = {t: tables[t] for t in ("transactions", "activities", "activity_countries")}
        register_frames(con, money_tables)
        money = headline.disbursements(con, list(money_tables)).df()
    counted = transactions[
        transactions["transaction_type"].isin(ACTUAL_DISBURSEMENT_TYPES)
        & transactions["counts_toward_totals"].fillna(False).astype(bool)
        & transactions["value_usd"].notna()
    ]
    original = counted["value_usd"].astype("float64").abs().groupby(counted["activity_id"]).sum()
    split = money["usd"].astype("float64").abs().groupby(money["activity_id"]).sum()
    for activity_id, total in split.items():
        limit = original.get(activity_id, 0.0) * (1 + REL_TOL) + 1e-9
        assert total <= limit, (activity_id, total, original.get(activity_id), shown)


# -- 3. CSV and Parquet round trips ------------------------------------------------------------
#: The CSV rules for text (publish/files.py and docs/data-dictionary.md), stated here because
#: they are the only places where a CSV cell differs from the value:
#:
#: * a text that starts like a spreadsheet formula (=, +, -, @, tab, carriage return) is
#:   written with a leading apostrophe, every other text as it is (so "'=x" in the CSV may
#:   be the text "=x" or "'=x"; the Parquet file tells them apart);
#: * an empty cell is a missing value, so an empty text reads back as missing. Only the
#:   offending value of a conformance finding or a quarantine row may be an empty text
#:   (``code=""``, as found in the file); anywhere else an empty text would be lost in the
#:   CSV, and the test says so.
FORMULA = re.compile(FORMULA_START)
EMPTY_TEXT_KEPT = frozenset({("conformance", "value"), ("quarantine", "value")})


def csv_text(value: str) -> str:
    """What the CSV file holds for a text value, by the rules above."""
    return "'" + value if FORMULA.match(value) else value


def _missing(value: Any) -> bool:
    """The project's empty value: None, NA, NaN, NaT (an empty CSV cell)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def read_cell(kind: str, cell: str) -> Any:
    """A CSV cell read back with the schema's type (text: the cell itself; see csv_text)."""
    if cell == "":
        return None  # an empty cell is a missing value
    if kind == "boolean":
        return {"true": True, "false": False}[cell]
    if kind in {"integer", "year"}:
        return int(cell)
    if kind == "number":
        return float(cell)
    if kind == "date":
        return dt.date.fromisoformat(cell)
    if kind == "datetime":
        return pd.Timestamp(cell)
    return cell


def expected_cell(kind: str, value: Any) -> Any:
    """What read_cell must give back for a typed value (None: missing)."""
    if _missing(value) or (kind == "string" and value == ""):
        return None
    if kind == "boolean":
        return bool(value)
    if kind in {"integer", "year"}:
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "datetime":
        return pd.Timestamp(value)
    if kind == "date":
        return value
    return csv_text(str(value))


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type (None only equals None)."""
    return bool(type(a) is type(b) and a == b)


def csv_rows(data: bytes) -> list[tuple[str, ...]]:
    """The CSV file read back as the project's tests do (every cell as text, no NA guessing)."""
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    return [tuple(frame.columns), *frame.itertuples(index=False, name=None)]


@settings(
    max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(generated=iati_files())
def test_every_table_round_trips_through_csv_and_parquet(
    generated: GeneratedFile, folder: Path
) -> None:
    result = harmonised(generated, folder)
    combined = combine([result])  # the tables as the release gets them
    shown = _show(generated)
    for table in result.tables:  # every table an IATI file fills
        frame = combined[table]
        types = field_types(table)
        typed = table_frame(table, frame)
        ordered = typed.take(canonical_positions(table, typed)).reset_index(drop=True)
        csv_data, parquet = release_files(table, frame, folder / "release")

        # Parquet (release file and harmonised store): every value exactly, types too
        pd.testing.assert_frame_equal(read_table(table, parquet), ordered)
        stored = read_table(table, write_table(table, frame, folder / f"{table}.parquet"))
        pd.testing.assert_frame_equal(stored, frame)

        # CSV: the header, then each row as the cell rules say, read back with the types
        rows = csv_rows(csv_data)
        assert rows[0] == tuple(types), table
        assert len(rows) - 1 == len(ordered), (table, shown)
        columns = [ordered[name].tolist() for name in types]
        for index, row in enumerate(rows[1:]):
            for (name, kind), column, cell in zip(types.items(), columns, row, strict=True):
                value = column[index]
                back = read_cell(kind, cell)
                assert same(back, expected_cell(kind, value)), (table, name, value, cell, shown)
                if kind == "string" and isinstance(value, str) and value == "":
                    assert (table, name) in EMPTY_TEXT_KEPT, (table, name, "empty text", shown)


# -- the checkers themselves (a property whose checker is wrong proves nothing) ----------------
def test_the_csv_text_rule_is_the_writers(tmp_path: Path) -> None:
    frame = table_frame(
        "quarantine",
        [
            {"source_file": "f", "source_ref": ref, "table": "t", "rule": "r", "message": "'=x"}
            for ref in ["=1", "+a", "-", "@x", "\tt", "\rr", "'=y", "a=b", "é"]
        ],
    )
    rows = csv_rows(release_files("quarantine", frame, tmp_path)[0])
    column = rows[0].index("source_ref")
    assert sorted(row[column] for row in rows[1:]) == sorted(
        ["'=1", "'+a", "'-", "'@x", "'\tt", "'\rr", "'=y", "a=b", "é"]
    )
    assert sorted(row[column] for row in rows[1:]) == sorted(map(csv_text, frame["source_ref"]))
    assert {row[rows[0].index("message")] for row in rows[1:]} == {"'=x"}


def test_the_checkers_catch_what_they_are_for() -> None:
    facts = ActivityFacts("/iati-activities/iati-activity[1]", " XM\n-1 ")
    assert facts.activity_id == "XM -1"
    assert ActivityFacts("/", " \t").activity_id is None
    assert under("/iati-activities/iati-activity[1]/transaction[2]", facts.pointer)
    assert not under("/iati-activities/iati-activity[10]/transaction[2]", facts.pointer)
    assert not _not_more([60.0, 50.0], 100.0)  # parts add up to more
    assert not _not_more([-66.7, 166.7], 100.0)  # one part is more
    assert _not_more([-60.0, -40.0], -100.0)
    assert not same(None, "")
    assert not same(1, 1.0)
    assert same(expected_cell("string", "=1"), "'=1")


# -- regressions found by the properties above -------------------------------------------------
def test_regression_a_negative_percentage_never_gives_a_share_above_one(folder: Path) -> None:
    # xsd:decimal admits -20; it made GH's share 50 / (50 - 20) = 1.67 and KE's -0.67, so GH
    # got 167 of a 100 disbursement (assets/iati/harmonise.py, _ActivityBuilder._shares)
    activity_xml = (
        '<iati-activities version="2.03"><iati-activity default-currency="USD">'
        "<iati-identifier>XM-1</iati-identifier>"
        '<recipient-country code="KE" percentage="-20"/>'
        '<recipient-country code="GH" percentage="50"/>'
        '<sector code="11110"/><sector code="11120" percentage="-0.001"/>'
        "</iati-activity></iati-activities>"
    )
    path = folder / "negative-percentage.xml"
    path.write_text(activity_xml, encoding="utf-8")
    result = harmonise_file(path, options())
    countries = result.tables["activity_countries"]
    assert dict(zip(countries["country_code"], countries["share"], strict=True)) == {
        "KE": 0.0,
        "GH": 1.0,
    }
    assert list(countries["percentage"]) == [-20.0, 50.0]  # as published
    sectors = result.tables["activity_sectors"]
    assert dict(zip(sectors["code"], sectors["share"], strict=True)) == {
        "11110": 1.0,
        "11120": 0.0,
    }
    quarantine = result.tables["quarantine"]
    negative = quarantine[quarantine["rule"] == "negative_percentage"]
    assert list(negative["source_ref"]) == [
        "/iati-activities/iati-activity[1]/recipient-country[1]",
        "/iati-activities/iati-activity[1]/sector[2]",
    ]
    assert set(negative["severity"]) == {"warning"}


def test_regression_an_empty_xml_lang_is_no_title_language(folder: Path) -> None:
    # xml:lang="" on the root gave title_language "" (assets/iati/harmonise.py,
    # _FileHarmoniser.pick): an empty text, which the CSV file cannot tell from missing
    path = folder / "empty-lang.xml"
    path.write_text(
        '<iati-activities version="2.03" xml:lang=""><iati-activity>'
        "<iati-identifier>XM-1</iati-identifier><title><narrative>=Water</narrative></title>"
        "</iati-activity></iati-activities>",
        encoding="utf-8",
    )
    activities = harmonise_file(path, options()).tables["activities"]
    assert activities["title"].tolist() == ["=Water"]
    assert activities["title_language"].isna().all()
    csv_data = release_files("activities", activities, folder)[0]
    row = csv_rows(csv_data)[1]
    assert row[1:4] == ("'=Water", "", "")  # title (formula-safe), description, language


@pytest.mark.parametrize("table", ["activities", "sources"])
def test_regression_an_empty_table_with_a_datetime_field_is_written(
    table: str, tmp_path: Path
) -> None:
    # an empty datetime column raised TypeError in publish/files.py column_cells, so a
    # release (or content_hash) with no accepted activity could not be written
    csv_data, parquet = release_files(table, table_frame(table, []), tmp_path)
    assert csv_data == (",".join(field_types(table)) + "\r\n").encode()
    assert read_table(table, parquet).empty
