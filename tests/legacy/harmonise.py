"""IATI activity files -> the harmonised CD results tables (pure; no Dagster).

One file at a time, one activity at a time. Every row carries provenance; every
record that is not accepted goes to ``quarantine`` with the rule it broke and
where; a broken file is ``rejected`` in ``sources`` and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd
from lxml import etree

from assets.harmonise.schema import ArrowTables, table_arrow, table_frame
from assets.hashing import file_digest as sha256_file
from assets.iati import codes
from assets.iati.classify import ActivityEvidence, CdClassifier
from assets.iati.codelists import Codelists
from assets.iati.conformance import (
    Finding,
    IatiSchemas,
    check_schema,
    findings_arrow,
)
from assets.iati.extract import check_conformance
from assets.iati.rates import ExchangeRates
from assets.iati.xml import ActivityElement, FileHeader, NotIatiActivities, iter_activities
from assets.pool import WorkerDied, map_in_processes
from assets.settings import CdRules, Settings, over_size_limit

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

#: Tables one IATI file fills, in the order they are written.
IATI_TABLES = (
    "activities",
    "activity_countries",
    "activity_regions",
    "activity_sectors",
    "participating_orgs",
    "transactions",
    "budgets",
    "results",
)
#: Every harmonised table (country reports and partner submissions add the two CD ones;
#: ``conformance`` holds what the IATI schema and codelists say about each IATI file).
ALL_TABLES = (
    *IATI_TABLES,
    "cd_priorities",
    "partner_declarations",
    "sources",
    "quarantine",
    "conformance",
)

_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_HIERARCHY = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class HarmoniseOptions:
    """What harmonisation needs besides the file: rules and reference data."""

    rules: CdRules
    rates: ExchangeRates | None = None
    codelists: Codelists | None = None
    preferred_languages: tuple[str, ...] = ("en", "fr", "es", "pt")
    rate_fallback_months: int = 12
    #: The official IATI XML Schemas files are checked against (None: not checked).
    schemas: IatiSchemas | None = None
    #: Conformance findings kept per file and check; the rest are counted in one row.
    max_findings: int = 1000
    #: Files larger than this are rejected before any of them is read (None: no limit).
    max_file_bytes: int | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        rates: ExchangeRates | None,
        codelists: Codelists | None,
        schemas: IatiSchemas | None,
    ) -> HarmoniseOptions:
        """The configuration's rules and preferences with this reference data."""
        return cls(
            rules=settings.cd_rules,
            rates=rates,
            codelists=codelists,
            preferred_languages=settings.preferred_languages,
            rate_fallback_months=settings.rate_fallback_months,
            schemas=schemas,
            max_findings=settings.quality.max_findings,
            max_file_bytes=settings.fetch.max_bytes,
        )


@dataclass
class HarmonisedFile:
    """The tables harmonised from one file, as frames that follow schema/ (an IATI file's
    are kept as Arrow until a frame is read: :class:`ArrowTables`)."""

    source_file: str
    tables: Mapping[str, pd.DataFrame]

    def rows(self, table: str) -> int:
        tables = self.tables
        return tables.rows(table) if isinstance(tables, ArrowTables) else len(tables[table])

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.tables["sources"].iloc[0].to_dict())

    @property
    def status(self) -> str:
        return str(self.tables["sources"]["status"].iloc[0])


