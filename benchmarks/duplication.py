"""Timing and peak memory of ``overlapping_pairs`` on synthetic data of growing size.

    .venv/bin/python benchmarks/duplication.py --sizes 10000 100000 1000000

Each size runs in its own process (so peak memory is per size): the synthetic
activities have 150 recipient countries and 300 partners with Zipf-like skew,
60% CD, one to three DAC 5-digit sectors (12 CD sectors, skewed, plus
non-CD ones), start dates 2010-2025 and durations of 6 months to 5 years,
titles and short descriptions drawn from a vocabulary. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.metrics.duplication import OverlapSettings, overlapping_pairs  # noqa: E402

CD_SECTORS = [
    "15110", "15111", "15112", "15113", "15114", "15117",
    "15118", "15119", "15125", "15185", "16062", "11330",
]  # fmt: skip
OTHER_SECTORS = ["12220", "14030", "31120", "43010", "21020", "11220", "12240", "23210"]
WORDS = [
    "support",
    "strengthening",
    "capacity",
    "development",
    "public",
    "financial",
    "management",
    "reform",
    "national",
    "statistical",
    "office",
    "training",
    "institutional",
    "governance",
    "budget",
    "audit",
    "procurement",
    "revenue",
    "mobilisation",
    "decentralisation",
    "local",
    "government",
    "programme",
    "project",
    "phase",
    "technical",
    "assistance",
    "twinning",
    "peer",
    "learning",
    "leadership",
    "county",
    "municipal",
    "ministry",
    "finance",
    "planning",
    "monitoring",
    "evaluation",
    "data",
    "systems",
    "digital",
    "tax",
    "customs",
    "debt",
    "accountability",
    "transparency",
    "parliament",
    "oversight",
    "civil",
    "service",
    "health",
    "education",
    "water",
    "sanitation",
    "agriculture",
    "energy",
    "climate",
    "resilience",
    "gender",
    "youth",
    "employment",
    "vocational",
    "skills",
    "women",
    "rural",
    "urban",
    "infrastructure",
    "roads",
    "renforcement",
    "capacités",
    "gestion",
    "finances",
    "publiques",
    "appui",
    "fortalecimiento",
    "gestión",
    "finanzas",
    "públicas",
    "programa",
    "apoyo",
    "formación",
    "desarrollo",
    "institucional",
]


def zipf_choice(rng: np.random.Generator, n_items: int, size: int, a: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_items + 1) ** a
    return rng.choice(n_items, size=size, p=weights / weights.sum())


def synthetic(n: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = np.char.add("XX-ACT-", np.arange(n).astype(str))
    countries = np.array([f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(150)])
    start = np.datetime64("2010-01-01") + rng.integers(0, 16 * 365, n).astype("timedelta64[D]")
    end = start + rng.integers(180, 5 * 365, n).astype("timedelta64[D]")
    missing = rng.random(n) < 0.05
    words = np.array(WORDS)
    title_words = words[rng.integers(0, len(words), (n, 6))]
    titles = [" ".join(row) for row in title_words]
    desc_words = words[rng.integers(0, len(words), (n, 15))]
    descriptions = [" ".join(row) for row in desc_words]
    start_dates = pd.Series(pd.to_datetime(start)).dt.date.astype(object)
    end_dates = pd.Series(pd.to_datetime(end)).dt.date.astype(object)
    end_dates[missing] = None
    activities = pd.DataFrame(
        {
            "activity_id": ids,
            "title": titles,
            "description": descriptions,
            "reporting_org_ref": np.char.add("P-", zipf_choice(rng, 300, n).astype(str)),
            "is_cd": rng.random(n) < 0.6,
            "start_date": start_dates,
            "end_date": end_dates,
        }
    )
    activity_countries = pd.DataFrame(
        {"activity_id": ids, "country_code": countries[zipf_choice(rng, 150, n, 0.8)], "share": 1.0}
    )
    n_sectors = rng.integers(1, 4, n)
    sector_act = np.repeat(np.arange(n), n_sectors)
    all_sectors = np.array(CD_SECTORS + OTHER_SECTORS)
    codes = all_sectors[zipf_choice(rng, len(all_sectors), len(sector_act), 0.9)]
    sectors = pd.DataFrame({"activity_id": ids[sector_act], "code": codes})
    sectors = sectors.drop_duplicates()
    sectors["share"] = 1.0 / sectors.groupby("activity_id")["code"].transform("size")
    sectors["vocabulary"] = "1"
    sectors["is_cd_sector"] = sectors["code"].isin(CD_SECTORS)
    return {
        "activities": activities,
        "activity_sectors": sectors,
        "activity_countries": activity_countries,
    }


def run_one(n: int, huge_block: int, window: int) -> dict[str, float]:
    tables = synthetic(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    pairs = overlapping_pairs(tables, OverlapSettings(huge_block=huge_block, window=window))
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "seconds": seconds,
        "peak_rss_mb": peak / 1024,
        "peak_increase_mb": (peak - base) / 1024,
        "pairs": len(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--huge-block", type=int, default=OverlapSettings().huge_block)
    parser.add_argument("--window", type=int, default=OverlapSettings().window)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.huge_block, args.window)))
        return
    print(
        f"{dt.datetime.now():%Y-%m-%d %H:%M} overlapping_pairs benchmark "
        f"(huge_block={args.huge_block}, window={args.window})"
    )
    print(f"{'activities':>11} {'seconds':>9} {'peak MB':>9} {'+MB':>8} {'pairs':>9} {'x time':>7}")
    previous: dict[str, float] | None = None
    for n in args.sizes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(n),
                "--huge-block",
                str(args.huge_block),
                "--window",
                str(args.window),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = f"{result['seconds'] / previous['seconds']:.1f}" if previous else "-"
        print(
            f"{n:>11,} {result['seconds']:>9.2f} {result['peak_rss_mb']:>9.0f} "
            f"{result['peak_increase_mb']:>8.0f} {result['pairs']:>9,} {ratio:>7}",
            flush=True,
        )
        previous = result


if __name__ == "__main__":
    main()
