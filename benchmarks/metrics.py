"""The metrics stage, the pandas code before issue 18 against the SQL one: seconds and peak RSS.

    .venv/bin/python benchmarks/metrics.py --activities 20000 200000
    .venv/bin/python benchmarks/metrics.py --tables var/bench/tables-1000

Each run is a fresh process (so its peak RSS is its own): ``old`` reads the harmonised
tables into frames and runs ``tests/legacy/metrics.py`` (the pandas stage, kept as the
oracle of the tests); ``new`` attaches the same Parquet files to a DuckDB connection with
the configured limits (``warehouse`` in config/compact.yaml: memory limit, spill folder,
threads), copies them into tables as the transform leaves them (``c_<table>``) and runs
:func:`assets.metrics.stage.add_metrics`. Both times cover the stage alone, not reading
the tables; the peak RSS is the process's, at the end of the stage (``--check`` then
reads both results into frames to compare them).

The tables are either a folder of harmonised Parquet files (``--tables``, e.g. what
``cdcompact iati harmonise --out`` or a pipeline run wrote) or synthetic ones
(``--activities N``, :func:`synthetic_tables`): N activities copying the profiles of the
shared fixtures' real activities (sectors, countries, dates, title words; see
``benchmarks/duplication.py``), with about five transactions each in several currencies,
funding chains, parent and child activities reporting the same flow, partner submissions'
transactions for IATI activities, cross-file duplicates, country priorities, partner
declarations, results and government implementers, so that every rule of the stage has
work to do. The synthetic tables are written once under ``var/bench/metrics-<N>`` and
reused. ``--check`` also compares the two results table by table. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.harmonise.schema import frame_of_arrow, table_frame  # noqa: E402
from assets.harmonise.store import read_table, write_tables  # noqa: E402
from assets.iati.harmonise import ALL_TABLES  # noqa: E402
from benchmarks.child import run_child  # noqa: E402

STAGE_TABLES = ("transactions", "alignment_links", "alignment_metrics")
CURRENCIES = ("USD", "EUR", "GBP", "XOF")
AID_TYPES = ("C01", "D01", "D02", "B04", "A01", "B03", None)
YEARS = tuple(range(2015, 2027))


def _where(mask: np.ndarray, values: Any) -> np.ndarray:
    """``values`` where ``mask``, else None (an object array)."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = np.broadcast_to(np.asarray(values, dtype=object), len(mask))[mask]
    return out


def _day(days: np.ndarray) -> list[dt.date | None]:
    epoch = dt.date(1970, 1, 1)
    return [None if d < -1e9 else epoch + dt.timedelta(days=int(d)) for d in days]