def stable_id(*parts: object) -> str:
    """A short, stable identifier from the parts (hex of their sha256)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


class _FileHarmoniser:
    """The state of harmonising one file: its rows, its quarantine, its counters."""

    def __init__(
        self,
        path: Path,
        source_file: str,
        sha256: str,
        options: HarmoniseOptions,
        classifier: CdClassifier,
    ) -> None:
        self.path = path
        self.source_file = source_file
        self.sha256 = sha256
        self.options = options
        self.classifier = classifier
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in IATI_TABLES}
        self.quarantine: list[dict[str, Any]] = []
        self.n_records = 0
        self.n_accepted = 0
        self.n_quarantined = 0
        self.rejected_parts = 0  # transactions and budgets not accepted
        self.header = FileHeader()
        self.seen_ids: dict[str, str] = {}

    # -- helpers -----------------------------------------------------------
    def provenance(self, ref: str) -> dict[str, str]:
        return {
            "source": "iati",
            "source_file": self.source_file,
            "source_sha256": self.sha256,
            "source_ref": ref,
        }

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
        self.quarantine.append(
            {
                "source_file": self.source_file,
                "source_ref": ref,
                "table": table,
                "field": field,
                "rule": rule,
                "value": None if value is None else str(value)[:500],
                "message": f"{where}{message}",
                "severity": severity,
            }
        )

    def texts(self, element: etree._Element | None) -> list[tuple[str | None, str]]:
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

    def pick(
        self, element: etree._Element | None, default_language: str | None
    ) -> tuple[str | None, str | None]:
        """The narrative in the preferred language order: (text, language)."""
        found = self.texts(element)
        if not found:
            return None, None
        with_language = [(lang or default_language, text) for lang, text in found]
        for preferred in self.options.preferred_languages:
            for lang, text in with_language:
                if lang and lang.lower().split("-")[0] == preferred:
                    return text, lang
        lang, text = with_language[0]
        return text, lang or None  # xml:lang="" states no language

    def date(
        self, raw: str | None, ref: str, table: str, fieldname: str, line: int | None
    ) -> dt.date | None:
        if raw is None or not raw.strip():
            return None
        match = _DATE.match(raw)
        if match:
            try:
                return dt.date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                pass
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

    def usd(
        self,
        value: float | None,
        currency: str | None,
        when: dt.date | None,
        ref: str,
        table: str,
        line: int | None,
    ) -> dict[str, Any]:
        """value_usd, usd_rate, usd_rate_period, usd_rate_source for a money value."""
        empty: dict[str, Any] = {
            "value_usd": None,
            "usd_rate": None,
            "usd_rate_period": None,
        }
        if value is None:
            return empty
        reason = None
        if not currency:
            reason = ("no_currency", "no currency on the value and no default-currency")
        elif when is None:
            reason = ("no_value_date", "no value date or transaction/period date to convert at")
        elif self.options.rates is None:
            reason = ("no_exchange_rates", "no exchange rates configured")
        else:
            rate = self.options.rates.lookup(currency, when, self.options.rate_fallback_months)
            if rate is None:
                reason = (
                    "no_exchange_rate",
                    f"no {currency} rate for {when:%Y-%m} or the "
                    f"{self.options.rate_fallback_months} months before",
                )
            else:
                return {
                    "value_usd": value / rate.rate,
                    "usd_rate": rate.rate,
                    "usd_rate_period": rate.period,
                    "_rate_source": rate.source,
                }
        self.problem(
            ref,
            table,
            reason[0],
            f"value_usd left empty: {reason[1]}",
            field="value_usd",
            value=f"{value} {currency or ''}".strip(),
            line=line,
            severity="warning",
        )
        return empty

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
            try:
                value = float(Decimal(text))
            except InvalidOperation:
                pass
            else:
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

    # -- the activity ------------------------------------------------------
    def activity(self, item: ActivityElement) -> None:
        self.n_records += 1
        element = item.element
        ref = item.pointer
        identifier = _text(_child(element, "iati-identifier"))
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
        builder = _ActivityBuilder(self, item, identifier)
        builder.build()
        self.n_accepted += 1
        for table, rows in builder.rows.items():
            self.rows[table].extend(rows)


class _ActivityBuilder:
    """Rows of every table for one activity.

    A transaction or budget that cannot be read is quarantined on its own; the
    activity and its other rows still go through.
    """

    def __init__(self, file: _FileHarmoniser, item: ActivityElement, activity_id: str) -> None:
        self.file = file
        self.item = item
        self.element = item.element
        self.activity_id = activity_id
        self.ref = item.pointer
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in IATI_TABLES}
        self.language = item.element.get(XML_LANG) or file.header.default_language

    def build(self) -> None:
        f = self.file
        el = self.element
        reporting = _child(el, "reporting-org")
        title, title_language = f.pick(_child(el, "title"), self.language)
        descriptions = _children(el, "description")
        general = [d for d in descriptions if (d.get("type") or "1") == "1"] or descriptions
        description, _ = f.pick(general[0], self.language) if general else (None, None)
        dates = self.activity_dates()
        secondary = (
            codes.boolean(reporting.get("secondary-reporter")) if reporting is not None else None
        )
        default_currency = (el.get("default-currency") or "").strip().upper() or None
        self.default_currency = default_currency
        self.secondary = bool(secondary)
        self.humanitarian = codes.boolean(el.get("humanitarian"))
        default_aid = self.default_code("default-aid-type")
        self.defaults = {
            "aid_type": default_aid,
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
        status = _child(el, "activity-status")

        self.countries()
        sectors = self.sectors()
        self.participating_orgs()
        transaction_aid_types, transaction_sectors = self.transactions()
        self.budgets()
        self.results()

        texts = tuple(
            text for node in [_child(el, "title"), *descriptions] for _, text in f.texts(node)
        )
        aid_types = {a for a in [default_aid, *transaction_aid_types] if a}
        dac_sectors = {s["code"] for s in sectors if s["vocabulary"] == "1"} | transaction_sectors
        classification = f.classifier.classify(
            ActivityEvidence(
                aid_types=frozenset(aid_types),
                ftc_flag=self.ftc_flag(),
                dac_sectors=frozenset(dac_sectors),
                texts=texts,
            )
        )
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
        self.rows["activities"].append(
            {
                "activity_id": self.activity_id,
                "title": title,
                "description": description,
                "title_language": title_language,
                "reporting_org_ref": _attr(reporting, "ref"),
                "reporting_org_name": f.pick(reporting, self.language)[0],
                "reporting_org_type": _attr(reporting, "type"),
                "secondary_reporter": secondary,
                "hierarchy": hierarchy,
                "activity_status": _attr(status, "code"),
                "start_planned": dates.get("1"),
                "start_actual": dates.get("2"),
                "end_planned": dates.get("3"),
                "end_actual": dates.get("4"),
                "start_date": dates.get("2") or dates.get("1"),
                "end_date": dates.get("4") or dates.get("3"),
                "default_currency": default_currency,
                "humanitarian": self.humanitarian,
                "default_aid_type": default_aid,
                "default_finance_type": self.defaults["finance_type"],
                "default_flow_type": self.defaults["flow_type"],
                "iati_version": f.header.version,
                "last_updated": last_updated,
                "is_cd": classification.is_cd,
                "cd_basis": classification.cd_basis,
                "modality": classification.modality,
                **f.provenance(self.ref),
            }
        )

    # -- parts -------------------------------------------------------------
    def default_code(self, name: str) -> str | None:
        for node in _children(self.element, name):
            vocabulary = (node.get("vocabulary") or "1").strip()
            if vocabulary == "1":
                return _attr(node, "code") or _text(node)
        return None

    def activity_dates(self) -> dict[str, dt.date]:
        found: dict[str, dt.date] = {}
        for position, node in enumerate(_children(self.element, "activity-date"), start=1):
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
        crs = _child(self.element, "crs-add")
        if crs is None:
            return False
        for flag in _children(crs, "other-flags"):
            if (flag.get("code") or "").strip() == "1" and codes.boolean(
                flag.get("significance")
            ) in (True, None):
                return True
        return False

    def _shares(
        self,
        items: list[dict[str, Any]],
        key: Callable[[dict[str, Any]], tuple[str, ...]],
        table: str,
        group: Callable[[dict[str, Any]], str],
    ) -> list[dict[str, Any]]:
        """Merge repeated codes, then rebase percentages into shares per group (an item's
        ``_table`` overrides ``table``: countries and regions share one group)."""
        merged: dict[tuple[str, ...], dict[str, Any]] = {}
        for item in items:
            k = key(item)
            if k in merged:
                kept = merged[k]
                own = item.get("_table", table)
                self.file.problem(
                    item["source_ref"],
                    own,
                    "repeated_code",
                    f"{own.replace('activity_', '').rstrip('s')} {' / '.join(k[1:])} listed "
                    "again for the activity; percentages added "
                    f"into the row of {kept['source_ref']}",
                    field="percentage",
                    value=item["percentage"],
                    line=item.pop("_line"),
                    severity="warning",
                )
                if item["percentage"] is not None:
                    kept["percentage"] = (kept["percentage"] or 0.0) + item["percentage"]
                continue
            merged[k] = item
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in merged.values():
            line = item.pop("_line", None)
            if item["percentage"] is not None and item["percentage"] < 0:
                # IATI percentages are 0..100: a negative one would give the others more
                # than the whole amount, so it counts as 0 (the published value is kept).
                self.file.problem(
                    item["source_ref"],
                    item.get("_table", table),
                    "negative_percentage",
                    f"percentage {item['percentage']:g} is negative; counted as 0 in the shares",
                    field="percentage",
                    value=item["percentage"],
                    line=line,
                    severity="warning",
                )
            groups.setdefault(group(item), []).append(item)
        for members in groups.values():
            given = [max(0.0, m["percentage"]) for m in members if m["percentage"] is not None]
            missing = [m for m in members if m["percentage"] is None]
            tables = [m.get("_table", table) for m in members]
            group_table = "activity_countries" if "activity_countries" in tables else tables[0]
            plural = table.replace("activity_", "")
            if "activity_regions" in tables:
                both = "activity_countries" in tables
                plural = "countries and regions" if both else "regions"
            if missing and len(members) == 1:
                # IATI: a single country or sector without a percentage is 100%.
                missing[0]["_weight"] = 100.0
            elif missing:
                remainder = max(0.0, 100.0 - sum(given)) if given else 100.0
                each = remainder / len(missing)
                for m in missing:
                    m["_weight"] = each
                self.file.problem(
                    f"{self.ref}",
                    group_table,
                    "percentage_missing",
                    f"{len(missing)} of {len(members)} {plural} have no "
                    f"percentage; the {'remaining ' if given else ''}{remainder:g}% is split "
                    "evenly among them",
                    field="share",
                    line=self.item.line,
                    severity="warning",
                )
            for m in members:
                if "_weight" not in m:
                    m["_weight"] = max(0.0, m["percentage"])
            total = sum(m["_weight"] for m in members)
            weighed = total > 0 and not (len(members) > 1 and len(missing) == len(members))
            for m in members:
                weight = m.pop("_weight")
                m["share"] = weight / total if total > 0 else 1.0 / len(members)
                m["share_basis"] = "activity" if weighed else "even"
            if given and not missing and abs(sum(given) - 100.0) > 0.01:
                self.file.problem(
                    self.ref,
                    group_table,
                    "percentages_not_100",
                    f"percentages add up to {sum(given):g}, not 100; shares rebased to sum to 1",
                    field="percentage",
                    value=f"{sum(given):g}",
                    line=self.item.line,
                    severity="warning",
                )
        return list(merged.values())

    def countries(self) -> list[dict[str, Any]]:
        items = []
        for position, node in enumerate(_children(self.element, "recipient-country"), start=1):
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
            _ok, percentage = self.file.number(
                node.get("percentage"),
                ref,
                "activity_countries",
                "percentage",
                node.sourceline,
                severity="warning",
            )
            items.append(
                {
                    "activity_id": self.activity_id,
                    "country_code": code,
                    "percentage": percentage,
                    "_line": node.sourceline,
                    **self.file.provenance(ref),
                }
            )
        items.extend(self.regions())
        rows = self._shares(
            items,
            # countries and regions never merge with each other, whatever their codes
            lambda r: (
                r["activity_id"] + ("\x1fregion" if "region_code" in r else ""),
                r.get("region_code") or r["country_code"],
            ),
            "activity_countries",
            lambda r: r["activity_id"],
        )
        for row in rows:
            self.rows[row.pop("_table", "activity_countries")].append(row)
        return rows

    def regions(self) -> list[dict[str, Any]]:
        """The activity's recipient regions of its counted vocabulary (1 if it gives any,
        else the lowest); the others are said in quarantine and not recorded."""
        found = []
        for position, node in enumerate(_children(self.element, "recipient-region"), start=1):
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
            _ok, percentage = self.file.number(
                node.get("percentage"),
                ref,
                "activity_regions",
                "percentage",
                node.sourceline,
                severity="warning",
            )
            found.append(
                {
                    "activity_id": self.activity_id,
                    "vocabulary": _attr(node, "vocabulary") or "1",
                    "region_code": code,
                    "percentage": percentage,
                    "_line": node.sourceline,
                    "_table": "activity_regions",
                    **self.file.provenance(ref),
                }
            )
        vocabularies = {r["vocabulary"] for r in found}
        counted = "1" if "1" in vocabularies else min(vocabularies, default=None)
        for r in found:
            if r["vocabulary"] != counted:
                self.file.problem(
                    r["source_ref"],
                    "activity_regions",
                    "region_vocabulary_not_counted",
                    f"recipient-region {r['region_code']} of vocabulary {r['vocabulary']} not "
                    f"recorded: the activity's regions are counted in vocabulary {counted}, "
                    "and the same money is not counted twice",
                    field="vocabulary",
                    value=r["vocabulary"],
                    line=r["_line"],
                    severity="warning",
                )
        return [r for r in found if r["vocabulary"] == counted]

    def sectors(self) -> list[dict[str, Any]]:
        items = []
        codelists = self.file.options.codelists
        for position, node in enumerate(_children(self.element, "sector"), start=1):
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
            _ok, percentage = self.file.number(
                node.get("percentage"),
                ref,
                "activity_sectors",
                "percentage",
                node.sourceline,
                severity="warning",
            )
            name = None
            if codelists is not None and vocabulary in {"1", "2"}:
                name = codelists.name("Sector" if vocabulary == "1" else "SectorCategory", code)
            items.append(
                {
                    "activity_id": self.activity_id,
                    "vocabulary": vocabulary,
                    "code": code,
                    "code_name": name or self.file.pick(node, self.language)[0],
                    "percentage": percentage,
                    "is_cd_sector": self.file.classifier.is_cd_sector(vocabulary, code),
                    "_line": node.sourceline,
                    **self.file.provenance(ref),
                }
            )
        rows = self._shares(
            items,
            lambda r: (r["activity_id"], r["vocabulary"], r["code"]),
            "activity_sectors",
            lambda r: r["vocabulary"],
        )
        self.rows["activity_sectors"].extend(rows)
        return rows

    def participating_orgs(self) -> None:
        for position, node in enumerate(_children(self.element, "participating-org"), start=1):
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
            self.rows["participating_orgs"].append(
                {
                    "activity_id": self.activity_id,
                    "position": position,
                    "role": role,
                    "org_ref": _attr(node, "ref"),
                    "org_name": self.file.pick(node, self.language)[0],
                    "org_type": _attr(node, "type"),
                    "org_activity_id": _attr(node, "activity-id"),
                    **self.file.provenance(ref),
                }
            )

    def transactions(self) -> tuple[set[str], set[str]]:
        aid_types: set[str] = set()
        sector_codes: set[str] = set()
        f = self.file
        nodes = list(_children(self.element, "transaction"))
        refs = [_attr(node, "ref") for node in nodes]
        for position, node in enumerate(nodes, start=1):
            ref = f"{self.ref}/transaction[{position}]"
            line = node.sourceline
            kids = _grouped(node)
            types = kids.get("transaction-type", _NONE)
            values = kids.get("value", _NONE)
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
                self.rejected_transaction()
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
                self.rejected_transaction()
                continue
            ok, value = f.number(raw_value, ref, "transactions", "value", line)
            if not ok:
                self.rejected_transaction()
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
                self.rejected_transaction()
                continue
            date_node = _first(kids, "transaction-date")
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
            currency = (value_node.get("currency") or "").strip().upper() or self.default_currency
            provider = _first(kids, "provider-org")
            receiver = _first(kids, "receiver-org")
            aid_type = self.code_in(kids, "aid-type") or self.defaults["aid_type"]
            if aid_type:
                aid_types.add(aid_type)
            sector = self.code_in(kids, "sector")
            if sector:
                sector_codes.add(sector)
            country = _first(kids, "recipient-country")
            region = _first(kids, "recipient-region")
            humanitarian = codes.boolean(node.get("humanitarian"))
            converted = f.usd(value, currency, value_date, ref, "transactions", line)
            rate_source = converted.pop("_rate_source", None)
            exclusion = None
            if kind in codes.INCOMING_TRANSACTION_TYPES:
                exclusion = "incoming funds"
            elif self.secondary:
                exclusion = "secondary reporter"
            self.rows["transactions"].append(
                {
                    "transaction_id": (
                        f"{self.activity_id}#ref:{refs[position - 1]}"
                        if refs[position - 1] and refs.count(refs[position - 1]) == 1
                        else f"{self.activity_id}#{position}"
                    ),
                    "activity_id": self.activity_id,
                    "transaction_type": kind,
                    "transaction_date": transaction_date,
                    "value": value,
                    "currency": currency,
                    "value_date": value_date,
                    **converted,
                    "usd_rate_source": rate_source,
                    "provider_org_ref": _attr(provider, "ref"),
                    "provider_activity_id": _attr(provider, "provider-activity-id"),
                    "receiver_org_ref": _attr(receiver, "ref"),
                    "receiver_activity_id": _attr(receiver, "receiver-activity-id"),
                    "aid_type": aid_type,
                    "finance_type": self.code_in(kids, "finance-type")
                    or self.defaults["finance_type"],
                    "flow_type": self.code_in(kids, "flow-type") or self.defaults["flow_type"],
                    "disbursement_channel": self.code_in(kids, "disbursement-channel"),
                    "sector_code": sector,
                    "recipient_country": (_attr(country, "code") or "").upper() or None,
                    "recipient_region": _attr(region, "code"),
                    "recipient_region_vocabulary": (
                        (_attr(region, "vocabulary") or "1") if _attr(region, "code") else None
                    ),
                    "humanitarian": humanitarian if humanitarian is not None else self.humanitarian,
                    "counts_toward_totals": exclusion is None,
                    "exclusion_reason": exclusion,
                    **f.provenance(ref),
                }
            )
        return aid_types, sector_codes

    def rejected_transaction(self) -> None:
        """A transaction that is not accepted makes the file partial but keeps the activity."""
        self.file.rejected_parts += 1

    def code_in(self, kids: Mapping[str, list[etree._Element]], name: str) -> str | None:
        """The code of a child element (``kids``: :func:`_grouped`), skipping non-DAC
        vocabularies for aid types and sectors."""
        for child in kids.get(name, _NONE):
            vocabulary = (child.get("vocabulary") or "").strip()
            if name == "sector" and codes.sector_vocabulary(vocabulary) != "1":
                continue
            if name == "aid-type" and vocabulary not in {"", "1"}:
                continue
            code = _attr(child, "code")
            if code:
                return code
        return None

    def budgets(self) -> None:
        f = self.file
        for position, node in enumerate(_children(self.element, "budget"), start=1):
            ref = f"{self.ref}/budget[{position}]"
            line = node.sourceline
            value_node = _child(node, "value")
            ok, value = f.number(_text(value_node), ref, "budgets", "value", line)
            if not ok:
                self.rejected_transaction()
                continue
            start_node = _child(node, "period-start")
            end_node = _child(node, "period-end")
            period_start = f.date(
                _attr(start_node, "iso-date"), ref, "budgets", "period-start", line
            )
            period_end = f.date(_attr(end_node, "iso-date"), ref, "budgets", "period-end", line)
            value_date = (
                f.date(_attr(value_node, "value-date"), ref, "budgets", "value-date", line)
                or period_start
            )
            currency = (_attr(value_node, "currency") or "").upper() or self.default_currency
            converted = f.usd(value, currency, value_date, ref, "budgets", line)
            converted.pop("_rate_source", None)
            self.rows["budgets"].append(
                {
                    "budget_id": stable_id(
                        self.activity_id,
                        "budget",
                        position,
                        period_start,
                        period_end,
                        value,
                        currency,
                    ),
                    "activity_id": self.activity_id,
                    "budget_type": _attr(node, "type"),
                    "budget_status": _attr(node, "status"),
                    "period_start": period_start,
                    "period_end": period_end,
                    "value": value,
                    "currency": currency,
                    "value_date": value_date,
                    **converted,
                    **f.provenance(ref),
                }
            )

    def results(self) -> None:
        f = self.file
        # the activity's country, where it has exactly one
        countries = {
            r["country_code"]
            for r in self.rows["activity_countries"]
            if r.get("activity_id") == self.activity_id and r.get("country_code")
        }
        country = next(iter(countries)) if len(countries) == 1 else None
        for r_pos, result in enumerate(_children(self.element, "result"), start=1):
            r_ref = f"{self.ref}/result[{r_pos}]"
            result_type = (result.get("type") or "").strip().lower()
            level = codes.RESULT_LEVEL.get(result_type, "other")
            result_title, _ = f.pick(_child(result, "title"), self.language)
            result_reference = _child(result, "reference")
            for i_pos, indicator in enumerate(_children(result, "indicator"), start=1):
                i_ref = f"{r_ref}/indicator[{i_pos}]"
                reference = _child(indicator, "reference")
                ref_node = reference if reference is not None else result_reference
                baseline = _child(indicator, "baseline")
                measure = _attr(indicator, "measure")
                baseline_value = self.result_value(
                    baseline, i_ref + "/baseline", "baseline_value", measure
                )
                baseline_year = _year(_attr(baseline, "year"))
                indicator_title, _ = f.pick(_child(indicator, "title"), self.language)
                common = {
                    "activity_id": self.activity_id,
                    "country_code": country,
                    "priority_id": None,
                    "level": level,
                    "result_title": result_title,
                    "indicator_id": _attr(ref_node, "code")
                    if reference is not None
                    else f"{r_pos}.{i_pos}",
                    "indicator_title": indicator_title,
                    "measure": measure,
                    "ascending": codes.boolean(indicator.get("ascending"))
                    if indicator.get("ascending") is not None
                    else True,
                    "reference_vocabulary": _attr(ref_node, "vocabulary"),
                    "reference_code": _attr(ref_node, "code"),
                    "reference_uri": _attr(ref_node, "indicator-uri")
                    or _attr(ref_node, "vocabulary-uri"),
                    "from_country_framework": None,
                    "government_data_source": None,
                    "baseline_year": baseline_year,
                    "baseline_value": baseline_value,
                    "data_source": None,
                }
                periods = _children(indicator, "period")
                if not periods:
                    # 1.0x and some 2.0x files put the target on the indicator itself.
                    target = _child(indicator, "target")
                    self.rows["results"].append(
                        {
                            **common,
                            "result_id": stable_id(self.activity_id, r_pos, i_pos, 0),
                            "target_year": _year(_attr(target, "year")),
                            "target_value": self.result_value(
                                target, i_ref + "/target", "target_value", measure
                            ),
                            "period_start": None,
                            "period_end": None,
                            "actual_value": None,
                            **f.provenance(i_ref),
                        }
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
                    self.rows["results"].append(
                        {
                            **common,
                            "result_id": stable_id(self.activity_id, r_pos, i_pos, p_pos),
                            "target_year": end.year if end and target is not None else None,
                            "target_value": self.result_value(
                                target, p_ref + "/target", "target_value", measure
                            ),
                            "period_start": start,
                            "period_end": end,
                            "actual_value": self.result_value(
                                actual, p_ref + "/actual", "actual_value", measure
                            ),
                            **f.provenance(p_ref),
                        }
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


# -- element helpers ---------------------------------------------------------
def _name(node: etree._Element) -> str:
    tag = node.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


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


def _year(raw: str | None) -> int | None:
    if raw and re.fullmatch(r"\d{4}", raw):
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
def harmonise_file(
    path: Path,
    options: HarmoniseOptions,
    *,
    source_file: str | None = None,
    uri: str | None = None,
    classifier: CdClassifier | None = None,
) -> HarmonisedFile:
    """Harmonise one IATI activity file; never raises for what is inside the file."""
    name = source_file or path.name
    uri = uri or path.resolve().as_uri()
    limit = options.max_file_bytes
    try:
        declared = path.stat().st_size
    except OSError:
        declared = None  # reported by the read below
    if limit is not None and declared is not None and declared > limit:
        return _rejected(
            name,
            uri,
            None,
            declared,
            "too_large",
            f"{over_size_limit(declared, limit)}; it was not read",
            None,
            0,
        )
    try:
        sha256, size = sha256_file(path)
    except OSError as exc:
        return _rejected(
            name,
            uri,
            None,
            None,
            "unreadable",
            f"cannot read the file: {exc.strerror}",
            None,
            0,
        )
    state = _FileHarmoniser(path, name, sha256, options, classifier or CdClassifier(options.rules))

    def schema_findings(well_formed: bool) -> list[Finding]:
        return check_schema(
            path,
            name,
            schemas=options.schemas,
            max_findings=options.max_findings,
            well_formed=well_formed,
        )

    try:
        for item in iter_activities(path, state.header):
            state.activity(item)
    except NotIatiActivities as exc:
        return _rejected(
            name,
            uri,
            sha256,
            size,
            exc.rule,
            str(exc),
            exc.line,
            state.n_records,
            schema_findings(False),
        )
    if state.n_records == 0:
        return _rejected(
            name,
            uri,
            sha256,
            size,
            "no_activities",
            "the file contains no iati-activity elements",
            None,
            0,
            schema_findings(True),
        )
    errors = state.n_quarantined + state.rejected_parts
    if state.n_accepted == 0:
        status = "rejected"
        reason = f"none of the {state.n_records} activities could be accepted (see quarantine)"
    elif errors:
        status = "partial"
        parts = []
        if state.n_quarantined:
            parts.append(f"{state.n_quarantined} of {state.n_records} activities not accepted")
        if state.rejected_parts:
            parts.append(f"{state.rejected_parts} transactions or budgets not accepted")
        reason = "; ".join(parts) + " (see quarantine)"
    else:
        status, reason = "ok", None
    tables = {t: table_arrow(t, rows) for t, rows in state.rows.items()}
    tables["sources"] = table_arrow(
        "sources",
        [
            _source_row(
                name,
                uri,
                sha256,
                size,
                status,
                reason,
                state.n_records,
                state.n_accepted,
                state.n_quarantined,
            )
        ],
    )
    tables["quarantine"] = table_arrow("quarantine", state.quarantine)
    tables["conformance"] = findings_arrow(
        check_conformance(
            path,
            name,
            schemas=options.schemas,
            codelists=options.codelists,
            max_findings=options.max_findings,
        )
    )
    return HarmonisedFile(name, ArrowTables(tables))


def _source_row(
    name: str,
    uri: str,
    sha256: str | None,
    size: int | None,
    status: str,
    reason: str | None,
    n_records: int,
    n_accepted: int,
    n_quarantined: int,
) -> dict[str, Any]:
    # Local files are read, not fetched: fetched_at stays empty (the fetchers
    # record the download time), so the same files give the same table.
    return {
        "source_file": name,
        "source": "iati",
        "uri": uri,
        "fetched_at": None,
        "http_etag": None,
        "sha256": sha256,
        "bytes": size,
        "status": status,
        "reason": reason,
        "n_records": n_records,
        "n_accepted": n_accepted,
        "n_quarantined": n_quarantined,
    }


def _rejected(
    name: str,
    uri: str,
    sha256: str | None,
    size: int | None,
    rule: str,
    message: str,
    line: int | None,
    n_records: int,
    conformance: list[Finding] | None = None,
) -> HarmonisedFile:
    """A rejected file's tables; ``conformance``: its XSD findings (None: the file was not
    read, and one ``xsd:not_checked`` row says why)."""
    tables = {t: table_frame(t, []) for t in IATI_TABLES}
    if conformance is None:
        conformance = [
            Finding(
                name, "xsd", None, None, None, None, "xsd:not_checked", None,
                f"the file was not checked: {message}", "warning",
            )
        ]  # fmt: skip
    tables["conformance"] = table_frame(
        "conformance", [dict(vars(finding)) for finding in conformance]
    )
    tables["sources"] = table_frame(
        "sources",
        [_source_row(name, uri, sha256, size, "rejected", message, n_records, 0, n_records)],
    )
    tables["quarantine"] = table_frame(
        "quarantine",
        [
            {
                "source_file": name,
                "source_ref": f"line {line}" if line else "/",
                "table": "sources",
                "field": None,
                "rule": rule,
                "value": None,
                "message": f"file rejected: {message}",
                "severity": "error",
            }
        ],
    )
    return HarmonisedFile(name, tables)


def combine(files: Iterable[HarmonisedFile]) -> dict[str, pd.DataFrame]:
    """All files' tables as one set, in a stable order.

    The same activity identifier in two files keeps an IATI publication over a
    submission, then the reporting organisation's own publication (identifier
    starts with its ref), else the most recently updated, else the first file
    by name; the other copy's rows go to quarantine as
    ``duplicate_activity_across_files`` and its source's counts say so.

    A partner submission's copy of an activity that IATI publishes is merged
    instead (see :func:`_merge_submission_into_iati`): IATI's description
    stands, the submission's figures stay for the double-counting stage to
    weigh, and a warning ``activity_also_in_iati`` says what was taken from
    where.
    """
    files = sorted(files, key=lambda h: h.source_file)
    tables: dict[str, pd.DataFrame] = {}
    for table in ALL_TABLES:
        frames = [h.tables[table] for h in files if table in h.tables and len(h.tables[table])]
        tables[table] = pd.concat(frames, ignore_index=True) if frames else table_frame(table, [])
    tables = _drop_cross_file_duplicates(tables)
    return {t: _sorted(t, frame) for t, frame in tables.items()}


_SORT_KEYS: dict[str, Sequence[str]] = {
    "activities": ("activity_id",),
    "activity_countries": ("activity_id", "country_code"),
    "activity_regions": ("activity_id", "vocabulary", "region_code"),
    "activity_sectors": ("activity_id", "vocabulary", "code"),
    "participating_orgs": ("activity_id", "source_ref"),
    "transactions": ("activity_id", "source_ref", "transaction_id"),
    "budgets": ("activity_id", "source_ref", "budget_id"),
    "results": ("activity_id", "source_ref", "result_id"),
    "cd_priorities": ("country_code", "priority_id"),
    "partner_declarations": ("activity_id", "partner_org_ref", "period"),
    "sources": ("source_file",),
    "quarantine": ("source_file", "source_ref", "table", "rule", "field", "message"),
    "conformance": ("source_file", "check", "line", "rule", "message"),
}


def _sorted(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in _SORT_KEYS.get(table, ()) if k in frame.columns]
    if not keys or frame.empty:
        return frame.reset_index(drop=True)
    if "source_ref" in keys:
        natural = (
            frame["source_ref"]
            .astype("string")
            .str.replace(r"\d+", lambda m: m.group(0).zfill(8), regex=True)
        )
        ordered = frame.assign(_natural=natural).sort_values(
            [("_natural" if k == "source_ref" else k) for k in keys],
            kind="stable",
            na_position="first",
        )
        return ordered.drop(columns="_natural").reset_index(drop=True)
    return frame.sort_values(keys, kind="stable", na_position="first").reset_index(drop=True)


#: Tables that describe an activity: when a partner submission reports an
#: activity IATI publishes, these come from IATI alone.
_DESCRIPTIVE_TABLES = (
    "activities",
    "activity_countries",
    "activity_regions",
    "activity_sectors",
    "participating_orgs",
)
ALSO_IN_IATI_RULE = "activity_also_in_iati"


def _drop_cross_file_duplicates(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    activities = tables["activities"]
    if activities.empty or not activities["activity_id"].duplicated().any():
        return tables
    ranked = activities.assign(
        _not_iati=(activities["source"].astype("string") != "iati").fillna(True),
        _own=[
            not (isinstance(ref, str) and isinstance(aid, str) and aid.startswith(ref))
            for ref, aid in zip(
                activities["reporting_org_ref"], activities["activity_id"], strict=True
            )
        ],
        _updated=activities["last_updated"].fillna(pd.Timestamp(0, tz="UTC")),
    ).sort_values(
        ["activity_id", "_not_iati", "_own", "_updated", "source_file"],
        ascending=[True, True, True, False, True],
        kind="stable",
    )
    duplicate = ranked["activity_id"].duplicated(keep="first")
    kept_rows = ranked.loc[~duplicate].set_index("activity_id")
    kept = kept_rows["source_file"]
    extra = ranked.loc[duplicate, ["activity_id", "source_file", "source_ref", "source"]]
    merges = (
        (extra["source"].astype("string") == "partner_submission").fillna(False)
        & (extra["activity_id"].map(kept_rows["source"]).astype("string") == "iati").fillna(False)
    ).to_numpy()
    tables = _merge_submission_into_iati(tables, extra.loc[merges], kept)
    dropped = extra.loc[~merges]
    if dropped.empty:
        return tables
    drop_keys = set(zip(dropped["activity_id"], dropped["source_file"], strict=True))
    for table in IATI_TABLES:
        frame = tables[table]
        if frame.empty:
            continue
        mask = [
            (a, s) in drop_keys
            for a, s in zip(frame["activity_id"], frame["source_file"], strict=True)
        ]
        tables[table] = frame.loc[[not m for m in mask]].reset_index(drop=True)
    quarantine_rows = [
        {
            "source_file": row.source_file,
            "source_ref": row.source_ref,
            "table": "activities",
            "field": "activity_id",
            "rule": "duplicate_activity_across_files",
            "value": row.activity_id,
            "message": f"activity {row.activity_id!r} is also published in "
            f"{kept[row.activity_id]}, which is kept (an IATI publication over a "
            "submission, then the reporting organisation's own publication, else the "
            "most recently updated); this copy is not accepted",
            "severity": "error",
        }
        for row in dropped.itertuples(index=False)
    ]
    tables["quarantine"] = pd.concat(
        [tables["quarantine"], table_frame("quarantine", quarantine_rows)], ignore_index=True
    )
    sources = tables["sources"].copy()
    counts = dropped["source_file"].value_counts()
    for source_file, n in counts.items():
        index = sources.index[sources["source_file"] == source_file]
        sources.loc[index, "n_accepted"] -= n
        sources.loc[index, "n_quarantined"] += n
        for i in index:
            _add_reason(
                sources, i, f"{n} activities also published in another file (see quarantine)"
            )
            if sources.loc[i, "status"] == "ok":
                sources.loc[i, "status"] = "partial"
            if sources.loc[i, "n_accepted"] == 0:
                sources.loc[i, "status"] = "rejected"
    tables["sources"] = sources
    return tables


def _add_reason(sources: pd.DataFrame, index: Any, note: str) -> None:
    reason = sources.loc[index, "reason"]
    sources.loc[index, "reason"] = f"{reason}; {note}" if pd.notna(reason) else note


def _merge_submission_into_iati(
    tables: dict[str, pd.DataFrame], copies: pd.DataFrame, kept: pd.Series
) -> dict[str, pd.DataFrame]:
    """A partner submission's activities that IATI also publishes (``in_iati``).

    The record is accepted, not quarantined: IATI's activity row, countries,
    sectors and participating organisations stand and the submission's are set
    aside; the submission's budgets are set aside where IATI publishes budgets
    for the activity (one source per figure); its transactions, results and
    declarations stay, and the double-counting stage excludes each transaction
    whose type IATI also reports ("also reported in IATI"). A warning
    ``activity_also_in_iati`` per copy says so; ``duplication_pairs`` publishes
    the pair.
    """
    if copies.empty:
        return tables
    keys = set(zip(copies["activity_id"], copies["source_file"], strict=True))
    iati_budgets = set(
        tables["budgets"]
        .loc[(tables["budgets"]["source"].astype("string") == "iati").fillna(False).to_numpy()]
        .loc[:, "activity_id"]
    )
    budgets_set_aside: set[tuple[str, str]] = set()
    for table in (*_DESCRIPTIVE_TABLES, "budgets"):
        frame = tables[table]
        if frame.empty:
            continue
        mask = [
            (a, s) in keys and (table != "budgets" or a in iati_budgets)
            for a, s in zip(frame["activity_id"], frame["source_file"], strict=True)
        ]
        if table == "budgets":
            budgets_set_aside = {
                (a, s)
                for a, s, m in zip(frame["activity_id"], frame["source_file"], mask, strict=True)
                if m
            }
        tables[table] = frame.loc[[not m for m in mask]].reset_index(drop=True)
    rows = []
    for row in copies.itertuples(index=False):
        budget_note = (
            "its budget is set aside because IATI publishes budgets for it"
            if (row.activity_id, row.source_file) in budgets_set_aside
            else "its budget is kept (IATI publishes none)"
        )
        rows.append(
            {
                "source_file": row.source_file,
                "source_ref": row.source_ref,
                "table": "activities",
                "field": "activity_id",
                "rule": ALSO_IN_IATI_RULE,
                "value": row.activity_id,
                "message": f"activity {row.activity_id!r} is also published in IATI "
                f"({kept[row.activity_id]}): its title, dates, countries and sectors are "
                f"taken from IATI; {budget_note}; its disbursements count only where "
                "IATI reports no transaction of the same type (see "
                "transactions.exclusion_reason); its declarations and results are kept",
                "severity": "warning",
            }
        )
    tables["quarantine"] = pd.concat(
        [tables["quarantine"], table_frame("quarantine", rows)], ignore_index=True
    )
    sources = tables["sources"].copy()
    for source_file, n in copies["source_file"].value_counts().items():
        for i in sources.index[sources["source_file"] == source_file]:
            _add_reason(
                sources, i, f"{n} activities also published in IATI, merged (see quarantine)"
            )
    tables["sources"] = sources
    return tables


def harmonise_paths(
    paths: Sequence[Path],
    options: HarmoniseOptions,
    progress: Callable[[int, int, Path], None] | None = None,
    workers: int = 1,
) -> tuple[list[HarmonisedFile], dict[str, pd.DataFrame]]:
    """Harmonise files (folders are read for ``*.xml``) and combine them; with
    ``workers`` > 1 the files are shared out over that many processes."""
    files = discover_files(paths)
    names = unique_source_names(files)
    results = harmonise_many([(path, names[path]) for path in files], options, workers, progress)
    return results, combine(results)


# -- many files, in parallel -------------------------------------------------
_WORKER: dict[str, Any] = {}


def _start_worker(options: HarmoniseOptions) -> None:
    """Once per worker process: the options (reference data) and a compiled classifier."""
    _WORKER["options"] = options
    _WORKER["classifier"] = CdClassifier(options.rules)


def _harmonise_job(job: tuple[Path, str]) -> HarmonisedFile:
    path, name = job
    return harmonise_file(
        path, _WORKER["options"], source_file=name, classifier=_WORKER["classifier"]
    )


def harmonise_many(
    jobs: Sequence[tuple[Path, str]],
    options: HarmoniseOptions,
    workers: int = 1,
    progress: Callable[[int, int, Path], None] | None = None,
) -> list[HarmonisedFile]:
    """``harmonise_file`` for each (path, source_file name), in order.

    With ``workers`` > 1 and more than one file, a pool of that many processes
    does the work (started with ``spawn``, safe beside threads such as
    Dagster's); each worker receives the options once. Files are handed out one
    at a time, so a large file does not hold back the others. A file whose worker
    process dies, even when run again alone, is rejected as ``worker_died``
    (:mod:`assets.pool`).
    """
    if workers <= 1 or len(jobs) <= 1:
        _start_worker(options)
        results = []
        for index, job in enumerate(jobs, start=1):
            if progress is not None:
                progress(index, len(jobs), job[0])
            results.append(_harmonise_job(job))
        return results
    results = []
    for index, result in map_in_processes(
        _harmonise_job, jobs, workers, initializer=_start_worker, initargs=(options,)
    ):
        path, name = jobs[index]
        if progress is not None:
            progress(index + 1, len(jobs), path)
        if isinstance(result, WorkerDied):
            result = _died(path, name, result.message)
        results.append(result)
    return results


def _died(path: Path, name: str, message: str) -> HarmonisedFile:
    """The file whose worker process died: rejected, so that the others still count."""
    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    return _rejected(name, path.resolve().as_uri(), None, size, "worker_died", message, None, 0)


def discover_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders give their ``*.xml`` files (not recursive), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".xml")
            )
        else:
            found.append(path)
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def unique_source_names(files: Sequence[Path]) -> dict[Path, str]:
    """``source_file`` names: the file name, or ``folder/name`` where two files share one."""
    counts: dict[str, int] = {}
    for path in files:
        counts[path.name] = counts.get(path.name, 0) + 1
    return {
        path: path.name if counts[path.name] == 1 else f"{path.parent.name}/{path.name}"
        for path in files
    }
