"""The Table Schemas in schema/ against the schema specification, and the frames built from them.

The specification (shared docs/cd-results-schema.md) names every table and
field; schema/*.json is its machine-readable form, which the harmonisers, the
data dictionary and the published datapackage.json are derived from.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from frictionless import Schema

from assets.harmonise.schema import (
    NAME_TABLES,
    ArrowTables,
    arrow_schema,
    frame_of_arrow,
    schema_version,
    table_arrow,
    table_frame,
)
from tests.conftest import PROJECT_ROOT, SHARED

SCHEMA_DIR = PROJECT_ROOT / "schema"
SPEC = SHARED / "docs" / "cd-results-schema.md"
METRICS_SPEC = SHARED / "docs" / "metrics.md"

PROVENANCE = ["source", "source_file", "source_sha256", "source_ref"]
#: The tables read from the inputs (as opposed to derived): every row says where it came from.
HARMONISED_TABLES = {
    "activities",
    "activity_countries",
    "activity_sectors",
    "participating_orgs",
    "transactions",
    "budgets",
    "results",
    "cd_priorities",
    "partner_declarations",
}
#: Fields the schema has beyond the specification's lists (each explained in its description).
#: Fields the project adds to a specified table (each a MINOR schema change):
#: alignment_metrics shows the coverage the issue and metrics.md ask for.
ADDITIONS = {
    "budgets": ["budget_id", "usd_rate_period"],
    "alignment_metrics": ["n_activities_eligible", "coverage"],
    # issue 19: what each share was computed from, and the region a transaction names
    "activity_countries": ["share_basis"],
    "activity_sectors": ["share_basis"],
    "transactions": ["recipient_region", "recipient_region_vocabulary"],
    # issue 23: a key for the CHANGELOG to match rows by
    "participating_orgs": ["position"],
    # issue 24: what happened on the wire, and when the source was asked, apart from status
    "sources": ["checked_at", "download"],
}
#: Codes the project adds to a specified list (each a MINOR schema change).
CODE_ADDITIONS: dict[tuple[str, str], list[str]] = {}
#: Codes of a specified list the project no longer uses (each a MAJOR schema change).
CODE_REMOVALS = {
    # issue 24: a file's status says what its content is; ``download`` says it was only
    # revalidated (what ``unchanged`` said), so a rejected file stays rejected
    ("sources", "status"): ["unchanged"],
}
FRICTIONLESS_TYPES = {"string", "integer", "number", "boolean", "date", "datetime", "year"}
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


@dataclass
class SpecTable:
    """What the specification says about one table."""

    name: str
    fields: list[str] = field(default_factory=list)
    #: field -> codes the specification lists in parentheses after it
    codes: dict[str, list[str]] = field(default_factory=dict)
    #: field -> the text in parentheses after it (e.g. "bool", "0..1, rebased ...")
    notes: dict[str, str] = field(default_factory=dict)
    has_provenance: bool = False


def _parse_section(name: str, text: str) -> SpecTable:
    """Backticked identifiers outside parentheses are fields; inside, codes of the field before.

    Backticked text that is not an identifier (`metrics.md`, formulas) is prose.
    """
    table = SpecTable(name=name, has_provenance=bool(re.search(r"\bprovenance\b", text)))
    depth = 0
    last_field: str | None = None
    group_start = 0
    for match in re.finditer(r"`[^`]*`|\(|\)", text):
        token = match.group()
        if token == "(":
            if depth == 0:
                group_start = match.end()
            depth += 1
        elif token == ")":
            depth -= 1
            assert depth >= 0, f"{name}: unbalanced parentheses in the specification"
            if depth == 0 and last_field is not None:
                table.notes.setdefault(last_field, text[group_start : match.start()].strip())
        else:
            word = token.strip("`")
            if not IDENTIFIER.fullmatch(word):
                continue
            if depth == 0:
                last_field = word
                if word not in table.fields:
                    table.fields.append(word)
            elif last_field is not None:
                table.codes.setdefault(last_field, []).append(word)
    assert depth == 0, f"{name}: unbalanced parentheses in the specification"
    return table


@cache
def spec_tables() -> dict[str, SpecTable]:
    """Every `### name` section of the specification, parsed."""
    text = SPEC.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    tables: dict[str, SpecTable] = {}
    for section in sections:
        heading, _, body = section.partition("\n")
        body = re.split(r"^#", body, flags=re.MULTILINE)[0]
        name = heading.split()[0]
        tables[name] = _parse_section(name, body)
    return tables


@cache
def spec_provenance() -> dict[str, list[str]]:
    """The specification's provenance table: field -> backticked codes in its meaning."""
    text = SPEC.read_text(encoding="utf-8")
    section = text.split("## Provenance", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = re.findall(r"`([a-z_]+)`", cells[1])
    return rows


@cache
def schemas() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.json"))
        if path.name != "schema-version.json"
    }


