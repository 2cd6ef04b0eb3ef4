"""The release's CSV and Parquet files, written by DuckDB from the tables' Parquet files: byte
for byte what the release's pandas writer wrote before (golden digests), and exactly what the
cell-by-cell rules say, on the shared fixtures, the demo and every awkward value."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.harmonise.schema import arrow_schema, field_types, table_frame, table_schema
from assets.harmonise.store import read_table, to_arrow, write_table
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from assets.warehouse import set_up
from publish import files
from publish.tables import public_sources
from tests.conftest import IATI_FIXTURES, RATES
from tests.metrics_run import run_metrics
from tests.unit.test_release import demo_tables

# -- the rules, one cell at a time (the specification the fast writer must match) --------


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def reference_cell(kind: str, value: Any) -> str:
    if _missing(value):
        return ""
    if kind == "boolean":
        return "true" if bool(value) else "false"
    if kind in {"integer", "year"}:
        return str(int(value))
    if kind == "number":
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    if kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if kind == "datetime":
        stamp = pd.Timestamp(value).tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (
            f".{stamp.microsecond:06d}Z" if stamp.microsecond else "Z"
        )
    text = str(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def _sort_text(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{float(value):+032.10f}"
    return str(value)


def reference_order(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    typed = table_frame(table, frame)
    key = table_schema(table).get("primaryKey") or []
    columns = [key] if isinstance(key, str) else list(key)
    columns += [c for c in typed.columns if c not in columns]
    if typed.empty:
        return typed
    keys = pd.DataFrame({f"k{i}": typed[c].map(_sort_text) for i, c in enumerate(columns)})
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return typed.loc[order].reset_index(drop=True)


def reference_csv(table: str, frame: pd.DataFrame) -> bytes:
    types = field_types(table)
    ordered = reference_order(table, frame)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(types))
    for _, row in ordered.iterrows():
        writer.writerow([reference_cell(kind, row[name]) for name, kind in types.items()])
    return buffer.getvalue().encode("utf-8")


# -- the writer ----------------------------------------------------------------------------


def release_files(table: str, frame: pd.DataFrame, folder: Path) -> tuple[bytes, Path]:
    """The table's CSV bytes and Parquet file as a release writes them: from the table's
    Parquet file in ``folder``, by DuckDB."""
    source = write_table(table, frame, folder / "tables" / f"{table}.parquet")
    with duckdb.connect() as con:
        set_up(con)
        files.prepare(con)
        relation = files.parquet_relation(table, source)
        keys = files.sort_keys(con, table, relation)
        csv_path, parquet_path = folder / f"{table}.csv", folder / f"{table}.parquet"
        files.write_both(con, table, relation, csv_path, parquet_path, keys)
    return csv_path.read_bytes(), parquet_path


def test_the_csv_read_back_from_the_sorted_parquet_is_the_csv_sorted_on_its_own(
    tmp_path: Path,
) -> None:
    """The release sorts a table once: its CSV is read from its sorted Parquet file in the
    file's order. With many row groups read by several threads, that order must still be the
    sorted one, line for line."""
    rows = 300_000  # three of DuckDB's row groups
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{(i * 7919) % rows:06d}" for i in range(rows)],
            "activity_id": [f"XM-A-{i % 97}" for i in range(rows)],
            "source_ref": [f"/iati-activities/iati-activity[{i % 97 + 1}]" for i in range(rows)],
            "transaction_type": ["3" if i % 3 else "4" for i in range(rows)],
            "value": [float((i * 31) % 10_007) for i in range(rows)],
            "currency": ["USD"] * rows,
        }
    )
    source = write_table("transactions", frame, tmp_path / "tables" / "transactions.parquet")
    # as the release connects (assets.warehouse): no promise of insertion order
    with duckdb.connect(config={"threads": 4, "preserve_insertion_order": False}) as con:
        set_up(con)
        files.prepare(con)
        relation = files.parquet_relation("transactions", source)
        keys = files.sort_keys(con, "transactions", relation)
        files.write_csv(con, "transactions", relation, tmp_path / "sorted.csv", keys)
        files.write_both(
            con, "transactions", relation, tmp_path / "t.csv", tmp_path / "t.parquet", keys
        )
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_row_groups >= 3
    written = (tmp_path / "t.csv").read_bytes()
    assert written == (tmp_path / "sorted.csv").read_bytes()
    ids = cells(written, "transaction_id")
    assert len(ids) == rows
    assert ids == sorted(ids)
    assert ids[0] == "t000000"


def canonical_positions(table: str, frame: pd.DataFrame) -> list[int]:
    """The frame's row positions in the order a release writes the table's rows."""
    with duckdb.connect() as con:
        set_up(con)
        files.prepare(con)
        arrow = to_arrow(table, frame.reset_index(drop=True))
        con.register("frame", arrow.append_column(files.ROW, pa.array(range(len(frame)))))
        keys = files.sort_keys(con, table, "frame")
        ordered = con.execute(f"SELECT {files.ROW} FROM frame ORDER BY {', '.join(keys)}")
        return [int(row[0]) for row in ordered.fetchall()]


def csv_digests(tables: Mapping[str, pd.DataFrame], folder: Path) -> dict[str, str]:
    """Each table's CSV sha256 (``sources`` as a release shows it: files by name)."""
    shown = {**tables, "sources": public_sources(tables["sources"], None)}
    return {
        table: hashlib.sha256(release_files(table, frame, folder)[0]).hexdigest()
        for table, frame in sorted(shown.items())
    }


