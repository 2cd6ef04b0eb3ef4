"""The release's CSV and Parquet bytes: column-at-a-time formatting gives exactly what the
cell-by-cell rules give, on real harmonised IATI data and on every awkward value."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from functools import cache
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets.harmonise.schema import field_types, table_frame, table_schema
from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
from assets.iati.rates import load_exchange_rates
from assets.metrics.stage import add_metrics
from assets.settings import load_settings
from publish.files import canonical_order, column_cells, csv_bytes, data_files, parquet_bytes
from tests.conftest import IATI_FIXTURES, RATES

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
    return add_metrics(tables, settings.metrics)


def test_real_tables_are_written_exactly_as_the_cell_rules_say() -> None:
    tables = _real_tables()
    assert len(tables["transactions"]) > 10_000  # the shared fixtures, not a toy
    for table, frame in tables.items():
        expected = reference_csv(table, frame)
        assert csv_bytes(table, frame) == expected, table
        written_csv, written_parquet = data_files(table, frame)
        assert written_csv == expected, table
        assert written_parquet == parquet_bytes(table, frame), table
        # the Parquet file holds the same rows in the same order as the CSV
        back = pq.read_table(io.BytesIO(written_parquet)).to_pandas()
        key = next(iter(field_types(table)))
        assert back[key].tolist() == reference_order(table, frame)[key].tolist(), table


def test_transactions_csv_figures_on_real_data() -> None:
    frame = _real_tables()["transactions"]
    published = pd.read_csv(
        io.BytesIO(csv_bytes("transactions", frame)), dtype=str, keep_default_na=False
    )
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


def test_awkward_values_are_written_as_the_cell_rules_say() -> None:
    frame = _awkward_transactions()
    assert csv_bytes("transactions", frame) == reference_csv("transactions", frame)
    typed = table_frame("transactions", frame)
    assert column_cells("number", typed["value"])[:9] == [
        "0.1",
        "0",
        "123",
        "-5",
        "1000000000000000.0",
        "999999999999999",
        "1e+16",
        "2.5e-07",
        "-876291.125",
    ]
    assert column_cells("number", typed["value"])[9:] == ["", ""]
    assert column_cells("string", typed["activity_id"])[:6] == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tleading tab",
        "'\rleading return",
    ]
    assert column_cells("boolean", typed["humanitarian"])[:3] == ["true", "false", ""]


def test_ties_on_the_key_are_ordered_by_the_other_columns() -> None:
    frame = _awkward_transactions()
    ordered = canonical_order("transactions", frame)
    assert ordered["transaction_id"].tolist() == [
        "t0", "t1", "t1", "t1", "t2", "t2", "t3", "t4", "t5", "t6", "t9",
    ]  # fmt: skip
    expected = reference_order("transactions", frame)
    pd.testing.assert_frame_equal(ordered, expected)
    # the order never depends on the order rows came in
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    pd.testing.assert_frame_equal(canonical_order("transactions", shuffled), expected)


def test_datetimes_are_utc_with_microseconds_only_when_there_are_any() -> None:
    frame = pd.DataFrame(
        {
            "source_file": ["a.xml", "b.xml", "c.xml", "d.xml"],
            "fetched_at": [
                pd.Timestamp("2026-11-28T02:00:00Z"),
                pd.Timestamp("2026-11-28T03:04:05.000123+01:00"),
                None,
                pd.Timestamp("2024-02-29T23:59:59.5Z"),
            ],
            "bytes": [10, None, 3_000_000_000, 0],
        }
    )
    assert csv_bytes("sources", frame) == reference_csv("sources", frame)
    typed = table_frame("sources", frame)
    assert column_cells("datetime", typed["fetched_at"]) == [
        "2026-11-28T02:00:00Z",
        "2026-11-28T02:04:05.000123Z",
        "",
        "2024-02-29T23:59:59.500000Z",
    ]
    assert column_cells("integer", typed["bytes"]) == ["10", "", "3000000000", "0"]


def test_an_empty_table_is_its_header() -> None:
    frame = table_frame("budgets", [])
    assert csv_bytes("budgets", frame) == (",".join(field_types("budgets")) + "\r\n").encode()
