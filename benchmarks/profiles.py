"""Timing and peak memory of the country and partner profile pages.

    .venv/bin/python benchmarks/profiles.py [--countries 50] [--partners 100] [--repeat 3]
    .venv/bin/python benchmarks/profiles.py --tables var/tables-1000 [--countries-of-data]

Builds synthetic release tables of a compact with that many countries and partners
(each partner active in about a fifth of the countries, 10 activities per partner and
country on average, 4 disbursements each, priorities, results with actuals, alignment
metrics for all partners and per partner, duplication metrics and overlapping pairs) and
writes them as Parquet, or takes the Parquet tables of a finished run (``--tables``).
Each repeat runs in a fresh process that puts the tables in a DuckDB connection as views
(:func:`assets.warehouse.attach_tables`, 1 GB memory limit) and times
:func:`publish.profiles.build_profiles` (the figures and the row extracts) and
:func:`publish.profile_html.render_all` (every page in every configured language), with
the process's peak RSS after each; it prints the medians. The target: under a minute
for both together. Not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.harmonise.schema import table_frame  # noqa: E402
from assets.harmonise.store import write_tables  # noqa: E402
from assets.warehouse import attach_tables, set_up  # noqa: E402
from benchmarks.child import run_child  # noqa: E402
from publish.profile_html import PageContext, render_all  # noqa: E402
from publish.profiles import TABLES, ProfileOptions, build_profiles  # noqa: E402

TARGET_SECONDS = 60.0
SECTORS = ["15110", "15111", "15112", "15113", "15114", "15117", "16062", "11330", "21020"]
MODALITIES = ["training", "technical_assistance", "twinning", "peer_learning", None]
METRICS = [
    "cd_share",
    "priority_alignment",
    "results_framework_use",
    "coordinated_tc",
    "country_systems_use",
    "on_budget",
    "parallel_piu_count",
]
YEARS = (2021, 2022, 2023, 2024)


def _countries(n: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [a + b for a in letters for b in letters][:n]


def synthetic_tables(n_countries: int, n_partners: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = random.Random(seed)
    countries = _countries(n_countries)
    partners = [f"XM-P{i:03d}" for i in range(n_partners)]
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    by_country: dict[str, list[str]] = {c: [] for c in countries}
    for partner in partners:
        rows["sources"].append(
            {"source_file": f"{partner}.xml", "source": "iati", "status": "ok", "n_records": 1}
        )
        for country in rng.sample(countries, max(1, n_countries // 5)):
            for k in range(rng.randint(5, 15)):
                activity_id = f"{partner}-{country}-{k}"
                by_country[country].append(activity_id)
                rows["activities"].append(
                    {
                        "activity_id": activity_id,
                        "title": f"Capacity development {k} of {partner} in {country}",
                        "reporting_org_ref": partner,
                        "reporting_org_name": f"Partner {partner[-3:]}",
                        "is_cd": rng.random() < 0.7,
                        "modality": rng.choice(MODALITIES),
                        "source": "iati",
                        "source_file": f"{partner}.xml",
                    }
                )
                rows["activity_countries"].append(
                    {"activity_id": activity_id, "country_code": country, "share": 1.0}
                )
                rows["activity_sectors"].append(
                    {
                        "activity_id": activity_id,
                        "vocabulary": "1",
                        "code": rng.choice(SECTORS),
                        "share": 1.0,
                    }
                )
                for t in range(4):
                    usd = float(rng.randint(10_000, 2_000_000))
                    rows["transactions"].append(
                        {
                            "transaction_id": f"{activity_id}-t{t}",
                            "activity_id": activity_id,
                            "transaction_type": "3",
                            "transaction_date": pd.Timestamp(
                                f"{rng.choice(YEARS)}-{rng.randint(1, 12):02d}-15"
                            ).date(),
                            "value": usd,
                            "currency": "USD",
                            "value_usd": usd,
                            "recipient_country": country,
                            "counts_toward_totals": True,
                        }
                    )
                rows["partner_declarations"].append(
                    {
                        "activity_id": activity_id,
                        "partner_org_ref": partner,
                        "period": "2024",
                        "on_budget": rng.random() < 0.5,
                    }
                )
            for metric in METRICS[:3]:
                rows["alignment_metrics"].append(
                    {
                        "country_code": country,
                        "partner_org_ref": partner,
                        "year": 2024,
                        "metric": metric,
                        "numerator": 1.0,
                        "denominator": 2.0,
                        "value": 0.5,
                        "n_activities": 2,
                        "n_activities_eligible": 2,
                        "coverage": 1.0,
                        "method_version": "1",
                    }
                )
    for country in countries:
        for p in range(8):
            priority_id = f"{country}-P{p}"
            rows["cd_priorities"].append(
                {
                    "country_code": country,
                    "priority_id": priority_id,
                    "title": f"Priority {p}",
                    "sector_code": SECTORS[p],
                    "source": "country_report",
                    "source_file": f"{country}.xlsx",
                }
            )
            for activity_id in rng.sample(by_country[country], min(6, len(by_country[country]))):
                rows["alignment_links"].append(
                    {
                        "activity_id": activity_id,
                        "country_code": country,
                        "priority_id": priority_id,
                        "basis": "sector_match",
                        "confidence": 0.5,
                    }
                )
            for year in YEARS:
                rows["results"].append(
                    {
                        "result_id": f"{priority_id}-R-{year}",
                        "country_code": country,
                        "priority_id": priority_id,
                        "indicator_id": f"{priority_id}-I",
                        "indicator_title": f"Indicator of priority {p}",
                        "reference_vocabulary": "SDG",
                        "reference_code": f"17.{p}.1",
                        "baseline_value": 10.0,
                        "target_value": 100.0,
                        "period_end": pd.Timestamp(f"{year}-12-31").date(),
                        "actual_value": 10.0 + 20 * (year - 2020) * rng.random(),
                        "source": "country_report",
                        "source_file": f"{country}.xlsx",
                    }
                )
        for year in YEARS:
            for metric in METRICS:
                rows["alignment_metrics"].append(
                    {
                        "country_code": country,
                        "year": year,
                        "metric": metric,
                        "numerator": rng.random(),
                        "denominator": 1.0,
                        "value": rng.random() if metric != "parallel_piu_count" else 3.0,
                        "n_activities": 10,
                        "n_activities_eligible": 12,
                        "coverage": 10 / 12,
                        "method_version": "1",
                    }
                )
            for sector in SECTORS:
                rows["duplication_metrics"].append(
                    {
                        "country_code": country,
                        "sector_code": sector,
                        "year": year,
                        "n_partners": rng.randint(1, 12),
                        "n_activities": rng.randint(1, 40),
                        "cd_disbursement_usd": float(rng.randint(10_000, 9_000_000)),
                        "hhi": rng.random(),
                        "method_version": "1",
                    }
                )
        activities = by_country[country]
        for i in range(min(40, len(activities) // 2)):
            a, b = rng.sample(activities, 2)
            rows["duplication_pairs"].append(
                {
                    "pair_id": f"{country}-pair-{i}",
                    "activity_id_a": a,
                    "activity_id_b": b,
                    "country_code": country,
                    "kind": "overlapping_effort",
                    "score": rng.random(),
                }
            )
        rows["sources"].append(
            {"source_file": f"{country}.xlsx", "source": "country_report", "status": "ok"}
        )
    return {name: table_frame(name, records) for name, records in rows.items()}


def _gigabytes(kilobytes: int) -> float:
    return kilobytes / 1024 / 1024


def measure(folder: Path, n_countries: int, languages: list[str]) -> dict[str, Any]:
    """One run over the Parquet tables in ``folder``: seconds and peak RSS (GB) of the
    figures and of the pages. ``n_countries`` 0: every country of the data has a page."""
    countries = tuple(_countries(n_countries))
    half = len(countries) // 2
    options = ProfileOptions(
        country_names={c: f"Country {c}" for c in countries},
        peer_groups={"region": {"North": list(countries[:half]), "South": list(countries[half:])}}
        if countries
        else {},
        countries=countries,
    )
    context = PageContext(version="2026-11-28.1", title="benchmark", published="2026-11-28")
    con = duckdb.connect(config={"memory_limit": "1GB", "preserve_insertion_order": False})
    set_up(con)
    attach_tables(con, folder, TABLES, row_numbers=True)
    started = time.perf_counter()
    built = build_profiles(con, options)
    middle = time.perf_counter()
    rss_figures = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = render_all(built.countries, built.partners, tuple(languages), context)
    ended = time.perf_counter()
    rss_pages = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "figures": middle - started,
        "pages": ended - middle,
        "rss_figures": _gigabytes(rss_figures),
        "rss_pages": _gigabytes(rss_pages),
        "countries": len(built.countries),
        "partners": len(built.partners),
        "html": sum(1 for path in out if path.endswith(".html")),
        "megabytes": (
            sum(len(d) for d in out.values())
            + sum(built.rows.path(p).stat().st_size for p in built.rows)
        )
        / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--countries", type=int, default=50)
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--languages", nargs="+", default=["en", "fr"])
    parser.add_argument("--tables", type=Path, help="Parquet tables of a run (not synthetic)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.countries, args.languages)))
        return 0
    with tempfile.TemporaryDirectory(prefix="cdcompact-profiles-") as temporary:
        folder = args.tables
        if folder is None:
            folder = Path(temporary)
            tables = synthetic_tables(args.countries, args.partners)
            write_tables(tables, folder)
            sizes = ", ".join(f"{name} {len(frame):,}" for name, frame in sorted(tables.items()))
            del tables
            print(f"profiles: {args.countries} countries, {args.partners} partners; rows: {sizes}")
        else:
            print(f"profiles: the tables in {folder}, every country of the data")
        countries = 0 if args.tables is not None else args.countries
        arguments = ["--child", str(folder), "--countries", str(countries), "--languages"]
        runs = [run_child(__file__, [*arguments, *args.languages]) for _ in range(args.repeat)]
    figures = statistics.median(r["figures"] for r in runs)
    pages = statistics.median(r["pages"] for r in runs)
    total = statistics.median(r["figures"] + r["pages"] for r in runs)
    last = runs[-1]
    print(
        f"figures {figures:.2f} s (peak RSS {max(r['rss_figures'] for r in runs):.2f} GB) · "
        f"pages {pages:.2f} s (peak RSS {max(r['rss_pages'] for r in runs):.2f} GB) · "
        f"total {total:.2f} s (median of {args.repeat}); {last['countries']} countries, "
        f"{last['partners']} partners, {last['html']} pages, {last['megabytes']:.1f} MB "
        "with the row extracts"
    )
    verdict = "met" if total < TARGET_SECONDS else "MISSED"
    print(f"target: under {TARGET_SECONDS:.0f} s for every page: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
