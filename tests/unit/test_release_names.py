"""A release names its codes, holds them in SQL, and is self-contained (issue 23): the
codelist and organisation tables, ``cdcompact.duckdb``, the README's examples, the data
dictionary and the citation inside the release folder."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import frictionless
import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets.harmonise.schema import NAME_TABLES, schema_dir
from assets.iati.codelists import load_codelists
from assets.storage.targets import LocalTarget
from publish.dictionary import render_data_dictionary
from publish.names import CODE_TABLES
from publish.release import publish_release
from tests.conftest import PROJECT_ROOT
from tests.unit.test_release import NOW, OPTIONS, demo_tables, stored

BASE_URL = "https://data.example.org/compact"
VERSION = "2026.11.28"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's release, with the demo codelists and a base URL."""
    folder = tmp_path_factory.mktemp("names")
    options = dataclasses.replace(
        OPTIONS, codelists=load_codelists(PROJECT_ROOT / "demo" / "codelists"), base_url=BASE_URL
    )
    target = LocalTarget(folder / "publish")
    outcome = publish_release(stored(demo_tables(), folder / "tables"), target, options, now=NOW)
    assert outcome.status == "published"
    return folder / "publish" / "releases" / VERSION


@contextmanager
def _database(release: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(release / "cdcompact.duckdb"), read_only=True)
    try:
        yield con
    finally:
        con.close()


def test_the_database_names_transaction_types_and_countries(release: Path) -> None:
    with _database(release) as con:
        # the demo's files hold 36 disbursements (transaction-type 3), 15 outgoing
        # commitments (2), 5 expenditures (4) and 3 incoming funds (1)
        rows = con.execute(
            "SELECT transaction_type, transaction_type_name, count(*) FROM transactions_named "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert rows == [
            ("1", "Incoming Funds", 3),
            ("2", "Outgoing Commitment", 15),
            ("3", "Disbursement", 36),
            ("4", "Expenditure", 5),
        ]
        # the official FlowType has French names; Country has none: CLDR's name instead
        assert con.execute("SELECT name_en, name_fr FROM flow_types").fetchall() == [("ODA", "APD")]
        country = con.execute(
            "SELECT country_name, country_name_fr FROM activity_countries_named "
            "WHERE activity_id = 'FR-DEMO-3003-NP-EAU-03'"
        ).fetchall()
        assert country == [("Nepal", "Népal")]
        partner = con.execute(
            "SELECT DISTINCT provider_org_name FROM transactions_named "
            "WHERE provider_org_ref = 'XM-DEMO-1001'"
        ).fetchall()
        assert partner == [("Demo Development Agency (fictional)",)]
        # organisation types in French, as the official codelist has them
        assert con.execute(
            "SELECT reporting_org_type_name, reporting_org_type_name_fr FROM activities_named "
            "WHERE reporting_org_ref = 'SE-DEMO-4004' LIMIT 1"
        ).fetchall() == [("International NGO", "ONG internationale")]


def test_the_database_keeps_the_schema_types_keys_and_descriptions(release: Path) -> None:
    with _database(release) as con:
        types = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, data_type FROM duckdb_columns() "
                "WHERE column_name IN ('transaction_type', 'iati_version', 'value_usd') "
                "AND table_name IN ('transactions', 'activities')"
            ).fetchall()
        )
        assert types == {
            "transactions.transaction_type": "VARCHAR",
            "transactions.value_usd": "DOUBLE",
            "activities.iati_version": "VARCHAR",
        }
        assert con.execute("SELECT DISTINCT iati_version FROM activities").fetchall() == [("2.03",)]
        keys = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = 'transactions' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
        assert keys == [(["transaction_id"],)]
        with pytest.raises(duckdb.Error):  # read-only, but the key is there to say so
            con.execute("INSERT INTO countries VALUES ('KE', 'Kenya', 'Kenya', 'active', true)")
        (comment,) = con.execute(
            "SELECT comment FROM duckdb_columns() "
            "WHERE table_name = 'countries' AND column_name = 'in_codelist'"
        ).fetchone() or ("",)
        assert comment.startswith("Whether the codelist has the code")
        (table_comment,) = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'transactions'"
        ).fetchone() or ("",)
        assert table_comment.startswith("Transactions: One row per financial transaction")


