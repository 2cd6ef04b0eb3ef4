"""The names beside the codes: each release's codelist tables and its organisations.

A data table holds codes (``transaction_type`` ``3``, ``country_code`` ``KE``) and
organisation identifiers; a release also carries what they mean, as tables of their
own (:data:`NAME_TABLES`, each a Table Schema in ``schema/``) that the data tables'
``foreignKeys`` point at. A codelist table holds every code of the codelist the run
read (its English and French names, its status) and every code the data uses that the
codelist lacks, flagged ``in_codelist`` false without a name: the quality report
already lists those codes, and the release stays whole (every foreign key found). The
``organisations`` table names every organisation identifier the data reports, with the
name and type the data gives it most often.

They are made when the release is made (:func:`write_name_tables`), in DuckDB from the
stored tables' Parquet files, and then published like every other table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa
from babel import Locale

from assets.harmonise.schema import NAME_TABLES
from assets.harmonise.store import copy_query
from assets.iati.codelists import Codelists
from assets.warehouse import quote, typed_select
from publish.files import parquet_relation
from publish.tables import StoredTables

_NAMES = "__codelist_names"
#: The columns of :data:`_NAMES`: a codelist table's, but for ``in_codelist``.
_COLUMNS = ("code", "name_en", "name_fr", "status")


@dataclass(frozen=True)
class CodeTable:
    """A codelist table: the codelists it lists (the first that has a code names it) and
    the data tables' columns whose codes it must hold."""

    codelists: tuple[str, ...]
    used_by: tuple[tuple[str, str], ...]
    #: CLDR's territory names (Babel) where the codelist has no French name.
    cldr_territories: bool = False


#: The data tables' organisation identifiers, and the name and type columns beside them.
ORGANISATION_COLUMNS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("activities", "reporting_org_ref", "reporting_org_name", "reporting_org_type"),
    ("participating_orgs", "org_ref", "org_name", "org_type"),
    ("transactions", "provider_org_ref", None, None),
    ("transactions", "receiver_org_ref", None, None),
    ("partner_declarations", "partner_org_ref", None, None),
    ("alignment_metrics", "partner_org_ref", None, None),
)

CODE_TABLES: dict[str, CodeTable] = {
    "countries": CodeTable(
        ("Country",),
        (
            ("activity_countries", "country_code"),
            ("transactions", "recipient_country"),
            ("cd_priorities", "country_code"),
            ("results", "country_code"),
            ("alignment_links", "country_code"),
            ("alignment_metrics", "country_code"),
            ("duplication_metrics", "country_code"),
            ("duplication_pairs", "country_code"),
        ),
        cldr_territories=True,
    ),
    "sectors": CodeTable(
        ("Sector", "SectorCategory"),
        (
            ("activity_sectors", "code"),
            ("transactions", "sector_code"),
            ("cd_priorities", "sector_code"),
            ("duplication_metrics", "sector_code"),
        ),
    ),
    "transaction_types": CodeTable(("TransactionType",), (("transactions", "transaction_type"),)),
    "aid_types": CodeTable(
        ("AidType",), (("transactions", "aid_type"), ("activities", "default_aid_type"))
    ),
    "finance_types": CodeTable(
        ("FinanceType",),
        (("transactions", "finance_type"), ("activities", "default_finance_type")),
    ),
    "flow_types": CodeTable(
        ("FlowType",), (("transactions", "flow_type"), ("activities", "default_flow_type"))
    ),
    "organisation_types": CodeTable(
        ("OrganisationType",),
        tuple((table, kind) for table, _, _, kind in ORGANISATION_COLUMNS if kind is not None),
    ),
}


def codelist_rows(
    spec: CodeTable, codelists: Codelists | None
) -> list[tuple[str, str | None, str | None, str]]:
    """(code, English name, French name, status) of every code of the table's codelists
    (the newest version of each; a code in two lists is named by the first)."""
    rows: dict[str, tuple[str, str | None, str | None, str]] = {}
    territories: Mapping[str, str] = Locale.parse("fr").territories if spec.cldr_territories else {}
    for name in spec.codelists:
        if codelists is None or not codelists.has(name):
            continue
        for item in codelists.items(name):
            french = item.names.get("fr") or territories.get(item.code)
            rows.setdefault(item.code, (item.code, item.names.get("en"), french, item.status))
    return [rows[code] for code in sorted(rows)]


