"""DuckDB connections: the configured limits, and schema-typed views over table folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.harmonise.schema import arrow_schema, field_names, table_frame
from assets.harmonise.store import write_table
from assets.settings import ConfigError, load_settings
from assets.warehouse import attach_tables, connection, set_up
from pipelines.resources import duckdb_resource


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "compact.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_connections_have_the_configured_memory_limit_and_spill_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(
        _config(
            tmp_path,
            f"warehouse:\n  memory_limit: 256MB\n  temp_directory: {tmp_path / 'spill'}\n"
            "  threads: 1\n",
        )
    )
    with connection(settings) as con:
        limit, temp, threads = (
            con.execute(
                "SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
                "current_setting('threads')"
            ).fetchone()
            or ()
        )
    assert limit == "244.1 MiB"  # 256 MB, as DuckDB shows it
    assert temp == str(tmp_path / "spill")
    assert threads == 1
    assert (tmp_path / "spill").is_dir()


def test_a_large_sort_spills_to_disk_within_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDCOMPACT_DUCKDB_MEMORY_LIMIT", "64MB")
    settings = load_settings(_config(tmp_path, "warehouse:\n  threads: 1\n"))
    assert settings.duckdb_temp_directory == tmp_path / "data" / "duckdb-tmp"
    with connection(settings) as con:
        # about 400 MB of distinct strings to sort: far more than 64 MB
        con.execute(
            "CREATE TABLE big AS SELECT md5(i::VARCHAR) || repeat('x', 60) AS s "
            "FROM range(4000000) t(i)"
        )
        first, n = (
            con.execute(
                "SELECT min(s), count(*) FROM (SELECT s FROM big ORDER BY s DESC)"
            ).fetchone()
            or ()
        )
    assert n == 4_000_000
    assert first.endswith("x" * 60)


def test_the_dagster_resource_gets_the_same_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(_config(tmp_path, "warehouse:\n  memory_limit: 300MB\n"))
    resource = duckdb_resource(settings, tmp_path / "db" / "work.duckdb")
    with resource.get_connection() as con:
        set_up(con)
        assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == ("286.1 MiB",)
    assert (tmp_path / "db" / "work.duckdb").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("warehouse:\n  memory_limit: lots\n", "warehouse.memory_limit: must be an amount"),
        ("warehouse:\n  threads: -1\n", "warehouse.threads: input should be greater than"),
        ("warehouse:\n  threads: two\n", "warehouse.threads: input should be a valid integer"),
    ],
)
def test_bad_warehouse_settings_are_named(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_config(tmp_path, body))


def test_attached_tables_have_the_schema_types_and_missing_ones_are_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    folder = tmp_path / "tables"
    write_table(
        "activities",
        table_frame("activities", [{"activity_id": "XM-1", "hierarchy": 2, "is_cd": True}]),
        folder / "activities.parquet",
    )
    with connection(settings) as con:
        attach_tables(con, folder, ["activities", "budgets"])
        assert con.sql("SELECT activity_id, hierarchy, is_cd FROM activities").fetchall() == [
            ("XM-1", 2, True)
        ]
        assert con.execute("SELECT count(*) FROM budgets").fetchone() == (0,)
        for table in ("activities", "budgets"):
            described = con.sql(f"DESCRIBE {table}").fetchall()
            assert [row[0] for row in described] == field_names(table)
            arrow = con.sql(f"SELECT * FROM {table}").to_arrow_table()
            assert arrow.schema.types == arrow_schema(table).types
