"""IATI activity files -> extracted tables: the values as published, once per file (pure).

The first half of harmonising (extract, then transform in DuckDB:
:mod:`assets.iati.transform`). One streaming pass over a file reads what the
harmonised tables need into columns and writes one Parquet file per table that has
rows (``file.parquet``, the file's summary, lists them) into a folder named after the
file's sha256 and :data:`EXTRACTOR_VERSION` (:func:`extract_dir`). Nothing here
depends on reference data or on ``config/``: codes are kept as published (1.0x
letter codes translated to their 2.0x equivalents), numbers and dates are read
(what cannot be read is quarantined with its place, as it always was), narratives
are kept with their languages (the transform picks one by
``iati.preferred_languages``), percentages as given (the transform merges repeated
codes and rebases shares), and money in its own currency (the transform converts
it). So a new month of exchange rates, a codelist update or a change of the CD
rules never parses a file again.

Every record that is not accepted goes to the extracted ``quarantine`` with the
rule it broke and where; a file that cannot be read at all is ``rejected`` in
``file.parquet`` with the reason and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from lxml import etree

from assets.hashing import file_digest
from assets.iati import codes
from assets.iati.classify import normalise_text
from assets.iati.codelists import Codelists
from assets.iati.conformance import (
    CODE_SCHEMA,
    CONFORMANCE_FIELDS,
    CodeReader,
    Finding,
    IatiSchemas,
    check_schema,
    code_version,
    codelist_findings,
)
from assets.iati.xml import ActivityElement, FileHeader, NotIatiActivities, iter_activities

#: Bumped whenever what the extractor writes changes: every file is extracted again.
EXTRACTOR_VERSION = 6

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_HIERARCHY = re.compile(r"[0-9]{1,18}")
_YEAR = re.compile(r"\d{4}")

NARRATIVES = pa.list_(pa.struct([("lang", pa.string()), ("text", pa.string())]))
_STR = pa.string()
_INT = pa.int64()
_NUM = pa.float64()
_BOOL = pa.bool_()
_DATE32 = pa.date32()
_UTC = pa.timestamp("us", tz="UTC")

#: The extracted tables and their columns (name, Arrow type). Rows keep the order in
#: which the file has them; ``source_ref`` is the place in the file.
EXTRACT_SCHEMAS: dict[str, pa.Schema] = {
    "file": pa.schema(
        [
            ("sha256", _STR),
            ("bytes", _INT),
            ("extractor_version", _INT),
            ("iati_version", _STR),
            ("default_language", _STR),
            ("rejected_rule", _STR),
            ("rejected_message", _STR),
            ("rejected_line", _INT),
            ("n_records", _INT),
            ("n_accepted", _INT),
            ("n_quarantined", _INT),
            ("rejected_parts", _INT),
            # the root was an IATI activity file's, and the version its codes are checked as
            ("code_root", _BOOL),
            ("code_version", _STR),
            # the tables with rows: only these are written (an empty table has no file)
            ("tables", pa.list_(_STR)),
        ]
    ),
    "activities": pa.schema(
        [
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("line", _INT),
            ("lang", _STR),
            ("title", NARRATIVES),
            ("description", NARRATIVES),
            ("reporting_org_ref", _STR),
            ("reporting_org_name", NARRATIVES),
            ("reporting_org_type", _STR),
            ("secondary_reporter", _BOOL),
            ("hierarchy", _INT),
            ("activity_status", _STR),
            ("start_planned", _DATE32),
            ("start_actual", _DATE32),
            ("end_planned", _DATE32),
            ("end_actual", _DATE32),
            ("default_currency", _STR),
            ("humanitarian", _BOOL),
            ("default_aid_type", _STR),
            ("default_finance_type", _STR),
            ("default_flow_type", _STR),
            ("last_updated", _UTC),
            ("ftc_flag", _BOOL),
            ("cd_text", _STR),
        ]
    ),
    "countries": pa.schema(
        [
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("line", _INT),
            ("country_code", _STR),
            ("percentage", _NUM),
        ]
    ),
    "regions": pa.schema(
        [
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("line", _INT),
            ("vocabulary", _STR),
            ("code", _STR),
            ("percentage", _NUM),
        ]
    ),
    "sectors": pa.schema(
        [
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("line", _INT),
            ("vocabulary", _STR),
            ("code", _STR),
            ("names", NARRATIVES),
            ("percentage", _NUM),
        ]
    ),
    "participating_orgs": pa.schema(
        [
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("position", _INT),
            ("role", _STR),
            ("org_ref", _STR),
            ("org_name", NARRATIVES),
            ("org_type", _STR),
            ("org_activity_id", _STR),
        ]
    ),
    "transactions": pa.schema(
        [
            ("transaction_id", _STR),
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("line", _INT),
            ("transaction_type", _STR),
            ("transaction_date", _DATE32),
            ("value", _NUM),
            ("currency", _STR),
            ("value_date", _DATE32),
            ("provider_org_ref", _STR),
            ("provider_activity_id", _STR),
            ("receiver_org_ref", _STR),
            ("receiver_activity_id", _STR),
            ("aid_type", _STR),
            ("finance_type", _STR),
            ("flow_type", _STR),
            ("disbursement_channel", _STR),
            ("sector_code", _STR),
            ("recipient_country", _STR),
            ("recipient_region", _STR),
            ("recipient_region_vocabulary", _STR),
            ("humanitarian", _BOOL),
            ("counts_toward_totals", _BOOL),
            ("exclusion_reason", _STR),
        ]
    ),
    # the sectors (every vocabulary), recipient countries and recipient regions given on
    # accepted transactions: the transform derives activity shares from them when the
    # activity gives none of its own
    "transaction_splits": pa.schema(
        [
            ("activity_id", _STR),
            ("transaction_id", _STR),
            # "sector", "country" or "region"
            ("dimension", _STR),
            ("vocabulary", _STR),
            ("code", _STR),
        ]
    ),
    "budgets": pa.schema(
        [
            ("budget_id", _STR),
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("line", _INT),
            ("budget_type", _STR),
            ("budget_status", _STR),
            ("period_start", _DATE32),
            ("period_end", _DATE32),
            ("value", _NUM),
            ("currency", _STR),
            ("value_date", _DATE32),
        ]
    ),
    "results": pa.schema(
        [
            ("result_id", _STR),
            ("activity_id", _STR),
            ("source_ref", _STR),
            ("level", _STR),
            ("result_title", NARRATIVES),
            ("indicator_id", _STR),
            ("indicator_title", NARRATIVES),
            ("measure", _STR),
            ("ascending", _BOOL),
            ("reference_vocabulary", _STR),
            ("reference_code", _STR),
            ("reference_uri", _STR),
            ("baseline_year", _INT),
            ("baseline_value", _NUM),
            ("target_year", _INT),
            ("target_value", _NUM),
            ("period_start", _DATE32),
            ("period_end", _DATE32),
            ("actual_value", _NUM),
        ]
    ),
    "quarantine": pa.schema(
        [
            ("source_ref", _STR),
            ("table", _STR),
            ("field", _STR),
            ("rule", _STR),
            ("value", _STR),
            ("message", _STR),
            ("severity", _STR),
        ]
    ),
    # every coded attribute a codelist rule applies to (the transform checks them)
    "codes": CODE_SCHEMA,
}
#: The extracted tables of one file (``file`` is its one-row summary).
EXTRACT_TABLES = tuple(EXTRACT_SCHEMAS)
#: Written last: a folder with this file is complete.
DONE = "file.parquet"


def extract_dir(root: Path, sha256: str) -> Path:
    """Where the extracted tables of the file with this sha256 live (under ``root``)."""
    return root / f"v{EXTRACTOR_VERSION}" / sha256[:2] / sha256


def is_extracted(root: Path, sha256: str) -> bool:
    return (extract_dir(root, sha256) / DONE).exists()


def stable_id(*parts: object) -> str:
    """A short, stable identifier from the parts (hex of their sha256)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def transaction_ids(activity_id: str, refs: list[str | None]) -> list[str]:
    """The identifiers of an activity's transactions, given their ``ref`` attributes in
    document order: ``<activity_id>#ref:<ref>`` for a ref that no other transaction of the
    activity uses, else ``<activity_id>#<n>`` (n the transaction's 1-based position).
    Neither depends on a transaction's value, date or other content, so a changed
    transaction keeps its identifier; the activity in it makes it unique across files."""
    counts: dict[str, int] = {}
    for ref in refs:
        if ref:
            counts[ref] = counts.get(ref, 0) + 1
    return [
        f"{activity_id}#ref:{ref}" if ref and counts[ref] == 1 else f"{activity_id}#{position}"
        for position, ref in enumerate(refs, start=1)
    ]