# -- byte for byte as before ------------------------------------------------------------------
#: The sha256 of each table's CSV as the pandas writer of commit 7ca04e4 wrote it
#: (publish/files.py, column at a time), before the release moved to DuckDB. They move only
#: when the harmonised tables themselves change (issue 19: activity_regions, share_basis,
#: the transactions' region, countries rebased with regions, rejected files' conformance;
#: issue 23: IATI results with their activity's only country, alignment metrics only where
#: they measured something, transaction ids by ref or position, participating_orgs' position;
#: issue 24: sources' download and checked_at, schema 4.0.0).
DEMO_CSV = {
    "activities": "bd666051edc1be3fc2ff4c70083fe61cced5a8109b703f15bec11bd1a6bd9b4b",
    "activity_countries": "50925ff8907e1cd36b7c215e5a801ccf1c70d6a9d9e656f9603218eec87b1fb3",
    "activity_regions": "1fa076709ca7106d144b1a1fcbd08cd4b7617789407f997c66bbde704a1b6c94",
    "activity_sectors": "a23adec9dea16c21164f6035212489ad2d565212bc16234f869d495ad67fa1f0",
    "budgets": "5425eb730d57cbea3eeef2a1dd63a48214af9c928471a7d882aa1313cb781a58",
    "cd_priorities": "05b25b062762f2104435284c2b27b56f5da80a5c78076ff69db8b45651ff5779",
    "conformance": "9937bc3ea145bc93eb336e63df3f7c6c7293cf70588c0f098cb585ca2a91528e",
    "participating_orgs": "72ecbbbc54a80c5f0d50d81422b192fc45728169a5e1435d8e8d0bd5bf9f2ea1",
    "partner_declarations": "b5aca221bf9e96e5c8a7dfc94006b8d26c36953865135331b80a06f1ff49a3cd",
    "quarantine": "2fef59ceb04ea6f879d3b648d799032eba4aec66d2f656148e224aa05a77b0e8",
    "results": "57d24a169abc085ef5ca93b39104904c1a31764c88b91b527112a880e3ce3637",
    "sources": "780a421336105a0bbb6a6884931508ede2e3fc9efdaef8ff25553c7634b151a6",
    "transactions": "b8f3e4a932709c90955b46540c0f558ed3be432b8362cde8be834ae0d2df9445",
}
FIXTURES_CSV = {
    "activities": "7a469fb3d4f90ddd0ab1b0d7aa3e42f6f7d7dbea245d5c006aeaad39f9f1030e",
    "activity_countries": "f66b5b195a8ab377c4d81fa9372ca6d1ab0071d92e05897cc0495037e5f15d0b",
    "activity_regions": "5479568e1c03ec357e5fdb9b6f59cac2055db701ba8d46cc6d6c658ce9593e64",
    "activity_sectors": "86f6d4d3e660faa678f2fafa68acc8a3d311d00f1b933e6149888f9911f5da9e",
    "alignment_links": "018bf79649c89732a0691b9d0d1bf0dec73d855121e242e4c37afcddef329495",
    "alignment_metrics": "613a734084ca1cf09cbf1d942db80baa2953c4825955bd413301a63c7546a5a0",
    "budgets": "41ba14b60907d70b577edea2cbf8ce68c96a97bec551fea299299dec79c00e2f",
    "cd_priorities": "05b25b062762f2104435284c2b27b56f5da80a5c78076ff69db8b45651ff5779",
    "conformance": "5fa25073cf4376716e8411391127e410d095b619e4359102fc13f349663b9e2d",
    "duplication_metrics": "a1588210349d5d5243b0eb73c0ecf3efdd9b274defcae45585cdd97abe4a3fd0",
    "duplication_pairs": "e2d025fb6a03692bebd3c7df2d796b2a9dcde2985b67f8f05c70864610ff4009",
    "participating_orgs": "92660dff7b54a5cc1d844bf55eee17870e71ccec9ddfc7f60f6a597ac35ccb96",
    "partner_declarations": "b5aca221bf9e96e5c8a7dfc94006b8d26c36953865135331b80a06f1ff49a3cd",
    "quarantine": "9638b4b6aa9098ea9f29c5c81c157783a08cd7ebca6dcb0deb399c059685948a",
    "results": "8faa6633f2ca9951b2c5c8101f74dac574758db8e1ba1440795d6035fbb7e2bd",
    "sources": "aa599a78531dc981c40f6b493ee0bd3d31cdd09ad423f00296f541323385cdb9",
    "transactions": "70647135454b1f7ecfd5ca48171ce6899d9d10f9c67afeb99e28043435562536",
}