def _present(stored: StoredTables, table: str) -> str | None:
    """The stored table as a relation, or None when the release has no file of it."""
    path = stored.path(table) if table in stored.names else None
    return None if path is None else parquet_relation(table, path)


def _used_codes(stored: StoredTables, columns: Sequence[tuple[str, str]]) -> str:
    """SQL: the distinct codes of ``columns`` (table, column) the stored tables hold."""
    parts = [
        f"SELECT {quote(column)} AS code FROM {relation}"
        for table, column in columns
        if (relation := _present(stored, table)) is not None
    ]
    if not parts:
        return "SELECT CAST(NULL AS VARCHAR) AS code WHERE false"
    # an empty cell is a missing value (as the CSV files and Frictionless read it)
    return f"SELECT DISTINCT code FROM ({' UNION ALL '.join(parts)}) WHERE code <> ''"


def code_table_sql(stored: StoredTables, spec: CodeTable) -> str:
    """SQL: the codelist's codes (registered as :data:`_NAMES`), then the data's codes the
    codelist lacks (``in_codelist`` false, no names)."""
    return f"""
        SELECT code, name_en, name_fr, status, true AS in_codelist FROM {_NAMES}
        UNION ALL
        SELECT code, NULL, NULL, NULL, false FROM ({_used_codes(stored, spec.used_by)})
        WHERE code NOT IN (SELECT code FROM {_NAMES})"""


def organisations_sql(stored: StoredTables) -> str:
    """SQL: every organisation identifier the stored tables hold, with the name and type
    reported most often (ties: the first in order)."""
    parts = []
    for table, ref, name, kind in ORGANISATION_COLUMNS:
        relation = _present(stored, table)
        if relation is None:
            continue
        name_sql = quote(name) if name else "CAST(NULL AS VARCHAR)"
        kind_sql = quote(kind) if kind else "CAST(NULL AS VARCHAR)"
        parts.append(
            f"SELECT {quote(ref)} AS ref, {name_sql} AS name, {kind_sql} AS kind FROM {relation}"
        )
    if not parts:
        return "SELECT NULL AS org_ref, NULL AS name, NULL AS org_type WHERE false"
    # an empty identifier (a metric of all partners together) names no organisation
    seen = f"(SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE ref <> '')"
    return f"""
        WITH seen AS {seen},
        names AS (SELECT ref, name, count(*) AS n FROM seen WHERE name <> '' GROUP BY ALL),
        kinds AS (SELECT ref, kind, count(*) AS n FROM seen WHERE kind <> '' GROUP BY ALL)
        SELECT refs.ref AS org_ref,
            (SELECT first(name ORDER BY n DESC, name) FROM names WHERE names.ref = refs.ref)
                AS name,
            (SELECT first(kind ORDER BY n DESC, kind) FROM kinds WHERE kinds.ref = refs.ref)
                AS org_type
        FROM (SELECT DISTINCT ref FROM seen) AS refs"""


def write_name_tables(
    con: duckdb.DuckDBPyConnection,
    stored: StoredTables,
    codelists: Codelists | None,
    folder: Path,
) -> StoredTables:
    """Write every table of :data:`NAME_TABLES` as Parquet in ``folder`` (with the
    schema's columns and types), from ``codelists`` and the codes ``stored`` holds; the
    stored tables with them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for table, spec in CODE_TABLES.items():
        rows = codelist_rows(spec, codelists)
        names = pa.table(
            {c: pa.array([row[i] for row in rows], pa.string()) for i, c in enumerate(_COLUMNS)}
        )
        con.register(_NAMES, names)
        try:
            paths[table] = folder / f"{table}.parquet"
            copy_query(con, typed_select(table, f"({code_table_sql(stored, spec)})"), paths[table])
        finally:
            con.unregister(_NAMES)
    paths["organisations"] = folder / "organisations.parquet"
    copy_query(
        con, typed_select("organisations", f"({organisations_sql(stored)})"), paths["organisations"]
    )
    return replace(
        stored,
        names=(*[n for n in stored.names if n not in paths], *NAME_TABLES),
        elsewhere={**stored.elsewhere, **paths},
    )
