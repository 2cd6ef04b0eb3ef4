"""``cdcompact.duckdb``: every table of a release in one DuckDB database file, for SQL.

Written from the release's own Parquet files (:func:`write_database`), each table with
the types of its Table Schema, its primary key, and comments (``COMMENT ON TABLE`` and
``COMMENT ON COLUMN``) from the schema's descriptions, so ``duckdb cdcompact.duckdb``
then ``SELECT comment FROM duckdb_columns()`` explains the data as the data dictionary
does. Views (:data:`NAMED_VIEWS`) put the names beside the codes (``transactions_named``:
each transaction with the names of its type, aid, finance and flow types, sector,
recipient country, provider and receiver).

Constraints: each table's primary key is declared (the release's verification has
already found it unique and complete, :mod:`publish.verify`). DuckDB keeps an index for
each (an ART index), built within the warehouse's ``memory_limit`` and
``temp_directory``: a million synthetic transactions took 11 s, the whole process at most
433 MB with the default ``memory_limit`` of 512MB, for a 151 MB file (2026-12-07).
Foreign keys are not declared: DuckDB would check every one on every insert (slow at a
million rows) and then refuse a reader's updates and deletes of a referenced row, while
the release's verification has already found every reference; the ``*_named`` views
and the data dictionary say how the tables join.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from assets.harmonise.schema import arrow_schema, table_schema
from assets.warehouse import duckdb_type, literal, quote, set_up

#: The file's name in each release folder.
DATABASE = "cdcompact.duckdb"

#: A view of a table with names beside its codes: the joins, each (the table's column,
#: the name table, the prefix of the added columns: ``<prefix>_name`` and, from a
#: codelist table, ``<prefix>_name_fr``).
NAMED_VIEWS: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    "transactions_named": (
        "transactions",
        (
            ("transaction_type", "transaction_types", "transaction_type"),
            ("aid_type", "aid_types", "aid_type"),
            ("finance_type", "finance_types", "finance_type"),
            ("flow_type", "flow_types", "flow_type"),
            ("sector_code", "sectors", "sector"),
            ("recipient_country", "countries", "recipient_country"),
            ("provider_org_ref", "organisations", "provider_org"),
            ("receiver_org_ref", "organisations", "receiver_org"),
        ),
    ),
    "activities_named": (
        "activities",
        (
            ("reporting_org_type", "organisation_types", "reporting_org_type"),
            ("default_aid_type", "aid_types", "default_aid_type"),
            ("default_finance_type", "finance_types", "default_finance_type"),
            ("default_flow_type", "flow_types", "default_flow_type"),
        ),
    ),
    "activity_countries_named": (
        "activity_countries",
        (("country_code", "countries", "country"),),
    ),
    "participating_orgs_named": (
        "participating_orgs",
        (("org_type", "organisation_types", "org_type"),),
    ),
    "alignment_metrics_named": (
        "alignment_metrics",
        (
            ("country_code", "countries", "country"),
            ("partner_org_ref", "organisations", "partner_org"),
        ),
    ),
    "duplication_metrics_named": (
        "duplication_metrics",
        (
            ("country_code", "countries", "country"),
            ("sector_code", "sectors", "sector"),
        ),
    ),
}


def create_table_sql(table: str) -> str:
    """``CREATE TABLE`` with the schema's columns, types and primary key."""
    columns = [f"{quote(f.name)} {duckdb_type(f.type)}" for f in arrow_schema(table)]
    key = table_schema(table).get("primaryKey") or []
    if key:
        columns.append(f"PRIMARY KEY ({', '.join(quote(name) for name in key)})")
    return f"CREATE TABLE {quote(table)} ({', '.join(columns)})"


def comments_sql(table: str) -> list[str]:
    """``COMMENT ON`` the table and each of its columns: the schema's descriptions."""
    schema = table_schema(table)
    about = f"{schema.get('title', table)}: {schema.get('description', '')}"
    statements = [f"COMMENT ON TABLE {quote(table)} IS {literal(about)}"]
    for item in schema["fields"]:
        statements.append(
            f"COMMENT ON COLUMN {quote(table)}.{quote(item['name'])} "
            f"IS {literal(item.get('description', ''))}"
        )
    return statements


def named_view_sql(view: str, tables: set[str]) -> str | None:
    """``CREATE VIEW`` of one of :data:`NAMED_VIEWS`; None when the release lacks one of
    its tables."""
    base, joins = NAMED_VIEWS[view]
    if base not in tables or any(names not in tables for _, names, _ in joins):
        return None
    added = []
    joined = []
    for number, (column, names, prefix) in enumerate(joins):
        alias = f"n{number}"
        if names == "organisations":
            added.append(f"{alias}.name AS {quote(prefix + '_name')}")
            key = "org_ref"
        else:
            added.append(f"{alias}.name_en AS {quote(prefix + '_name')}")
            added.append(f"{alias}.name_fr AS {quote(prefix + '_name_fr')}")
            key = "code"
        joined.append(f"LEFT JOIN {quote(names)} AS {alias} ON {alias}.{key} = t.{quote(column)}")
    return (
        f"CREATE VIEW {quote(view)} AS SELECT t.*, {', '.join(added)} "
        f"FROM {quote(base)} AS t {' '.join(joined)}"
    )


def write_database(parquet: Mapping[str, Path], path: Path, config: Mapping[str, Any]) -> None:
    """Write ``path``: every table of ``parquet`` (table -> the release's Parquet file) in
    the rows' order, with its comments, then the views whose tables are all there.
    ``config``: the warehouse's DuckDB settings (memory limit, spill folder, threads)."""
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path), config=dict(config))
    try:
        set_up(con)
        # the rows keep the published files' order (the warehouse's connections drop it)
        con.execute("SET preserve_insertion_order = true")
        for table, file in sorted(parquet.items()):
            con.execute(create_table_sql(table))
            columns = ", ".join(quote(f.name) for f in arrow_schema(table))
            con.execute(
                f"INSERT INTO {quote(table)} SELECT {columns} "
                f"FROM read_parquet({literal(str(file))})"
            )
            for statement in comments_sql(table):
                con.execute(statement)
        for view in NAMED_VIEWS:
            view_sql = named_view_sql(view, set(parquet))
            if view_sql is not None:
                con.execute(view_sql)
                base = NAMED_VIEWS[view][0]
                con.execute(
                    f"COMMENT ON VIEW {quote(view)} IS "
                    f"{literal(f'{base} with the names of its codes beside them')}"
                )
        con.execute("CHECKPOINT")
    finally:
        con.close()