def test_the_demo_is_written_byte_for_byte_as_before(tmp_path: Path) -> None:
    assert csv_digests(demo_tables(), tmp_path) == DEMO_CSV


def test_the_shared_fixtures_are_written_byte_for_byte_as_before(tmp_path: Path) -> None:
    tables = _real_tables()
    assert len(tables["transactions"]) > 10_000  # the shared fixtures, not a toy
    assert csv_digests(tables, tmp_path) == FIXTURES_CSV


# -- real data ---------------------------------------------------------------------------


@cache
def _real_tables() -> dict[str, pd.DataFrame]:
    settings = load_settings()
    options = HarmoniseOptions(
        rules=settings.cd_rules,
        rates=load_exchange_rates(
            [RATES / "imf-monthly-subset.csv", RATES / "monthly-average-sdr-per-unit.json"]
        ),
    )
    _, tables = harmonise_paths(
        [IATI_FIXTURES / "valid", IATI_FIXTURES / "legacy", IATI_FIXTURES / "invalid"], options
    )
    return run_metrics(tables, settings.metrics)


def test_real_tables_are_written_exactly_as_the_cell_rules_say(tmp_path: Path) -> None:
    for table, frame in _real_tables().items():
        written, parquet = release_files(table, frame, tmp_path)
        assert written == reference_csv(table, frame), table
        # the Parquet file: the schema's types, the same rows in the same order as the CSV
        assert pq.read_schema(parquet).remove_metadata() == arrow_schema(table), table
        pd.testing.assert_frame_equal(
            read_table(table, parquet), reference_order(table, frame), obj=table
        )


def test_transactions_csv_figures_on_real_data(tmp_path: Path) -> None:
    frame = _real_tables()["transactions"]
    written, _ = release_files("transactions", frame, tmp_path)
    published = pd.read_csv(io.BytesIO(written), dtype=str, keep_default_na=False)
    assert len(published) == len(frame)
    assert list(published["transaction_id"]) == sorted(frame["transaction_id"])
    total = pd.to_numeric(published["value_usd"].replace("", None)).sum()
    assert total == pytest.approx(frame["value_usd"].astype("float64").sum(), rel=1e-12)


# -- every awkward value -----------------------------------------------------------------

AWKWARD_TEXT = [
    '=HYPERLINK("http://x")',
    "+1",
    "-1",
    "@SUM(A1)",
    "\tleading tab",
    "\rleading return",
    'a "quoted" word, and a comma',
    "two\nlines",
    "Bogotá, D.C. — año",
    "",
    None,
]
AWKWARD_NUMBERS = [
    0.1,
    -0.0,
    123.0,
    -5.0,
    1e15,
    999_999_999_999_999.0,
    1e16,
    2.5e-7,
    -876_291.125,
    float("nan"),
    None,
]


def _awkward_transactions() -> pd.DataFrame:
    n = len(AWKWARD_NUMBERS)
    text = (AWKWARD_TEXT * 2)[:n]
    return pd.DataFrame(
        {
            # a repeated key: the other columns decide the order
            "transaction_id": ["t2", "t1", "t1", "t3", "t1", "t0", "t2", "t9", "t4", "t5", "t6"],
            "activity_id": text,
            "transaction_date": [dt.date(2024, 1, i + 1) if i % 3 else None for i in range(n)],
            "value": AWKWARD_NUMBERS,
            "value_usd": list(reversed(AWKWARD_NUMBERS)),
            "humanitarian": [True, False, None] * 3 + [True, None],
            "counts_toward_totals": [False, True] * 5 + [None],
            "exclusion_reason": list(reversed(text)),
        }
    )