def synthetic_tables(
    real: dict[str, pd.DataFrame], n: int, seed: int = 11
) -> dict[str, pd.DataFrame]:
    """Every harmonised table for ``n`` activities drawn from the profiles of ``real``
    (the harmonised fixtures), with work for every rule of the metrics stage."""
    from benchmarks.duplication import from_fixtures

    rng = np.random.default_rng(seed)
    base = from_fixtures(real, n, cd_share=0.6, seed=seed)
    acts = base["activities"].copy()
    ids = acts["activity_id"].to_numpy(dtype=object)
    partners = acts["reporting_org_ref"].to_numpy(dtype=object)
    submitted = rng.random(n) < 0.05
    acts["source"] = np.where(submitted, "partner_submission", "iati")
    acts["source_file"] = [
        f"{p.lower()}-submission.xlsx" if s else f"{p.lower()}.xml"
        for p, s in zip(partners, submitted, strict=True)
    ]
    acts["source_sha256"] = "0" * 64
    acts["source_ref"] = [f"iati-activity[{i}]" for i in range(n)]
    acts["hierarchy"] = np.where(rng.random(n) < 0.2, 2, 1)
    acts["default_aid_type"] = rng.choice(np.array(AID_TYPES, dtype=object), n)
    acts["cd_basis"] = _where(
        acts["is_cd"].to_numpy(dtype=bool),
        rng.choice(np.array(["cd_sector", "ftc_flag;cd_sector", "cd_keyword"]), n),
    )

    countries = base["activity_countries"]
    first_country = countries.drop_duplicates("activity_id").set_index("activity_id")[
        "country_code"
    ]
    country_codes = sorted(countries["country_code"].unique())

    # transactions: about five per activity, dated within the activity where it has dates
    per = rng.poisson(5, n)
    owner = np.repeat(np.arange(n), per)
    m = len(owner)
    start = pd.to_datetime(acts["start_date"]).to_numpy(dtype="datetime64[D]").astype("float64")
    end = pd.to_datetime(acts["end_date"]).to_numpy(dtype="datetime64[D]").astype("float64")
    s = np.nan_to_num(start[owner], nan=16000.0)
    e = np.where(np.isnan(end[owner]), s + 700, end[owner])
    date = s + np.floor(rng.random(m) * (np.maximum(e - s, 0) + 1))
    types = rng.choice(np.array(["3", "3", "3", "4", "2", "1", "11", "13"]), m)
    value = np.round(rng.lognormal(11, 2, m), 2)
    currency = rng.choice(np.array(CURRENCIES), m)
    rate = np.where(currency == "USD", 1.0, rng.uniform(0.0015, 1.4, m))
    usd = value * rate
    usd[rng.random(m) < 0.01] = np.nan  # no rate
    incoming = np.isin(types, ["1", "11", "13"])
    other = rng.integers(0, n, m)
    provider = _where(incoming & (rng.random(m) < 0.5), ids[other])
    receiver = _where((types == "3") & (rng.random(m) < 0.05), ids[other])
    transactions = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(m)],
            "activity_id": ids[owner],
            "transaction_type": types,
            "transaction_date": _day(date),
            "value": value,
            "currency": currency,
            "value_usd": usd,
            "usd_rate": rate,
            "provider_activity_id": provider,
            "receiver_activity_id": receiver,
            "aid_type": _where(rng.random(m) < 0.3, rng.choice(np.array(AID_TYPES[:-1]), m)),
            "disbursement_channel": _where(
                rng.random(m) < 0.2, rng.choice(np.array(["1", "2", "4"]), m)
            ),
            "recipient_country": _where(
                rng.random(m) < 0.1, rng.choice(np.array(country_codes), m)
            ),
            "counts_toward_totals": ~incoming,
            "exclusion_reason": _where(incoming, "incoming funds"),
            "source": acts["source"].to_numpy()[owner],
            "source_file": acts["source_file"].to_numpy()[owner],
            "source_sha256": "0" * 64,
            "source_ref": [f"{ids[o]}/transaction[{i}]" for i, o in enumerate(owner)],
        }
    )
    # the incoming side of some chains: B reports A's disbursement with no provider id
    chain = transactions.loc[transactions["receiver_activity_id"].notna()].sample(
        frac=0.5, random_state=seed
    )
    echoes = chain.assign(
        transaction_id=chain["transaction_id"] + "-in",
        activity_id=chain["receiver_activity_id"],
        transaction_type="1",
        receiver_activity_id=None,
        counts_toward_totals=False,
        exclusion_reason="incoming funds",
    )
    # children repeating their parent's flow: a level-2 activity of the same publisher
    level2 = acts.index[acts["hierarchy"] == 2].to_numpy()
    children = pd.Series(level2).groupby(partners[level2]).agg(list).to_dict()
    parents = transactions.loc[
        transactions["source"].eq("iati") & transactions["transaction_type"].isin(["3", "4"])
    ].sample(frac=0.1, random_state=seed + 1)
    child_of = [
        ids[rng.choice(children[partners[i]])] if partners[i] in children else None
        for i in pd.Index(ids).get_indexer(parents["activity_id"])
    ]
    repeats = parents.assign(
        transaction_id=parents["transaction_id"] + "-child", activity_id=child_of
    ).dropna(subset=["activity_id"])
    # partner submissions' transactions for IATI activities (merged by combine)
    merged_ids = ids[rng.choice(np.flatnonzero(~submitted), max(1, n // 100), replace=False)]
    merged = transactions.loc[transactions["activity_id"].isin(merged_ids)].assign(
        transaction_id=lambda f: f["transaction_id"] + "-sub",
        source="partner_submission",
        source_file="partner-returns.xlsx",
    )
    transactions = pd.concat([transactions, echoes, repeats, merged], ignore_index=True)
    transactions = transactions.sort_values(["activity_id", "transaction_id"], kind="stable")

    quarantine = [
        {
            "source_file": f"old-{i}.xml",
            "source_ref": "iati-activity[1]",
            "table": "activities",
            "field": "activity_id",
            "rule": "duplicate_activity_across_files",
            "value": ids[i],
            "message": f"activity '{ids[i]}' is also published in {acts['source_file'].iloc[i]}, "
            "which is kept (an IATI publication over a submission, then the reporting "
            "organisation's own publication, else the most recently updated); this copy is "
            "not accepted",
            "severity": "error",
        }
        for i in rng.choice(n, max(1, n // 200), replace=False)
    ] + [
        {
            "source_file": "partner-returns.xlsx",
            "source_ref": "sheet activities, row 2",
            "table": "activities",
            "field": "activity_id",
            "rule": "activity_also_in_iati",
            "value": activity,
            "message": "merged",
            "severity": "warning",
        }
        for activity in merged_ids
    ]

    # country priorities on CD sectors, declarations, results, implementers
    cd_codes = sorted(
        base["activity_sectors"].loc[base["activity_sectors"]["is_cd_sector"], "code"].unique()
    )
    priorities = [
        {"country_code": c, "priority_id": f"{c}-P{k}", "title": f"Priority {k}",
         "sector_code": cd_codes[(i + k) % len(cd_codes)] if k < 3 else None}
        for i, c in enumerate(country_codes) for k in range(4)
    ]  # fmt: skip
    declared = rng.choice(n, n // 4, replace=False)
    from assets.metrics.alignment import DECLARED_FLAGS as flags

    truth = np.array([True, False, None], dtype=object)
    declarations = [
        {
            "activity_id": ids[i],
            "partner_org_ref": partners[i] if rng.random() < 0.9 else "",
            "period": str(int(rng.choice(YEARS))),
            "priority_ids": ";".join(
                f"{first_country.get(ids[i], 'AA')}-P{k}" for k in rng.choice(5, 2, replace=False)
            ),
            **{flag: truth[rng.integers(0, 3)] for flag in flags},
        }
        for i in declared
    ]
    with_results = rng.choice(n, n // 5, replace=False)
    results = [
        {
            "result_id": f"r{i}-{k}",
            "activity_id": ids[i],
            "indicator_id": f"i{i}-{k // 2}" if rng.random() < 0.8 else None,
            "country_code": first_country.get(ids[i]) if rng.random() < 0.3 else None,
            "priority_id": f"{first_country.get(ids[i], 'AA')}-P{k}"
            if rng.random() < 0.2
            else None,
            "reference_code": f"{first_country.get(ids[i], 'AA')}-P1"
            if rng.random() < 0.2
            else None,
            "from_country_framework": truth[rng.integers(0, 3)],
            "government_data_source": truth[rng.integers(0, 3)],
            "baseline_value": float(rng.integers(0, 100)) if rng.random() < 0.6 else None,
            "target_value": float(rng.integers(0, 100)) if rng.random() < 0.6 else None,
        }
        for i in with_results
        for k in range(int(rng.integers(1, 4)))
    ]
    implementers = rng.choice(n, n // 10, replace=False)
    org_types = rng.choice(np.array(["10", "11", "15", "21"]), len(implementers))
    orgs = [
        {"activity_id": ids[i], "role": "4", "org_ref": f"GOV-{i}", "org_type": str(kind)}
        for i, kind in zip(implementers, org_types, strict=True)
    ]
    return _in_table_order(
        {
            "activities": acts,
            "activity_countries": countries,
            "activity_sectors": base["activity_sectors"],
            "participating_orgs": orgs,
            "transactions": transactions,
            "cd_priorities": priorities,
            "partner_declarations": declarations,
            "results": results,
            "quarantine": quarantine,
        }
    )


def _in_table_order(tables: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Each table typed by the schema, its rows in the combined tables' order (as the
    transform leaves them)."""
    import duckdb

    from assets.harmonise.store import to_arrow
    from assets.metrics.sql import register, table_order

    con = duckdb.connect()
    register(con)
    ordered = {}
    for table, rows in tables.items():
        con.register("frame", to_arrow(table, table_frame(table, rows)))
        ordered[table] = frame_of_arrow(
            con.sql(f"SELECT * FROM frame ORDER BY {table_order(table)}").to_arrow_table()
        )
        con.unregister("frame")
    con.close()
    return ordered


def synthetic_folder(n: int) -> Path:
    """The synthetic tables of ``n`` activities as Parquet files (written once)."""
    folder = ROOT / "var" / "bench" / f"metrics-{n}"
    if not (folder / "transactions.parquet").exists():
        from benchmarks.duplication import fixture_tables

        real = fixture_tables()
        if real is None:
            raise SystemExit("the shared fixtures are needed to draw the synthetic tables")
        write_tables(synthetic_tables(real, n), folder)
    return folder


def _rss_mb() -> float:
    """The process's peak RSS: its own memory's high-water mark (``VmHWM``); ``ru_maxrss``
    would also count the parent's, which a child started from a larger parent inherits."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_old(folder: Path, out: Path | None) -> dict[str, Any]:
    from assets.settings import load_settings
    from tests.legacy.metrics import add_metrics

    tables = {
        t: read_table(t, folder / f"{t}.parquet") if (folder / f"{t}.parquet").exists()
        else table_frame(t, [])
        for t in ALL_TABLES
    }  # fmt: skip
    read = _rss_mb()
    began = time.perf_counter()
    result = add_metrics(tables, load_settings().metrics)
    seconds = time.perf_counter() - began
    peak = _rss_mb()
    if out is not None:
        write_tables({t: result[t] for t in _compared()}, out)
    return {"seconds": seconds, "peak_rss_mb": peak, "rss_after_reading_mb": read}


def run_new(folder: Path, out: Path | None) -> dict[str, Any]:
    from assets.metrics.stage import add_metrics, published_frames
    from assets.settings import load_settings
    from assets.warehouse import attach_tables, connection, quote

    settings = load_settings()
    with connection(settings) as con:
        attach_tables(con, folder, ALL_TABLES)
        for table in ALL_TABLES:  # the tables as the transform leaves them
            con.execute(f"CREATE TEMP TABLE {quote('c_' + table)} AS SELECT * FROM {quote(table)}")
        read = _rss_mb()
        began = time.perf_counter()
        add_metrics(con, settings.metrics)
        seconds = time.perf_counter() - began
        peak = _rss_mb()
        if out is not None:  # the comparison reads the results into pandas, after the peak
            frames = published_frames(con)
            write_tables({t: frames[t] for t in _compared()}, out)
    return {"seconds": seconds, "peak_rss_mb": peak, "rss_after_reading_mb": read}


def _compared() -> tuple[str, ...]:
    from assets.metrics.stage import METRIC_TABLES

    return ("transactions", *METRIC_TABLES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activities", type=int, nargs="*", default=[])
    parser.add_argument("--tables", type=Path, nargs="*", default=[])
    parser.add_argument("--check", action="store_true", help="compare the two results")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        which, folder, out = args.one
        run = run_old if which == "old" else run_new
        print(json.dumps(run(Path(folder), Path(out) if out != "-" else None)))
        return
    folders = [synthetic_folder(n) for n in args.activities] + list(args.tables)
    if not folders:
        folders = [synthetic_folder(20_000)]
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M} metrics stage, pandas (old) against DuckDB (new)")
    print(f"{'tables':<32} {'rows':>10} {'code':>5} {'seconds':>9} {'peak RSS MB':>12}")
    for folder in folders:
        rows = sum(
            len(read_table(t, folder / f"{t}.parquet"))
            for t in ("transactions",)
            if (folder / f"{t}.parquet").exists()
        )
        results = {}
        for which in ("old", "new"):
            out = ROOT / "var" / "bench" / f"metrics-out-{which}" if args.check else None
            results[which] = run_child(__file__, ["--one", which, str(folder), str(out or "-")])
            print(
                f"{folder.name:<32} {rows:>10,} {which:>5} {results[which]['seconds']:>9.2f} "
                f"{results[which]['peak_rss_mb']:>12.0f}",
                flush=True,
            )
        if args.check:
            for table in _compared():
                old = read_table(
                    table, ROOT / "var" / "bench" / "metrics-out-old" / f"{table}.parquet"
                )
                new = read_table(
                    table, ROOT / "var" / "bench" / "metrics-out-new" / f"{table}.parquet"
                )
                pd.testing.assert_frame_equal(new, old, check_exact=True, obj=table)
            print(f"{folder.name}: the same {len(_compared())} tables, value for value")


if __name__ == "__main__":
    main()