Narratives = list[dict[str, str | None]]


class _Columns:
    """One extracted table being filled: its rows as tuples, turned into columns once."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows: list[tuple[Any, ...]] = []

    def add(self, *values: Any) -> None:
        self.rows.append(values)

    def table(self) -> pa.Table:
        if not self.rows:
            return self.schema.empty_table()
        columns = list(zip(*self.rows, strict=True))
        return pa.Table.from_arrays(
            [
                pa.array(column, type=field.type)
                for column, field in zip(columns, self.schema, strict=True)
            ],
            schema=self.schema,
        )


@dataclass(frozen=True)
class ExtractedFile:
    """What extracting one file gave: its summary row and where its tables are."""

    folder: Path
    summary: Mapping[str, Any]

    @property
    def rejected(self) -> bool:
        return self.summary.get("rejected_rule") is not None


class _FileExtractor:
    """The state of extracting one file: its columns, its quarantine, its counters."""

    def __init__(self) -> None:
        self.tables = {name: _Columns(EXTRACT_SCHEMAS[name]) for name in EXTRACT_TABLES}
        self.n_records = 0
        self.n_accepted = 0
        self.n_quarantined = 0
        self.rejected_parts = 0  # transactions and budgets not accepted
        self.header = FileHeader()
        self.seen_ids: dict[str, str] = {}
        #: Dates read so far (a file repeats the same few dates many times).
        self.dates: dict[str, object] = {}

    def problem(
        self,
        ref: str,
        table: str,
        rule: str,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        line: int | None = None,
        severity: str = "error",
    ) -> None:
        where = f"line {line}: " if line else ""
        self.tables["quarantine"].add(
            ref,
            table,
            field,
            rule,
            None if value is None else str(value)[:500],
            f"{where}{message}",
            severity,
        )

    def date(
        self, raw: str | None, ref: str, table: str, fieldname: str, line: int | None
    ) -> dt.date | None:
        if raw is None:
            return None
        known = self.dates.get(raw, _UNSEEN)
        if known is _UNSEEN:
            known = self.dates[raw] = _read_date(raw)
        if known is not _NOT_A_DATE:
            return known  # type: ignore[return-value]
        self.problem(
            ref,
            table,
            "invalid_date",
            f"{fieldname} {raw!r} is not a date (YYYY-MM-DD); left empty",
            field=fieldname,
            value=raw,
            line=line,
            severity="warning",
        )
        return None

    def number(
        self,
        raw: str | None,
        ref: str,
        table: str,
        fieldname: str,
        line: int | None,
        severity: str = "error",
    ) -> tuple[bool, float | None]:
        """(ok, value): empty is ok and None; text that is not a number is not ok."""
        if raw is None or not raw.strip():
            return True, None
        text = raw.strip()
        problem = "is not a number"
        if _NUMBER.match(text):
            value = float(text)  # correctly rounded, as the decimal text says
            if math.isfinite(value):
                return True, value
            problem = "is too large a number to hold"  # past 1.8e308: never infinity
        consequence = "record not accepted" if severity == "error" else "left empty"
        self.problem(
            ref,
            table,
            "not_a_number",
            f"{fieldname} {text!r} {problem}; {consequence}",
            field=fieldname,
            value=text,
            line=line,
            severity=severity,
        )
        return False, None

    def activity(self, item: ActivityElement) -> None:
        self.n_records += 1
        ref = item.pointer
        identifier = _text(_child(item.element, "iati-identifier"))
        if not identifier:
            self.n_quarantined += 1
            self.problem(
                ref,
                "activities",
                "missing_identifier",
                "the activity has no iati-identifier; activity not accepted",
                field="activity_id",
                line=item.line,
            )
            return
        if identifier in self.seen_ids:
            self.n_quarantined += 1
            self.problem(
                ref,
                "activities",
                "duplicate_identifier",
                f"iati-identifier {identifier!r} already used by {self.seen_ids[identifier]} "
                "in this file; this later occurrence is not accepted",
                field="activity_id",
                value=identifier,
                line=item.line,
            )
            return
        self.seen_ids[identifier] = ref
        _ActivityExtractor(self, item, identifier).extract()
        self.n_accepted += 1


class _ActivityExtractor:
    """The rows of every extracted table for one activity.

    A transaction or budget that cannot be read is quarantined on its own; the
    activity and its other rows still go through.
    """

    def __init__(self, file: _FileExtractor, item: ActivityElement, activity_id: str) -> None:
        self.file = file
        self.item = item
        self.element = item.element
        self.activity_id = activity_id
        self.ref = item.pointer
        self.tables = file.tables
        #: The activity's child elements by name: one pass over them, not one per name.
        self.kids = _grouped(item.element)

    def extract(self) -> None:
        f = self.file
        el = self.element
        kids = self.kids
        reporting = _first(kids, "reporting-org")
        title = _first(kids, "title")
        descriptions = kids.get("description", _NONE)
        general = [d for d in descriptions if (d.get("type") or "1") == "1"] or descriptions
        dates = self.activity_dates()
        secondary = (
            codes.boolean(reporting.get("secondary-reporter")) if reporting is not None else None
        )
        self.default_currency = (el.get("default-currency") or "").strip().upper() or None
        self.secondary = bool(secondary)
        self.humanitarian = codes.boolean(el.get("humanitarian"))
        self.defaults = {
            "aid_type": self.default_code("default-aid-type"),
            "finance_type": self.default_code("default-finance-type"),
            "flow_type": self.default_code("default-flow-type"),
        }
        hierarchy_raw = (el.get("hierarchy") or "").strip()
        # ASCII digits ("²".isdigit() too), few enough for the table's 64-bit integers
        hierarchy = int(hierarchy_raw) if _HIERARCHY.fullmatch(hierarchy_raw) else None
        if hierarchy_raw and hierarchy is None:
            f.problem(
                self.ref,
                "activities",
                "not_a_number",
                f"hierarchy {hierarchy_raw!r} is not a whole number (of at most 18 digits); "
                "left empty",
                field="hierarchy",
                value=hierarchy_raw,
                line=self.item.line,
                severity="warning",
            )
        status = _first(kids, "activity-status")

        self.countries()
        self.regions()
        self.sectors()
        self.participating_orgs()
        self.transactions()
        self.budgets()
        self.results()

        texts = [text for node in [title, *descriptions] for _, text in _texts(node)]
        raw_updated = el.get("last-updated-datetime")
        last_updated = _datetime(raw_updated)
        if raw_updated and raw_updated.strip() and last_updated is None:
            f.problem(
                self.ref,
                "activities",
                "invalid_date",
                f"last-updated-datetime {raw_updated!r} is not a date-time; left empty",
                field="last_updated",
                value=raw_updated,
                line=self.item.line,
                severity="warning",
            )
        self.tables["activities"].add(
            self.activity_id,
            self.ref,
            self.item.line,
            el.get(XML_LANG) or f.header.default_language,
            _narratives(title),
            _narratives(general[0]) if general else [],
            _attr(reporting, "ref"),
            _narratives(reporting),
            _attr(reporting, "type"),
            secondary,
            hierarchy,
            _attr(status, "code"),
            dates.get("1"),
            dates.get("2"),
            dates.get("3"),
            dates.get("4"),
            self.default_currency,
            self.humanitarian,
            self.defaults["aid_type"],
            self.defaults["finance_type"],
            self.defaults["flow_type"],
            last_updated,
            self.ftc_flag(),
            normalise_text(" \n ".join(texts)),
        )

    # -- parts -------------------------------------------------------------
    def default_code(self, name: str) -> str | None:
        for node in self.kids.get(name, _NONE):
            vocabulary = (node.get("vocabulary") or "1").strip()
            if vocabulary == "1":
                return _attr(node, "code") or _text(node)
        return None

    def activity_dates(self) -> dict[str, dt.date]:
        found: dict[str, dt.date] = {}
        for position, node in enumerate(self.kids.get("activity-date", _NONE), start=1):
            kind = codes.activity_date_type(node.get("type"))
            ref = f"{self.ref}/activity-date[{position}]"
            when = self.file.date(
                node.get("iso-date") or _text(node),
                ref,
                "activities",
                f"activity-date type {kind}",
                node.sourceline,
            )
            if kind and when and kind not in found:
                found[kind] = when
        return found

    def ftc_flag(self) -> bool:
        crs = _first(self.kids, "crs-add")
        if crs is None:
            return False
        for flag in _children(crs, "other-flags"):
            if (flag.get("code") or "").strip() == "1" and codes.boolean(
                flag.get("significance")
            ) in (True, None):
                return True
        return False

    def percentage(self, node: etree._Element, ref: str, table: str) -> float | None:
        """A country's or sector's percentage; one that is not a number is left empty."""
        _ok, value = self.file.number(
            node.get("percentage"), ref, table, "percentage", node.sourceline, severity="warning"
        )
        return value

    def countries(self) -> None:
        for position, node in enumerate(self.kids.get("recipient-country", _NONE), start=1):
            ref = f"{self.ref}/recipient-country[{position}]"
            code = (_attr(node, "code") or "").upper()
            if not re.fullmatch(r"[A-Z]{2}", code):
                self.file.problem(
                    ref,
                    "activity_countries",
                    "invalid_country_code",
                    f"recipient-country code {code!r} is not an ISO 3166-1 alpha-2 code; "
                    "country not recorded",
                    field="country_code",
                    value=code,
                    line=node.sourceline,
                    severity="warning",
                )
                continue
            percentage = self.percentage(node, ref, "activity_countries")
            self.tables["countries"].add(self.activity_id, ref, node.sourceline, code, percentage)

    def regions(self) -> None:
        for position, node in enumerate(self.kids.get("recipient-region", _NONE), start=1):
            ref = f"{self.ref}/recipient-region[{position}]"
            code = _attr(node, "code")
            if not code:
                self.file.problem(
                    ref,
                    "activity_regions",
                    "missing_code",
                    "recipient-region without a code; region not recorded",
                    field="region_code",
                    line=node.sourceline,
                    severity="warning",
                )
                continue
            percentage = self.percentage(node, ref, "activity_regions")
            self.tables["regions"].add(
                self.activity_id,
                ref,
                node.sourceline,
                _attr(node, "vocabulary") or "1",
                code,
                percentage,
            )

    def sectors(self) -> None:
        for position, node in enumerate(self.kids.get("sector", _NONE), start=1):
            ref = f"{self.ref}/sector[{position}]"
            vocabulary = codes.sector_vocabulary(node.get("vocabulary"))
            code = _attr(node, "code")
            if not code:
                self.file.problem(
                    ref,
                    "activity_sectors",
                    "missing_code",
                    "sector without a code; sector not recorded",
                    field="code",
                    line=node.sourceline,
                    severity="warning",
                )
                continue
            percentage = self.percentage(node, ref, "activity_sectors")
            self.tables["sectors"].add(
                self.activity_id,
                ref,
                node.sourceline,
                vocabulary,
                code,
                _narratives(node),
                percentage,
            )

    def participating_orgs(self) -> None:
        for position, node in enumerate(self.kids.get("participating-org", _NONE), start=1):
            ref = f"{self.ref}/participating-org[{position}]"
            role_raw = node.get("role")
            role = codes.organisation_role(role_raw)
            if role not in {"1", "2", "3", "4"}:
                self.file.problem(
                    ref,
                    "participating_orgs",
                    "invalid_role",
                    f"participating-org role {role_raw!r} is not 1-4 (or a 1.0x role name); "
                    "organisation not recorded",
                    field="role",
                    value=role_raw,
                    line=node.sourceline,
                    severity="warning",
                )
                continue
            self.tables["participating_orgs"].add(
                self.activity_id,
                ref,
                position,
                role,
                _attr(node, "ref"),
                _narratives(node),
                _attr(node, "type"),
                _attr(node, "activity-id"),
            )

    def transactions(self) -> None:
        f = self.file
        rows = self.tables["transactions"].rows
        defaults = self.defaults
        default_currency = self.default_currency
        activity_id = self.activity_id
        secondary = self.secondary
        nodes = self.kids.get("transaction", _NONE)
        ids = transaction_ids(activity_id, [_attr(node, "ref") for node in nodes])
        for position, node in enumerate(nodes, start=1):
            ref = f"{self.ref}/transaction[{position}]"
            line = node.sourceline
            # One pass over the transaction's children: what each field needs of them.
            types: list[etree._Element] = []
            values: list[etree._Element] = []
            first: dict[str, etree._Element] = {}
            coded: dict[str, str] = {}
            sectors: list[etree._Element] = []
            for child in node:
                tag = child.tag
                if tag == "value":
                    values.append(child)
                elif tag == "transaction-type":
                    types.append(child)
                elif tag in _TRANSACTION_FIRST:
                    if tag not in first:
                        first[tag] = child
                elif tag in _TRANSACTION_CODED:
                    if tag == "sector":
                        sectors.append(child)
                    if tag not in coded:
                        code = _coded(tag, child)
                        if code:
                            coded[tag] = code
            raw_type = _attr(types[0], "code") if types else None
            kind = codes.transaction_type(raw_type)
            if len(values) > 1 or len(types) > 1:
                f.problem(
                    ref,
                    "transactions",
                    "ambiguous_transaction",
                    f"{len(types)} transaction-type and {len(values)} value elements; IATI "
                    "allows one of each, so the transaction cannot be read without guessing; "
                    "transaction not accepted",
                    field="value",
                    value="; ".join(_text(v) or "" for v in values),
                    line=line,
                )
                f.rejected_parts += 1
                continue
            value_node = values[0] if values else None
            raw_value = _text(value_node)
            if value_node is None or not raw_value:
                f.problem(
                    ref,
                    "transactions",
                    "missing_value",
                    "transaction without a value; transaction not accepted",
                    field="value",
                    line=line,
                )
                f.rejected_parts += 1
                continue
            ok, value = f.number(raw_value, ref, "transactions", "value", line)
            if not ok:
                f.rejected_parts += 1
                continue
            if kind is None:
                f.problem(
                    ref,
                    "transactions",
                    "missing_transaction_type",
                    "transaction without a transaction-type code; transaction not accepted",
                    field="transaction_type",
                    line=line,
                )
                f.rejected_parts += 1
                continue
            date_node = first.get("transaction-date")
            transaction_date = f.date(
                _attr(date_node, "iso-date") or _text(date_node),
                ref,
                "transactions",
                "transaction-date",
                line,
            )
            value_date = (
                f.date(value_node.get("value-date"), ref, "transactions", "value-date", line)
                or transaction_date
            )
            currency = (value_node.get("currency") or "").strip().upper() or default_currency
            provider = first.get("provider-org")
            receiver = first.get("receiver-org")
            country = first.get("recipient-country")
            region = first.get("recipient-region")
            region_code = _attr(region, "code")
            humanitarian = codes.boolean(node.get("humanitarian"))
            exclusion = None
            if kind in codes.INCOMING_TRANSACTION_TYPES:
                exclusion = "incoming funds"
            elif secondary:
                exclusion = "secondary reporter"
            transaction_id = ids[position - 1]
            if sectors or country is not None or region is not None:
                self.transaction_splits(transaction_id, ref, sectors, country, region)
            rows.append(
                (
                    transaction_id,
                    activity_id,
                    ref,
                    line,
                    kind,
                    transaction_date,
                    value,
                    currency,
                    value_date,
                    _attr(provider, "ref"),
                    _attr(provider, "provider-activity-id"),
                    _attr(receiver, "ref"),
                    _attr(receiver, "receiver-activity-id"),
                    coded.get("aid-type") or defaults["aid_type"],
                    coded.get("finance-type") or defaults["finance_type"],
                    coded.get("flow-type") or defaults["flow_type"],
                    coded.get("disbursement-channel"),
                    coded.get("sector"),
                    (_attr(country, "code") or "").upper() or None,
                    region_code,
                    (_attr(region, "vocabulary") or "1") if region_code else None,
                    humanitarian if humanitarian is not None else self.humanitarian,
                    exclusion is None,
                    exclusion,
                )
            )

    def transaction_splits(
        self,
        transaction_id: str,
        ref: str,
        sectors: list[etree._Element],
        country: etree._Element | None,
        region: etree._Element | None,
    ) -> None:
        """The sectors (the first of each vocabulary), recipient country or recipient region
        an accepted transaction gives, for the activity's shares; what cannot be used for
        them is said in quarantine (the transaction itself is accepted as it is)."""
        f = self.file
        add = self.tables["transaction_splits"].add
        seen: dict[str, str] = {}
        for node in sectors:
            vocabulary = codes.sector_vocabulary(node.get("vocabulary"))
            code = _attr(node, "code")
            if not code:
                continue
            if vocabulary in seen:
                f.problem(
                    ref,
                    "activity_sectors",
                    "repeated_transaction_sector",
                    f"the transaction gives a second sector of vocabulary {vocabulary} "
                    f"({code}); IATI allows one per vocabulary, so only the first "
                    f"({seen[vocabulary]}) counts in the activity's sector shares",
                    field="code",
                    value=code,
                    line=node.sourceline,
                    severity="warning",
                )
                continue
            seen[vocabulary] = code
            add(self.activity_id, transaction_id, "sector", vocabulary, code)
        if country is not None:
            code = (_attr(country, "code") or "").upper()
            if re.fullmatch(r"[A-Z]{2}", code):
                add(self.activity_id, transaction_id, "country", None, code)
            else:
                f.problem(
                    ref,
                    "activity_countries",
                    "invalid_country_code",
                    f"transaction recipient-country code {code!r} is not an ISO 3166-1 "
                    "alpha-2 code; not counted in the activity's country shares",
                    field="country_code",
                    value=code,
                    line=country.sourceline,
                    severity="warning",
                )
        if region is not None:
            code = _attr(region, "code")
            if country is not None:
                f.problem(
                    ref,
                    "activity_regions",
                    "country_and_region",
                    f"the transaction gives both a recipient-country and a recipient-region "
                    f"({code}); IATI allows one of them, so only the country counts in the "
                    "activity's shares",
                    field="region_code",
                    value=code,
                    line=region.sourceline,
                    severity="warning",
                )
            elif code:
                add(
                    self.activity_id,
                    transaction_id,
                    "region",
                    _attr(region, "vocabulary") or "1",
                    code,
                )

    def budgets(self) -> None:
        f = self.file
        for position, node in enumerate(self.kids.get("budget", _NONE), start=1):
            ref = f"{self.ref}/budget[{position}]"
            line = node.sourceline
            first: dict[str, etree._Element] = {}
            for child in node:
                if child.tag not in first:
                    first[child.tag] = child
            value_node = first.get("value")
            ok, value = f.number(_text(value_node), ref, "budgets", "value", line)
            if not ok:
                f.rejected_parts += 1
                continue
            period_start = f.date(
                _attr(first.get("period-start"), "iso-date"), ref, "budgets", "period-start", line
            )
            period_end = f.date(
                _attr(first.get("period-end"), "iso-date"), ref, "budgets", "period-end", line
            )
            value_date = (
                f.date(_attr(value_node, "value-date"), ref, "budgets", "value-date", line)
                or period_start
            )
            currency = (_attr(value_node, "currency") or "").upper() or self.default_currency
            self.tables["budgets"].add(
                stable_id(
                    self.activity_id, "budget", position, period_start, period_end, value, currency
                ),
                self.activity_id,
                ref,
                line,
                _attr(node, "type"),
                _attr(node, "status"),
                period_start,
                period_end,
                value,
                currency,
                value_date,
            )

    def results(self) -> None:
        f = self.file
        rows = self.tables["results"]
        for r_pos, result in enumerate(self.kids.get("result", _NONE), start=1):
            r_ref = f"{self.ref}/result[{r_pos}]"
            result_type = (result.get("type") or "").strip().lower()
            level = codes.RESULT_LEVEL.get(result_type, "other")
            result_title = _narratives(_child(result, "title"))
            result_reference = _child(result, "reference")
            for i_pos, indicator in enumerate(_children(result, "indicator"), start=1):
                i_ref = f"{r_ref}/indicator[{i_pos}]"
                reference = _child(indicator, "reference")
                ref_node = reference if reference is not None else result_reference
                baseline = _child(indicator, "baseline")
                measure = _attr(indicator, "measure")
                common = (
                    level,
                    result_title,
                    _attr(ref_node, "code") if reference is not None else f"{r_pos}.{i_pos}",
                    _narratives(_child(indicator, "title")),
                    measure,
                    codes.boolean(indicator.get("ascending"))
                    if indicator.get("ascending") is not None
                    else True,
                    _attr(ref_node, "vocabulary"),
                    _attr(ref_node, "code"),
                    _attr(ref_node, "indicator-uri") or _attr(ref_node, "vocabulary-uri"),
                    _year(_attr(baseline, "year")),
                    self.result_value(baseline, i_ref + "/baseline", "baseline_value", measure),
                )
                periods = _children(indicator, "period")
                if not periods:
                    # 1.0x and some 2.0x files put the target on the indicator itself.
                    target = _child(indicator, "target")
                    rows.add(
                        stable_id(self.activity_id, r_pos, i_pos, 0),
                        self.activity_id,
                        i_ref,
                        *common,
                        _year(_attr(target, "year")),
                        self.result_value(target, i_ref + "/target", "target_value", measure),
                        None,
                        None,
                        None,
                    )
                for p_pos, period in enumerate(periods, start=1):
                    p_ref = f"{i_ref}/period[{p_pos}]"
                    start = f.date(
                        _attr(_child(period, "period-start"), "iso-date"),
                        p_ref,
                        "results",
                        "period-start",
                        period.sourceline,
                    )
                    end = f.date(
                        _attr(_child(period, "period-end"), "iso-date"),
                        p_ref,
                        "results",
                        "period-end",
                        period.sourceline,
                    )
                    target = _child(period, "target")
                    actual = _child(period, "actual")
                    rows.add(
                        stable_id(self.activity_id, r_pos, i_pos, p_pos),
                        self.activity_id,
                        p_ref,
                        *common,
                        end.year if end and target is not None else None,
                        self.result_value(target, p_ref + "/target", "target_value", measure),
                        start,
                        end,
                        self.result_value(actual, p_ref + "/actual", "actual_value", measure),
                    )

    def result_value(
        self, node: etree._Element | None, ref: str, fieldname: str, measure: str | None = None
    ) -> float | None:
        if node is None:
            return None
        raw = node.get("value")
        if measure == "5" and raw and raw.strip() and not _NUMBER.match(raw.strip()):
            self.file.problem(
                ref,
                "results",
                "qualitative_value",
                f"{fieldname} {raw.strip()!r} of a qualitative indicator (measure 5) is text; "
                "results hold numbers, so it is kept only here",
                field=fieldname,
                value=raw.strip(),
                line=node.sourceline,
                severity="warning",
            )
            return None
        _, value = self.file.number(
            raw, ref, "results", fieldname, node.sourceline, severity="warning"
        )
        return value


_UNSEEN = object()
#: What :func:`_read_date` gives for text that is not a date.
_NOT_A_DATE = object()


def _read_date(raw: str) -> object:
    """The date ``raw`` starts with (YYYY-MM-DD), None for blank text, else _NOT_A_DATE."""
    if not raw.strip():
        return None
    match = _DATE.match(raw)
    if match:
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    return _NOT_A_DATE


# -- element helpers ---------------------------------------------------------
#: No elements (the default of a :func:`_grouped` lookup).
_NONE: list[etree._Element] = []


def _grouped(node: etree._Element) -> dict[str, list[etree._Element]]:
    """The child elements by name, each list in document order (one pass over the children
    instead of one per name; comments and processing instructions left out)."""
    kids: dict[str, list[etree._Element]] = {}
    for child in node:
        tag = child.tag
        if isinstance(tag, str):
            if tag in kids:
                kids[tag].append(child)
            else:
                kids[tag] = [child]
    return kids


def _first(kids: Mapping[str, list[etree._Element]], name: str) -> etree._Element | None:
    found = kids.get(name)
    return found[0] if found else None


#: Transaction children of which the first one is read.
_TRANSACTION_FIRST = frozenset(
    {"transaction-date", "provider-org", "receiver-org", "recipient-country", "recipient-region"}
)
#: Transaction children read for their code: the first one with a code (and, for aid types
#: and sectors, of the DAC vocabulary).
_TRANSACTION_CODED = frozenset(
    {"aid-type", "finance-type", "flow-type", "disbursement-channel", "sector"}
)


def _coded(name: str, child: etree._Element) -> str | None:
    """The code of a child element named ``name``, unless it is of a non-DAC vocabulary
    (aid types and sectors)."""
    if name == "sector":
        if codes.sector_vocabulary(child.get("vocabulary")) != "1":
            return None
    elif name == "aid-type" and (child.get("vocabulary") or "").strip() not in {"", "1"}:
        return None
    return _attr(child, "code")


def _children(node: etree._Element | None, name: str) -> list[etree._Element]:
    """Child elements named ``name`` (no namespace), in document order."""
    if node is None:
        return []
    return list(node.iterchildren(name))


def _child(node: etree._Element | None, name: str) -> etree._Element | None:
    """The first child element named ``name`` (no namespace), or None."""
    if node is None:
        return None
    return next(node.iterchildren(name), None)


def _text(node: etree._Element | None) -> str | None:
    """The element's own text (before any child), whitespace runs made one space."""
    if node is None:
        return None
    text = node.text
    return " ".join(text.split()) or None if text else None