#: The pandas writer's bytes for :func:`_awkward_transactions` (commit 7ca04e4).
AWKWARD_CSV = (
    "transaction_id,activity_id,transaction_type,transaction_date,value,currency,value_date"
    ",value_usd,usd_rate,usd_rate_period,usd_rate_source,provider_org_ref,provider_activity"
    "_id,receiver_org_ref,receiver_activity_id,aid_type,finance_type,flow_type,disbursement"
    "_channel,sector_code,recipient_country,recipient_region,recipient_region_vocabulary,hu"
    "manitarian,counts_toward_totals,exclusion_reason,source,source_file,source_sha256,sour"
    "ce_ref\r\n"
    't0,"\'\rleading return",,2024-01-06,999999999999999,,,999999999999999,,,,,,,,,,,,,,,,,'
    'true,"\'\rleading return",,,,\r\n'
    "t1,'\tleading tab,,2024-01-05,1000000000000000.0,,,1e+16,,,,,,,,,,,,,,,,false,false,\""
    'a ""quoted"" word, and a comma",,,,\r\n'
    "t1,'+1,,2024-01-02,0,,,,,,,,,,,,,,,,,,,false,true,,,,,\r\n"
    't1,\'-1,,2024-01-03,123,,,-876291.125,,,,,,,,,,,,,,,,,false,"Bogotá, D.C. — año",,,,\r'
    "\n"
    't2,"\'=HYPERLINK(""http://x"")",,,0.1,,,,,,,,,,,,,,,,,,,true,false,,,,,\r\n'
    't2,"a ""quoted"" word, and a comma",,,1e+16,,,1000000000000000.0,,,,,,,,,,,,,,,,true,f'
    "alse,'\tleading tab,,,,\r\n"
    't3,\'@SUM(A1),,,-5,,,2.5e-07,,,,,,,,,,,,,,,,true,true,"two\nlines",,,,\r\n'
    't4,"Bogotá, D.C. — año",,2024-01-09,-876291.125,,,123,,,,,,,,,,,,,,,,,false,\'-1,,,,\r'
    "\n"
    "t5,,,,,,,0,,,,,,,,,,,,,,,,true,true,'+1,,,,\r\n"
    't6,,,2024-01-11,,,,0.1,,,,,,,,,,,,,,,,,,"\'=HYPERLINK(""http://x"")",,,,\r\n'
    't9,"two\nlines",,2024-01-08,2.5e-07,,,-5,,,,,,,,,,,,,,,,false,true,\'@SUM(A1),,,,\r\n'
).encode()


