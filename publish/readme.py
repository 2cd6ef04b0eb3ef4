"""What a release folder says about itself for people: ``README.md`` and ``CITATION.cff``.

The README lists the tables and shows how to load them, in SQL (the DuckDB CLI on
``cdcompact.duckdb``), Python (pandas on the CSV files with the schema's types, pandas
on Parquet, duckdb, frictionless) and R (duckdb, arrow, readr with ``col_types``). The
CSV examples spell out each column's type from the Table Schema: read without them,
pandas and DuckDB guess, and turn codes such as ``transaction_type`` into integers and
``iati_version`` into a float, which then no longer join with the Parquet files. The
Python examples are run against a real release by the tests
(tests/unit/test_release_names.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from assets.harmonise.schema import field_types, table_schema
from publish.database import DATABASE

if TYPE_CHECKING:
    from publish.release import ReleaseOptions

#: The tables the examples load, beside ``transactions_named``.
EXAMPLE_TABLES = ("transactions", "activities")

_PANDAS = {"string": "string", "integer": "Int64", "year": "Int64", "number": "Float64"}
_DUCKDB = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "year": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "TIMESTAMP WITH TIME ZONE",
}
_READR = {
    "integer": "readr::col_integer()",
    "year": "readr::col_integer()",
    "number": "readr::col_double()",
    "boolean": "readr::col_logical()",
    "date": "readr::col_date()",
    "datetime": "readr::col_datetime()",
}


def release_url(base_url: str | None, version: str) -> str | None:
    """Where the release folder is published: ``<base_url>/releases/<version>/``."""
    return None if not base_url else f"{base_url.rstrip('/')}/releases/{version}/"


def _pandas_csv(table: str) -> str:
    """pandas reading a table's CSV file with the schema's types (an empty cell missing,
    nothing else: ``NA`` is Namibia)."""
    types = field_types(table)
    dtypes = "\n".join(
        f'        "{name}": "{"boolean" if kind == "boolean" else _PANDAS[kind]}",'
        for name, kind in types.items()
        if kind in _PANDAS or kind == "boolean"
    )
    dates = ", ".join(f'"{n}"' for n, kind in types.items() if kind in ("date", "datetime"))
    return f"""{table} = pd.read_csv(
    "data/{table}.csv",
    dtype={{
{dtypes}
    }},
    parse_dates=[{dates}],
    true_values=["true"],
    false_values=["false"],
    keep_default_na=False,
    na_values=[""],
)"""


def _duckdb_csv(table: str) -> str:
    types = ", ".join(f"'{n}': '{_DUCKDB[kind]}'" for n, kind in field_types(table).items())
    return f"read_csv('data/{table}.csv', header = true, types = {{{types}}})"


def _readr_csv(table: str) -> str:
    others = ", ".join(
        f"{name} = {_READR[kind]}" for name, kind in field_types(table).items() if kind in _READR
    )
    return (
        f'{table} <- readr::read_csv("data/{table}.csv", na = "",\n'
        f"  col_types = readr::cols(.default = readr::col_character(), {others}))"
    )


def render_readme(
    version: str,
    options: ReleaseOptions,
    counts: Mapping[str, int],
    credits: Sequence[Mapping[str, str]],
    published: str,
) -> str:
    """The release's README.md."""
    rows = "\n".join(
        f"| `{t}` | {counts[t]:,} | {table_schema(t).get('description', '')} |" for t in counts
    )
    credit_lines = "\n".join(f"- {c['title']}" for c in credits) or "- (none)"
    url = release_url(options.base_url, version)
    where = f"\n<{url}>" if url else ""
    transactions, activities = EXAMPLE_TABLES
    return f"""# {options.title} — release {version}

{options.description}

Published {published}; CD results schema version {options.schema_version}.
Licence: {options.license_name} ({options.license_url}); each IATI publisher's
own licence applies to its data.

## What is inside

| table | rows | what |
|---|---:|---|
{rows}

Every table is here twice: `data/<table>.csv` (UTF-8, RFC 4180, an empty cell
is a missing value) and `data/<table>.parquet` (typed). `{DATABASE}` holds
every table in one DuckDB database, with the schema's types, primary keys and
descriptions (`COMMENT ON` each table and column), and views that put the names
beside the codes: `transactions_named`, `activities_named`,
`activity_countries_named`, `participating_orgs_named`,
`alignment_metrics_named` and `duplication_metrics_named` (beside each code,
its English and French names, e.g. `transaction_type_name` and
`transaction_type_name_fr`; beside each organisation identifier, its name, e.g.
`provider_org_name` beside `provider_org_ref`). Foreign keys are not
declared in it (DuckDB would check each on every change); the data dictionary
lists them, and the release was verified to hold every one.

The names of the codes are tables of their own: `countries`, `sectors`,
`transaction_types`, `aid_types`, `finance_types`, `flow_types`,
`organisation_types` (the codelists the run read, in English and French, and
any code the data uses that they lack, with `in_codelist` false) and
`organisations` (each organisation identifier with the name and type the data
gives it most often).

`datapackage.json` describes every field (Frictionless Data Package, with the
foreign keys from the codes to those tables); `data-dictionary.md` explains
them for people. `datapackage.json` also has the sha256 hash, size and row
count of each file, and `SHA256SUMS` lists the checksum of every file
(`sha256sum -c SHA256SUMS`). `CHANGELOG.md` says what changed since the
previous release and `quality/index.html` how good the data is, contributor by
contributor (one page per contributor under `quality/contributors/`, the
figures in `quality/report.json`, a text digest in `quality/report.md`, and the
Great Expectations Data Docs under `quality/data-docs/` when the run built
them).

In the CSV files, a text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return is written with a leading apostrophe (`'`) so spreadsheets do
not run it as a formula; the Parquet files hold the values exactly as published.
Read the CSV files with the types below (from the schema): left to guess,
pandas, DuckDB or R read codes such as `transaction_type` as numbers and
`iati_version` as a decimal, which then no longer match the Parquet files.

## Load it

SQL, with the DuckDB command-line tool (<https://duckdb.org>):

```sql
-- duckdb {DATABASE}
SELECT transaction_type, transaction_type_name, transaction_type_name_fr,
       recipient_country_name, count(*) AS transactions, sum(value_usd) AS usd
FROM transactions_named
GROUP BY ALL
ORDER BY transaction_type, recipient_country_name;
SELECT table_name, column_name, comment FROM duckdb_columns() WHERE table_name = 'countries';
```

Python (pandas, pyarrow, duckdb, frictionless):

```python
import duckdb
import pandas as pd
from frictionless import Package

# the CSV files, with the schema's types: codes and iati_version stay text
{_pandas_csv(transactions)}
{_pandas_csv(activities)}

# the Parquet files, typed
{transactions}_parquet = pd.read_parquet("data/{transactions}.parquet")

# DuckDB: the database (names beside codes), or the CSV files with the schema's types
con = duckdb.connect("{DATABASE}", read_only=True)
named = con.sql("SELECT transaction_type, transaction_type_name FROM transactions_named").df()
con.close()
from_csv = duckdb.sql(
    "SELECT * FROM {_duckdb_csv(transactions)}"
).df()

# Frictionless: the data package and its schema
package = Package("datapackage.json")
{transactions}_frictionless = package.get_resource("{transactions}").to_pandas()
```

R (duckdb, arrow, readr):

```r
con <- DBI::dbConnect(duckdb::duckdb(), "{DATABASE}", read_only = TRUE)
named <- DBI::dbGetQuery(con, "SELECT * FROM transactions_named")
DBI::dbDisconnect(con, shutdown = TRUE)
{transactions} <- arrow::read_parquet("data/{transactions}.parquet")
{_readr_csv(transactions)}
```

## Cite

{options.title}, release {version} (CD results schema {options.schema_version}).{where}
Content hash in `catalog.json`; the same version always has the same bytes.
`CITATION.cff` says the same for reference managers.

## Sources and credits

{credit_lines}
"""


def _yaml(text: str) -> str:
    """A YAML double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_citation(version: str, options: ReleaseOptions, published: str) -> str:
    """The release's CITATION.cff (Citation File Format 1.2.0): a data set, its version,
    date, licence and, when ``publish.base_url`` is set, its URL."""
    url = release_url(options.base_url, version)
    lines = [
        "cff-version: 1.2.0",
        'message: "If you use this data, please cite it as below."',
        "type: dataset",
        f"title: {_yaml(options.title)}",
        f"abstract: {_yaml(options.description)}",
        "authors:",
        f"  - name: {_yaml(options.title)}",
        f"version: {_yaml(version)}",
        f"date-released: {published[:10]}",
        f"license: {_yaml(options.license_name)}",
    ]
    if url:
        lines.append(f"url: {_yaml(url)}")
    return "\n".join(lines) + "\n"