def fields_of(table: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schemas()[table]["fields"]}


def test_the_specification_parses_into_tables() -> None:
    """Guards the parser itself: if the headings or field lists stop parsing, say so."""
    tables = spec_tables()
    assert len(tables) == 15
    assert tables["activities"].fields[:3] == ["activity_id", "title", "description"]
    assert tables["activities"].codes["modality"][0] == "training"
    assert tables["activities"].notes["is_cd"] == "bool"
    assert spec_provenance()["source"] == ["iati", "country_report", "partner_submission"]


#: Tables the project adds to the specification, and why.
PROJECT_TABLES = {
    # IATI XML Schema and codelist findings per file, with line numbers (issue 6):
    # about files as published, not records, so neither quarantine nor sources.
    "conformance",
    # recipient regions beside the countries (issue 19): IATI's recipient-region, whose
    # share the countries' shares leave (together they sum to 1 per activity)
    "activity_regions",
    # the names beside the codes (issue 23): the codelists a release used, and its
    # organisations, made when publishing (publish/names.py) so every code can be named
    *NAME_TABLES,
}


def test_every_specified_table_has_a_schema_file_and_no_other() -> None:
    assert sorted(schemas()) == sorted([*spec_tables(), *PROJECT_TABLES])


@pytest.mark.parametrize("table", sorted(spec_tables()))
def test_fields_are_the_specified_ones_in_the_specified_order(table: str) -> None:
    spec = spec_tables()[table]
    names = [f["name"] for f in schemas()[table]["fields"]]
    provenance = PROVENANCE if table in HARMONISED_TABLES else []
    body = names[: len(names) - len(provenance)]
    assert names[len(body) :] == provenance, f"{table}: provenance must come last, in order"
    missing = [name for name in spec.fields if name not in body]
    assert not missing, f"{table}: fields named in the specification are missing: {missing}"
    extra = sorted(set(body) - set(spec.fields) - set(ADDITIONS.get(table, [])))
    assert not extra, f"{table}: fields not in the specification: {extra}"
    assert [n for n in body if n in spec.fields] == spec.fields, f"{table}: field order"


@pytest.mark.parametrize("table", sorted(spec_tables()))
def test_codes_listed_in_the_specification_are_what_the_schema_allows(table: str) -> None:
    spec = spec_tables()[table]
    table_fields = fields_of(table)
    for name, listed in spec.codes.items():
        codes = [c for c in listed if c not in table_fields]
        if not codes:
            continue  # the parentheses only mention other fields
        constraints = table_fields[name].get("constraints", {})
        if "enum" in constraints:
            added = CODE_ADDITIONS.get((table, name), [])
            removed = CODE_REMOVALS.get((table, name), [])
            expected = [c for c in codes if c not in removed] + added
            assert sorted(constraints["enum"]) == sorted(expected), f"{table}.{name}"
        else:
            assert "pattern" in constraints, f"{table}.{name}: codes {codes} but no constraint"
            pattern = re.compile(constraints["pattern"])
            for code in codes:
                assert pattern.fullmatch(code), f"{table}.{name}: pattern rejects {code!r}"
            assert pattern.fullmatch(";".join(codes)), f"{table}.{name}: a list of codes"
            assert not pattern.fullmatch("not_a_code"), f"{table}.{name}: pattern too lax"