def test_the_database_is_listed_with_its_checksum(release: Path) -> None:
    catalog = json.loads((release.parents[1] / "catalog.json").read_text())
    listed = catalog["releases"][0]["files"]["cdcompact.duckdb"]
    assert listed["bytes"] == (release / "cdcompact.duckdb").stat().st_size
    sums = (release / "SHA256SUMS").read_text()
    assert f"{listed['sha256']}  cdcompact.duckdb\n" in sums
    dcat = json.loads((release.parents[1] / "dcat.jsonld").read_text())
    (dataset,) = [d for d in dcat["dcat:dataset"] if d["dcat:version"] == VERSION]
    (database,) = [
        d for d in dataset["dcat:distribution"] if d["@id"].endswith("/cdcompact.duckdb")
    ]
    assert database["@id"] == f"{BASE_URL}/releases/{VERSION}/cdcompact.duckdb"
    assert database["spdx:checksum"]["spdx:checksumValue"]["@value"] == listed["sha256"]


def _python_examples(readme: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme, flags=re.S)


def test_the_readme_python_examples_read_codes_as_text(release: Path) -> None:
    readme = (release / "README.md").read_text()
    examples = _python_examples(readme)
    assert examples
    # the SQL (duckdb CLI) and R examples are not run here: no duckdb CLI or R on the
    # test machines; the SQL one is the same query language the Python example runs
    found: dict[str, object] = {}
    here = Path.cwd()
    os.chdir(release)
    try:
        for example in examples:
            exec(compile(example, "README.md", "exec"), found)
    finally:
        os.chdir(here)
    transactions = found["transactions"]
    parquet = found["transactions_parquet"]
    assert isinstance(transactions, pd.DataFrame)
    assert isinstance(parquet, pd.DataFrame)
    for column in ("transaction_type", "aid_type", "finance_type", "flow_type", "sector_code"):
        assert transactions[column].dtype == "string", column
        assert transactions[column].fillna("").tolist() == parquet[column].fillna("").tolist()
    assert transactions["transaction_type"].value_counts()["3"] == 36
    activities = found["activities"]
    assert isinstance(activities, pd.DataFrame)
    assert set(activities["iati_version"]) == {"2.03"}
    named = found["named"]
    assert isinstance(named, pd.DataFrame)
    assert (named["transaction_type_name"] == "Disbursement").sum() == 36
    from_csv = found["from_csv"]
    assert isinstance(from_csv, pd.DataFrame)
    assert from_csv["transaction_type"].tolist() == parquet["transaction_type"].tolist()


def test_the_readme_sql_runs_on_the_database_and_r_reads_codes_as_text(release: Path) -> None:
    """The SQL example is run with DuckDB's Python client (no duckdb CLI on the test
    machines; the database and the SQL are the same); the R example is not run (no R),
    only read for the types it gives readr."""
    readme = (release / "README.md").read_text()
    (sql,) = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    lines = [line for line in sql.splitlines() if not line.startswith("--")]  # the shell's
    statements = [s for s in "\n".join(lines).split(";") if s.strip()]
    with _database(release) as con:
        rows = con.execute(statements[0]).fetchall()
        comments = con.execute(statements[1]).fetchall()
    # 36 disbursements in all, over the recipient countries the transactions name or not
    assert sum(row[4] for row in rows if row[0] == "3") == 36
    assert {row[1] for row in rows if row[0] == "3"} == {"Disbursement"}
    assert (
        "countries",
        "code",
        "The code (ISO 3166-1 alpha-2 code, IATI Country codelist), as the data tables hold it.",
    ) in comments
    (r,) = re.findall(r"```r\n(.*?)```", readme, flags=re.S)
    assert "readr::cols(.default = readr::col_character()" in r
    assert "value = readr::col_double()" in r
    assert "transaction_type =" not in r  # a code: read as text, the default