def cells(data: bytes, column: str) -> list[str]:
    """One column of a written CSV file, as text."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    index = rows[0].index(column)
    return [row[index] for row in rows[1:]]


def test_awkward_values_are_written_byte_for_byte_as_before(tmp_path: Path) -> None:
    frame = _awkward_transactions()
    written, _ = release_files("transactions", frame, tmp_path)
    assert written == AWKWARD_CSV
    assert written == reference_csv("transactions", frame)
    values = ["0.1", "0", "123", "-5", "1000000000000000.0", "999999999999999", "1e+16"]
    values += ["2.5e-07", "-876291.125", "", ""]
    assert sorted(cells(written, "value")) == sorted(values)
    assert "'\rleading return" in cells(written, "activity_id")
    assert '\'=HYPERLINK("http://x")' in cells(written, "activity_id")
    assert cells(written, "humanitarian")[:3] == ["", "false", "false"]


#: Numbers at the edges of the formats: huge and tiny, negative zero, infinities, NaN
#: beside None, whole numbers either side of 10^15 and 10^20 (where the sort text leaves
#: DuckDB's printf for Python's).
EDGE_NUMBERS = [
    1e300,
    -1e300,
    1.7976931348623157e308,
    5e-324,
    -5e-324,
    1e-11,
    -1e-11,
    1e20,
    99_999_999_999_999_999_999.0,
    -1e25,
    123_456_789_012_345_678_901.0,
    -0.0,
    0.0,
    float("inf"),
    float("-inf"),
    float("nan"),
    None,
    999_999_999_999_999.0,
    1e15,
    -1e15,
    0.30000000000000004,
    2.5e-7,
]


def test_edge_numbers_are_written_and_sorted_as_the_cell_rules_say(tmp_path: Path) -> None:
    # duplication_metrics has no primary key: every column sorts, numbers by their text
    n = len(EDGE_NUMBERS)
    frame = table_frame(
        "duplication_metrics",
        [
            {
                "country_code": "KE",
                "year": 2024 - (i % 3),
                "n_partners": -i if i % 4 else None,
                "cd_disbursement_usd": value,
                "hhi": EDGE_NUMBERS[(i * 7) % n],
            }
            for i, value in enumerate(EDGE_NUMBERS)
        ],
    )
    written, parquet = release_files("duplication_metrics", frame, tmp_path)
    assert written == reference_csv("duplication_metrics", frame)
    assert set(cells(written, "cd_disbursement_usd")) >= {
        "1e+300",
        "5e-324",
        "-5e-324",
        "1e-11",
        "1e+20",
        "1.2345678901234568e+20",
        "0",
        "inf",
        "-inf",
        "",
        "999999999999999",
        "1000000000000000.0",
        "-1000000000000000.0",
        "0.30000000000000004",
    }
    # the Parquet file keeps the values themselves (the sign of zero too)
    back = pq.read_table(parquet).column("cd_disbursement_usd").to_pylist()
    signs = {math.copysign(1.0, v) for v in back if v == 0.0}
    assert signs == {1.0, -1.0}
    assert float("inf") in back
    assert 1.7976931348623157e308 in back


def test_awkward_text_and_dates_as_the_cell_rules_say(tmp_path: Path) -> None:
    texts = ["#hash", "", " leading space", "trailing ", "semi;colon", "back\\slash", '"']
    texts += ["ä", "z", "Z", "é", "e", "\u00ff", "\u0100", "😀", "a\x00b", "\r\n", "=", "'="]
    rows = [
        {
            "source_file": f"file-{i % 5}.xml",
            "table": text,
            "rule": "r",
            "message": f"{text}, row {i}",
            "value": text,
            "severity": "warning" if i % 2 else "error",
        }
        for i, text in enumerate(texts)
    ]
    frame = table_frame("quarantine", rows)
    written, _ = release_files("quarantine", frame, tmp_path)
    assert written == reference_csv("quarantine", frame)
    assert '"#hash"' not in written.decode()  # quoted only where RFC 4180 needs it
    dates = [dt.date(999, 1, 2), dt.date(2024, 2, 29), None, dt.date(1, 1, 1)]
    budgets = table_frame(
        "budgets",
        [
            {"budget_id": "b", "activity_id": "a", "period_start": d, "value": float(i)}
            for i, d in enumerate(dates)
        ],
    )
    written, _ = release_files("budgets", budgets, tmp_path)
    assert written == reference_csv("budgets", budgets)
    assert cells(written, "period_start") == ["", "0001-01-01", "0999-01-02", "2024-02-29"]


def test_ties_on_the_key_are_ordered_by_the_other_columns(tmp_path: Path) -> None:
    frame = _awkward_transactions()
    written, _ = release_files("transactions", frame, tmp_path)
    assert cells(written, "transaction_id") == [
        "t0", "t1", "t1", "t1", "t2", "t2", "t3", "t4", "t5", "t6", "t9",
    ]  # fmt: skip
    # the order never depends on the order rows came in
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert release_files("transactions", shuffled, tmp_path)[0] == written


def test_datetimes_are_utc_with_microseconds_only_when_there_are_any(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            # the same key thrice: rows sort by the other columns, the time among them
            "source_file": ["a.xml", "a.xml", "a.xml", "d.xml", "e.xml"],
            "fetched_at": [
                pd.Timestamp("2026-11-28T02:00:00Z"),
                pd.Timestamp("2026-11-28T03:04:05.000123+01:00"),
                None,
                pd.Timestamp("2024-02-29T23:59:59.5Z"),
                pd.Timestamp("2026-11-28T01:59:59.999999-00:30"),
            ],
            "bytes": [10, None, 3_000_000_000, 0, -1],
        }
    )
    written, _ = release_files("sources", frame, tmp_path)
    assert written == reference_csv("sources", frame)
    assert cells(written, "fetched_at") == [
        "",
        "2026-11-28T02:00:00Z",
        "2026-11-28T02:04:05.000123Z",
        "2024-02-29T23:59:59.500000Z",
        "2026-11-28T02:29:59.999999Z",
    ]
    assert cells(written, "bytes") == ["3000000000", "10", "", "0", "-1"]


@pytest.mark.parametrize("table", ["budgets", "activities", "sources"])
def test_an_empty_table_is_its_header(table: str, tmp_path: Path) -> None:
    written, parquet = release_files(table, table_frame(table, []), tmp_path)
    assert written == (",".join(field_types(table)) + "\r\n").encode()
    assert pq.read_table(parquet).num_rows == 0
    assert pq.read_schema(parquet).remove_metadata() == arrow_schema(table)