@pytest.mark.parametrize("table", sorted(spec_tables()))
def test_types_and_ranges_noted_in_the_specification(table: str) -> None:
    spec = spec_tables()[table]
    table_fields = fields_of(table)
    for name, note in spec.notes.items():
        if name not in table_fields:
            continue
        schema_field = table_fields[name]
        if re.match(r"bool\b", note):
            assert schema_field["type"] == "boolean", f"{table}.{name}"
        if re.match(r"int\b", note):
            assert schema_field["type"] == "integer", f"{table}.{name}"
        if note.startswith("0..1"):
            constraints = schema_field.get("constraints", {})
            assert schema_field["type"] == "number", f"{table}.{name}"
            assert (constraints.get("minimum"), constraints.get("maximum")) == (0, 1), name


def test_partner_declaration_flags_are_booleans_where_empty_means_unknown() -> None:
    declarations = fields_of("partner_declarations")
    flags = [
        "uses_country_pfm",
        "uses_country_procurement",
        "uses_country_me",
        "on_budget",
        "results_from_country_framework",
        "coordinated",
        "joint_programme",
        "parallel_piu",
    ]
    for name in flags:
        assert declarations[name]["type"] == "boolean", name
        assert "required" not in declarations[name].get("constraints", {}), name
    assert "unknown" in schemas()["partner_declarations"]["description"]


@pytest.mark.parametrize("table", sorted(spec_tables()))
def test_every_field_has_a_type_and_a_real_description(table: str) -> None:
    descriptor = schemas()[table]
    assert descriptor["name"] == table
    assert descriptor.get("title")
    assert len(descriptor.get("description", "").split()) >= 8, f"{table}: table description"
    assert descriptor["missingValues"] == [""]
    names = [f["name"] for f in descriptor["fields"]]
    assert len(names) == len(set(names)), f"{table}: duplicate field names"
    for schema_field in descriptor["fields"]:
        where = f"{table}.{schema_field['name']}"
        assert IDENTIFIER.fullmatch(schema_field["name"]), f"{where}: not snake_case"
        assert schema_field.get("type") in FRICTIONLESS_TYPES, where
        description = schema_field.get("description", "")
        assert len(description.split()) >= 4, f"{where}: description is not a sentence"
        assert description.rstrip().endswith("."), f"{where}: description is not a sentence"


@pytest.mark.parametrize("table", sorted(spec_tables()))
def test_frictionless_accepts_the_schema(table: str) -> None:
    path = SCHEMA_DIR / f"{table}.json"
    descriptor = json.loads(path.read_text(encoding="utf-8"))
    errors = [error.message for error in Schema.metadata_validate(descriptor)]
    assert errors == []
    schema = Schema.from_descriptor(str(path))
    assert schema.field_names == [f["name"] for f in descriptor["fields"]]


def test_frictionless_would_report_a_broken_schema() -> None:
    """The metadata check above can fail: a string where Frictionless wants a list."""
    broken = {"fields": [{"name": "a", "type": "string"}], "primaryKey": "a"}
    assert list(Schema.metadata_validate(broken))


@pytest.mark.parametrize("table", sorted(spec_tables()))
def test_primary_and_foreign_keys_name_existing_fields_and_tables(table: str) -> None:
    descriptor = schemas()[table]
    table_fields = fields_of(table)
    for name in descriptor.get("primaryKey", []):
        assert name in table_fields, f"{table}: primary key field {name} does not exist"
        assert table_fields[name].get("constraints", {}).get("required"), f"{table}.{name}"
    for foreign_key in descriptor.get("foreignKeys", []):
        reference = foreign_key["reference"]
        target = reference["resource"]
        assert target in schemas(), f"{table}: foreign key to unknown table {target}"
        target_fields = fields_of(target)
        assert len(foreign_key["fields"]) == len(reference["fields"])
        for own, theirs in zip(foreign_key["fields"], reference["fields"], strict=True):
            assert own in table_fields, f"{table}: foreign key field {own} does not exist"
            assert theirs in target_fields, f"{table}: {target}.{theirs} does not exist"
            assert table_fields[own]["type"] == target_fields[theirs]["type"], f"{table}.{own}"
        assert reference["fields"] == schemas()[target].get("primaryKey"), (
            f"{table}: foreign key must reference the primary key of {target}"
        )