def _attr(node: etree._Element | None, name: str) -> str | None:
    if node is None:
        return None
    value = node.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _texts(element: etree._Element | None) -> list[tuple[str | None, str]]:
    """(language, text) of every narrative; 1.0x plain text counts as one."""
    if element is None:
        return []
    found: list[tuple[str | None, str]] = []
    for narrative in element:
        if narrative.tag == "narrative":  # IATI elements have no namespace
            text = _text(narrative)
            if text:
                found.append((narrative.get(XML_LANG), text))
    if not found:
        text = _text(element)
        if text:
            found.append((element.get(XML_LANG), text))
    return found


def _narratives(element: etree._Element | None) -> Narratives:
    """:func:`_texts` as the extracted tables keep them (the transform picks a language)."""
    return [{"lang": lang, "text": text} for lang, text in _texts(element)]


def _year(raw: str | None) -> int | None:
    if raw and _YEAR.fullmatch(raw):
        return int(raw)
    return None


def _datetime(raw: str | None) -> dt.datetime | None:
    """IATI xsd:dateTime (any fractional precision, Z or offset; naive means UTC)."""
    if not raw or not raw.strip():
        return None
    text = raw.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        match = _DATE.match(text)
        if not match:
            return None
        try:
            value = dt.datetime(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:  # no such day: 2018-10-90, month 13, year 0
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # the offset takes it before year 1 or after 9999
        return None


# -- files -------------------------------------------------------------------
def extract_file(path: Path, root: Path, sha256: str | None = None) -> ExtractedFile:
    """Extract one IATI activity file into :func:`extract_dir` under ``root`` (unless it is
    there already); never raises for what is inside the file.

    The folder is written whole or not at all: tables go to a temporary folder that is
    renamed into place, so a reader never sees half a file's tables.
    """
    try:
        digest, size = file_digest(path) if sha256 is None else (sha256, path.stat().st_size)
    except OSError as exc:
        raise ExtractError(exc) from exc
    folder = extract_dir(root, digest)
    if (folder / DONE).exists():
        return ExtractedFile(folder, read_summary(folder))
    state = _FileExtractor()
    rejected, codes = _read(path, state.activity, state.header)
    if rejected is None and state.n_records == 0:
        rejected = ("no_activities", "the file contains no iati-activity elements", None)
    summary: dict[str, Any] = {
        "sha256": digest,
        "bytes": size,
        "extractor_version": EXTRACTOR_VERSION,
        "iati_version": state.header.version,
        "default_language": state.header.default_language,
        "rejected_rule": rejected[0] if rejected else None,
        "rejected_message": rejected[1] if rejected else None,
        "rejected_line": rejected[2] if rejected else None,
        "n_records": state.n_records,
        "n_accepted": 0 if rejected else state.n_accepted,
        "n_quarantined": state.n_records if rejected else state.n_quarantined,
        "rejected_parts": 0 if rejected else state.rejected_parts,
        "code_root": codes is not None,
        "code_version": codes.version if codes is not None else None,
    }
    tables = {
        name: columns.table()
        for name, columns in state.tables.items()
        if name not in ("file", "codes")
    }
    if rejected is not None:  # its tables are not used; its codes show what was checked
        tables = {}
    tables["codes"] = codes.table(path) if codes is not None else CODE_SCHEMA.empty_table()
    tables = {name: table for name, table in tables.items() if table.num_rows}
    summary["tables"] = list(tables)
    tables["file"] = pa.Table.from_pylist([summary], schema=EXTRACT_SCHEMAS["file"])
    _write_folder(folder, tables)
    return ExtractedFile(folder, summary)


def _read(
    path: Path, on_activity: Callable[[ActivityElement], None], header: FileHeader
) -> tuple[tuple[str, str, int | None] | None, CodeReader | None]:
    """Read every activity of the file into ``on_activity`` and its coded attributes into a
    :class:`CodeReader` (None when the root is not an activity file's); why the file is
    rejected, if it is."""
    codes: list[CodeReader] = []

    def on_root(read: FileHeader) -> None:
        bare = read.root_tag == "iati-activity"
        reader = CodeReader(code_version(bare, read.version, path))
        if not bare:
            reader.root(read.raw_version, read.default_language, read.line)
        codes.append(reader)

    rejected: tuple[str, str, int | None] | None = None
    try:
        for item in iter_activities(path, header, on_root):
            codes[0].activity(item.element, header.root_tag == "iati-activity")
            on_activity(item)
    except NotIatiActivities as exc:
        rejected = (exc.rule, str(exc), exc.line)
    except OSError as exc:  # this machine's problem, not the file's: nothing is kept
        raise ExtractError(exc) from exc
    return rejected, codes[0] if codes else None


def read_codes(path: Path) -> tuple[pa.Table, pa.Table]:
    """The coded attributes of one file as :func:`assets.iati.conformance.codelist_findings`
    reads them: its one ``files`` row (key ``file``) and its ``rows``."""
    header = FileHeader()
    try:
        _, codes = _read(path, lambda _item: None, header)
    except ExtractError:
        codes = None
    rows = codes.table(path) if codes is not None else CODE_SCHEMA.empty_table()
    files = pa.table(
        {
            "file_key": ["file"],
            "code_root": [codes is not None],
            "code_version": [codes.version if codes is not None else None],
        }
    )
    rows = rows.add_column(0, "seq", pa.array(range(rows.num_rows), pa.int64()))
    return files, rows.add_column(0, "file_key", pa.array(["file"] * rows.num_rows, pa.string()))


class ExtractError(Exception):
    """A file to extract could not be read at all (a problem of this machine, not the file);
    ``reason`` says why in the operating system's words."""

    def __init__(self, error: OSError) -> None:
        super().__init__(f"cannot read the file: {error.strerror or error}")
        self.reason = error.strerror or str(error)


def _write_table(table: pa.Table, path: Path) -> None:
    """One extracted table as Parquet: zstd without dictionary pages (the extracted values
    are mostly distinct: dictionaries only cost time, and the files come out smaller),
    written straight to a local file."""
    with pa.OSFile(str(path), "wb") as sink:
        pq.write_table(table, sink, compression="zstd", use_dictionary=False)


def _write_folder(folder: Path, tables: Mapping[str, pa.Table]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, table in tables.items():
            if name != "file":
                _write_table(table, staging / f"{name}.parquet")
        _write_table(tables["file"], staging / DONE)
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / DONE).exists():  # not another process that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_summary(folder: Path) -> dict[str, Any]:
    """The one-row summary of an extracted file."""
    rows = pq.read_table(folder / DONE).to_pylist()
    return dict(rows[0])


def check_conformance(
    path: Path,
    source_file: str,
    *,
    schemas: IatiSchemas | None,
    codelists: Codelists | None,
    max_findings: int = 1000,
) -> list[Finding]:
    """The XSD and codelist findings of one IATI activity file (empty: it conforms), as the
    pipeline makes them for a file on its own: :func:`check_schema`, then the codelist
    findings of the coded values the extractor reads (:func:`codelist_findings`)."""
    findings = check_schema(path, source_file, schemas=schemas, max_findings=max_findings)
    files, rows = read_codes(path)
    con = duckdb.connect()
    try:
        found = codelist_findings(con, files, rows, codelists, max_findings)
    finally:
        con.close()
    names = [field.name for field in CONFORMANCE_FIELDS]
    for row in found.drop_columns(["file_key", "_ord"]).to_pylist():
        row["source_file"] = source_file
        findings.append(Finding(**{name: row[name] for name in names}))
    return findings
