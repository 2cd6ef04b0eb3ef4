"""Dagster storage on PostgreSQL (dagster-postgres), as README's Postgres block sets it up.

Uses the server this machine kind runs on 127.0.0.1:5432 (trust auth). Where
no server is reachable the test is skipped with the reason printed, except in
CI (CI=true), where a missing server is a failure: CI always has one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg2
import pytest
import yaml

from pipelines.nightly import run_nightly
from tests.conftest import PROJECT_ROOT

HOST, PORT, USER = "127.0.0.1", 5432, os.environ.get("CDCOMPACT_TEST_PG_USER", "postgres")


def _connect(database: str = "postgres") -> psycopg2.extensions.connection:
    return psycopg2.connect(host=HOST, port=PORT, user=USER, dbname=database, connect_timeout=5)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    try:
        admin = _connect()
    except psycopg2.OperationalError as exc:
        reason = f"no PostgreSQL server reachable on {HOST}:{PORT} as {USER}: {exc}".strip()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must have PostgreSQL: {reason}")
        print(reason)
        pytest.skip(reason)
    name = f"cdcompact_test_{uuid.uuid4().hex[:12]}"
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.postgres
def test_nightly_run_on_postgres_storage(
    postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    config["storage"] = {
        "postgres": {
            "postgres_db": {
                "hostname": HOST,
                "port": PORT,
                "username": USER,
                "password": "",
                "db_name": postgres_database,
            }
        }
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDCOMPACT_PUBLISH_DIR", str(tmp_path / "publish"))

    assert run_nightly() == 0

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert len(instance.get_materialized_partitions(dg.AssetKey("iati_dataset"))) == 4
    with _connect(postgres_database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pipeline_name, status FROM runs ORDER BY create_timestamp")
        runs = cursor.fetchall()
        cursor.execute(
            "SELECT partition FROM dynamic_partitions "
            "WHERE partitions_def_name = 'iati_datasets' ORDER BY partition"
        )
        partitions = [row[0] for row in cursor.fetchall()]
    assert runs == [("nightly_job", "SUCCESS")]  # its steps in processes of their own
    assert partitions == [
        "fr-demo-3003",
        "gb-demo-2002",
        "se-demo-4004",
        "xm-demo-1001",
    ]
    assert not (home / "history").exists()  # nothing went to SQLite
    activities = pd.read_parquet(tmp_path / "data" / "tables" / "activities.parquet")
    assert len(activities) == 16