def test_codes_point_at_the_name_tables() -> None:
    """Each code with a codelist, and each organisation identifier, refers to the table
    that names it (issue 23)."""
    named = {
        (table, fk["fields"][0]): fk["reference"]["resource"]
        for table, descriptor in schemas().items()
        for fk in descriptor.get("foreignKeys", [])
        if fk["reference"]["resource"] in NAME_TABLES
    }
    assert named[("transactions", "transaction_type")] == "transaction_types"
    assert named[("transactions", "recipient_country")] == "countries"
    assert named[("activities", "default_finance_type")] == "finance_types"
    assert named[("participating_orgs", "org_type")] == "organisation_types"
    assert named[("alignment_metrics", "partner_org_ref")] == "organisations"
    for table in NAME_TABLES:
        fields = schemas()[table]["fields"]
        assert all(f.get("description") for f in fields), table


def test_child_tables_point_at_activities() -> None:
    for table in sorted(HARMONISED_TABLES - {"activities", "cd_priorities"}):
        targets = [fk["reference"]["resource"] for fk in schemas()[table]["foreignKeys"]]
        assert "activities" in targets, table
    assert {fk["reference"]["resource"] for fk in schemas()["alignment_links"]["foreignKeys"]} == {
        "activities",
        "cd_priorities",
        "countries",
    }
    assert schemas()["quarantine"]["foreignKeys"][0]["reference"]["resource"] == "sources"


def test_tables_without_primary_key_explain_why() -> None:
    keyless = sorted(t for t, d in schemas().items() if not d.get("primaryKey"))
    assert keyless == [
        "alignment_metrics",
        "conformance",
        "duplication_metrics",
        "quarantine",
    ]
    for table in ["alignment_metrics", "conformance", "duplication_metrics"]:
        assert "primary key" in schemas()[table]["description"], table


def test_provenance_fields_are_on_the_harmonised_tables_exactly() -> None:
    spec = spec_provenance()
    assert list(spec) == PROVENANCE
    tables_saying_provenance = {t for t, s in spec_tables().items() if s.has_provenance}
    assert tables_saying_provenance <= HARMONISED_TABLES
    reference = [fields_of("activities")[name] for name in PROVENANCE]
    for table in sorted(spec_tables()):
        table_fields = fields_of(table)
        if table not in HARMONISED_TABLES:
            # derived tables (sources, quarantine) may name a source file, not carry provenance
            assert not set(PROVENANCE) <= set(table_fields), table
            continue
        assert [table_fields.get(name) for name in PROVENANCE] == reference, table
    source, _, sha256, _ = reference
    assert all(f["constraints"]["required"] for f in reference)
    assert source["constraints"]["enum"] == spec["source"]
    assert fields_of("sources")["source"]["constraints"]["enum"] == spec["source"]
    assert re.fullmatch(sha256["constraints"]["pattern"], "ab" * 32)
    assert not re.fullmatch(sha256["constraints"]["pattern"], "AB" * 32)