def test_the_release_folder_holds_its_dictionary_and_citation(release: Path) -> None:
    dictionary = (release / "data-dictionary.md").read_text()
    assert dictionary == render_data_dictionary(schema_dir())
    assert "\n## transaction_types\n" in dictionary
    readme = (release / "README.md").read_text()
    assert "`data-dictionary.md`" in readme
    url = f"{BASE_URL}/releases/{VERSION}/"
    assert f"<{url}>" in readme.split("## Cite", 1)[1]
    citation = (release / "CITATION.cff").read_text()
    assert f'url: "{url}"' in citation
    assert 'version: "2026.11.28"' in citation
    assert "date-released: 2026-11-28" in citation


def test_a_release_without_a_base_url_cites_no_url(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path / "publish")
    tables = {"activities": demo_tables()["activities"]}
    publish_release(stored(tables, tmp_path / "tables"), target, OPTIONS, now=NOW)
    release = tmp_path / "publish" / "releases" / VERSION
    assert "url:" not in (release / "CITATION.cff").read_text()
    assert "http" not in (release / "README.md").read_text().split("## Cite", 1)[1].split("##")[0]


def test_foreign_keys_to_the_name_tables_hold_on_the_demo_release(release: Path) -> None:
    assert set(NAME_TABLES) == {*CODE_TABLES, "organisations"}
    package = json.loads((release / "datapackage.json").read_text())
    resources = {r["name"]: r for r in package["resources"]}
    keys = {
        (tuple(k["fields"]), k["reference"]["resource"])
        for k in resources["transactions"]["schema"]["foreignKeys"]
    }
    assert (("transaction_type",), "transaction_types") in keys
    assert (("recipient_country",), "countries") in keys
    assert resources["countries"]["rows"] == 5
    report = frictionless.validate(str(release / "datapackage.json"))
    assert report.valid, report.flatten(["taskName", "type", "note"])[:5]


def test_a_code_the_codelist_lacks_is_listed_without_a_name(tmp_path: Path) -> None:
    tables = demo_tables()
    transactions = tables["transactions"]
    transactions.loc[transactions.index[0], "aid_type"] = "Z99"
    # an empty cell is a missing value, not a code or an organisation of its own
    transactions.loc[transactions.index[1], "aid_type"] = ""
    transactions.loc[transactions.index[1], "provider_org_ref"] = ""
    options = dataclasses.replace(
        OPTIONS, codelists=load_codelists(PROJECT_ROOT / "demo" / "codelists")
    )
    target = LocalTarget(tmp_path / "publish")
    outcome = publish_release(stored(tables, tmp_path / "tables"), target, options, now=NOW)
    assert outcome.status == "published"  # every foreign key was found: verified
    release = tmp_path / "publish" / "releases" / VERSION
    aid_types = pq.read_table(release / "data" / "aid_types.parquet").to_pylist()
    assert aid_types == [
        {
            "code": "C01",
            "name_en": "Project-type interventions",
            "name_fr": "Interventions de type projet",
            "status": "active",
            "in_codelist": True,
        },
        {
            "code": "D01",
            "name_en": "Donor country personnel",
            "name_fr": "Personnel du pays donneur",
            "status": "active",
            "in_codelist": True,
        },
        {
            "code": "D02",
            "name_en": "Other technical assistance",
            "name_fr": "Autres formes d’assistance technique",
            "status": "active",
            "in_codelist": True,
        },
        {"code": "Z99", "name_en": None, "name_fr": None, "status": None, "in_codelist": False},
    ]
    assert len(pd.read_parquet(release / "data" / "transactions.parquet")) == 59
    organisations = pq.read_table(release / "data" / "organisations.parquet").to_pylist()
    assert "" not in {row["org_ref"] for row in organisations}
    assert len(organisations) == 21  # the demo's organisations, as without the edit