def test_alignment_metric_codes_are_the_documented_metrics() -> None:
    text = METRICS_SPEC.read_text(encoding="utf-8")
    alignment = text.split("## Alignment", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", alignment, flags=re.MULTILINE)
    assert len(documented) == 12
    metric = fields_of("alignment_metrics")["metric"]
    assert metric["constraints"]["enum"] == documented
    for code in documented:
        assert f"`{code}`" in metric["description"], f"metric {code} is not described"


def test_money_and_rate_fields() -> None:
    for table in ["transactions", "budgets"]:
        money = fields_of(table)
        assert money["value"]["type"] == money["value_usd"]["type"] == "number"
        period = re.compile(money["usd_rate_period"]["constraints"]["pattern"])
        assert period.fullmatch("2024-03")
        assert not period.fullmatch("2024-03-01")
        currency = re.compile(money["currency"]["constraints"]["pattern"])
        assert currency.fullmatch("XDR")
        assert not currency.fullmatch("usd")
    type_description = fields_of("transactions")["transaction_type"]["description"]
    for letter, code in [("IF", 1), ("C", 2), ("D", 3), ("E", 4), ("QP", 8), ("CG", 10)]:
        assert f"{letter}→{code}" in type_description


def test_the_schema_version_is_4_0_0_semver() -> None:
    """1.1.0: the conformance table was added (MINOR); 1.2.0: alignment_metrics got
    n_activities_eligible and coverage (MINOR: fields added, none renamed); 2.0.0:
    activity_regions, share_basis and the transactions' region were added, and a
    country's share is now rebased with the activity's regions (MAJOR: the meaning of
    activity_countries.share changed); 2.1.0: sources.status may be ``stale`` (MINOR:
    a value added, nothing valid before becomes invalid); 2.1.1: the descriptions say
    that alignment_metrics has a row only where the metric measured something and that
    an IATI result takes its activity's only country (PATCH: nothing valid changes); 2.2.0:
    the codelist tables and ``organisations``, with foreign keys from the codes to them
    (MINOR: tables added; a release holds every code the data uses, so no data valid
    before becomes invalid); 3.0.0: transactions.transaction_id
    is the transaction's ref, else its activity and position, instead of a hash of its
    content, and participating_orgs got ``position`` and the key [activity_id, position]
    (MAJOR: the meaning of a key changed, and a release's rows match an earlier one's
    by other keys); 4.0.0: sources.status says what a file's content is (``ok``,
    ``partial``, ``rejected``), no longer ``unchanged`` or ``stale``; what happened on the
    wire is in the new ``download`` (``downloaded``, ``revalidated``, ``kept``), and
    ``checked_at`` (when the source was asked) is apart from ``fetched_at`` (when the bytes
    were downloaded) (MAJOR: values removed and a field's meaning changed)."""
    data = json.loads((SCHEMA_DIR / "schema-version.json").read_text(encoding="utf-8"))
    assert SEMVER.fullmatch(data["schema_version"])
    assert data["schema_version"] == "4.0.0"
    assert "MAJOR" in data["description"]
    assert "MINOR" in data["description"]
    assert schema_version(SCHEMA_DIR) == "4.0.0"
    status = next(
        f
        for f in json.loads((SCHEMA_DIR / "sources.json").read_text())["fields"]
        if f["name"] == "status"
    )
    assert status["constraints"]["enum"] == ["ok", "partial", "rejected"]
    regions = json.loads((SCHEMA_DIR / "activity_regions.json").read_text())
    assert regions["primaryKey"] == ["activity_id", "vocabulary", "region_code"]
    fields = [
        f["name"] for f in json.loads((SCHEMA_DIR / "alignment_metrics.json").read_text())["fields"]
    ]
    assert fields[-4:] == ["n_activities", "n_activities_eligible", "coverage", "method_version"]


# ----------------------------------------------------------- typed frames


def test_table_frame_has_exactly_the_schema_columns_in_order() -> None:
    frame = table_frame("activities", [{"activity_id": "XM-DAC-41114-1", "is_cd": True}])
    assert list(frame.columns) == [f["name"] for f in schemas()["activities"]["fields"]]
    assert frame.loc[0, "activity_id"] == "XM-DAC-41114-1"
    assert pd.isna(frame.loc[0, "title"])


def test_table_frame_leaves_a_field_empty_when_a_record_lacks_it() -> None:
    """Not the text "nan": pandas fills a key missing from one record with NaN."""
    frame = table_frame(
        "activities", [{"activity_id": "A1", "title": "Audit"}, {"activity_id": "A2"}]
    )
    assert frame.loc[0, "title"] == "Audit"
    assert pd.isna(frame.loc[1, "title"])


def test_table_frame_rejects_a_field_not_in_the_schema() -> None:
    with pytest.raises(ValueError, match="titel"):
        table_frame("activities", [{"activity_id": "A1", "titel": "typo"}])


def test_table_frame_types_dates_booleans_and_numbers() -> None:
    frame = table_frame(
        "transactions",
        [
            {
                "transaction_id": "t1",
                "activity_id": "A1",
                "transaction_type": 3,
                "transaction_date": "2024-03-31",
                "value": "1500.5",
                "counts_toward_totals": True,
                "humanitarian": None,
            },
            {
                "transaction_id": "t2",
                "activity_id": "A1",
                "transaction_type": "1",
                "transaction_date": None,
                "value": -20,
                "counts_toward_totals": False,
                "humanitarian": True,
            },
        ],
    )
    assert frame.loc[0, "transaction_date"] == dt.date(2024, 3, 31)
    assert isinstance(frame.loc[0, "transaction_date"], dt.date)
    assert frame.loc[1, "transaction_date"] is None
    assert frame["counts_toward_totals"].dtype == pd.BooleanDtype()
    assert frame["humanitarian"].dtype == pd.BooleanDtype()
    assert frame["counts_toward_totals"].tolist() == [True, False]
    assert pd.isna(frame.loc[0, "humanitarian"])
    assert frame["value"].dtype == pd.Float64Dtype()
    assert frame["value"].tolist() == [1500.5, -20.0]
    assert frame["transaction_type"].tolist() == ["3", "1"]  # codes stay strings


def test_table_frame_types_integers_and_datetimes() -> None:
    frame = table_frame(
        "activities",
        [{"activity_id": "A1", "hierarchy": 2, "last_updated": "2024-05-01T10:00:00+02:00"}],
    )
    assert frame["hierarchy"].dtype == pd.Int64Dtype()
    assert frame.loc[0, "hierarchy"] == 2
    assert frame.loc[0, "last_updated"] == pd.Timestamp("2024-05-01T08:00:00", tz="UTC")


def test_empty_frame_still_has_typed_columns() -> None:
    frame = table_frame("sources", [])
    assert len(frame) == 0
    assert list(frame.columns) == [f["name"] for f in schemas()["sources"]["fields"]]
    assert frame["n_records"].dtype == pd.Int64Dtype()


TYPED_AND_LENIENT = [
    # typed values: Arrow converts them directly
    [{"transaction_id": "t1", "activity_id": "A1", "value": 1.5, "humanitarian": None}],
    # a number as text and a date as text: the lenient path types them
    [
        {"transaction_id": "t1", "activity_id": "A1", "value": "1500.5"},
        {"transaction_id": "t2", "transaction_date": "2024-03-31", "value": float("nan")},
    ],
    [],
]


@pytest.mark.parametrize("records", TYPED_AND_LENIENT, ids=["typed", "lenient", "empty"])
def test_table_arrow_is_table_frame_without_pandas(records: list[dict[str, Any]]) -> None:
    arrow = table_arrow("transactions", records)
    assert arrow.schema == arrow_schema("transactions")
    assert arrow.num_rows == len(records)
    pd.testing.assert_frame_equal(
        frame_of_arrow(arrow), table_frame("transactions", records), check_dtype=True
    )
    if records:
        assert arrow.column("value").null_count == (1 if len(records) == 2 else 0)  # NaN: empty


def test_table_arrow_rejects_a_field_not_in_the_schema_on_either_path() -> None:
    with pytest.raises(ValueError, match="titel"):
        table_arrow("activities", [{"activity_id": "A1", "titel": "typo"}])
    with pytest.raises(ValueError, match="titel"):
        table_arrow("activities", [{"activity_id": "A1", "hierarchy": "2", "titel": "typo"}])


def test_arrow_tables_become_frames_when_read_and_are_written_as_they_are(
    tmp_path: Path,
) -> None:
    from assets.harmonise.store import read_table, write_tables

    records: list[dict[str, Any]] = [
        {"activity_id": "A1", "hierarchy": 2, "is_cd": True},
        {"activity_id": "A2"},
    ]
    tables = ArrowTables({"activities": table_arrow("activities", records)})
    assert tables.rows("activities") == 2
    assert list(tables) == ["activities"]
    frame = tables["activities"]
    assert tables["activities"] is frame  # converted once
    pd.testing.assert_frame_equal(frame, table_frame("activities", records))
    written = write_tables(tables, tmp_path / "arrow")["activities"]
    plain = write_tables({"activities": frame}, tmp_path / "pandas")["activities"]
    pd.testing.assert_frame_equal(read_table("activities", written), frame)
    assert read_table("activities", written).equals(read_table("activities", plain))
