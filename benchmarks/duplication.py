"""Timing and peak memory of the overlapping-effort pair search on synthetic data of growing size.

    .venv/bin/python benchmarks/duplication.py --sizes 10000 100000 1000000

Each size runs in its own process (so peak memory is per size). The synthetic
activities are drawn from the real distributions of the harmonised fixtures
(``/work/shared/fixtures/iati/valid``, harmonised once per process with
``harmonise_paths``): each synthetic activity copies a random real activity's
profile (CD flag, number of recipient countries, vocabulary-1 sector codes and
shares, duration in days, missing dates, number of title and description
words), gets a start date drawn from the real start dates (± one year), title
and description words drawn from the real word frequencies, one of 150
recipient countries and 300 partners with Zipf-like skew, and a unique
identifier. Without the fixtures, the older purely synthetic generator is used
(and the header says so). The tables go into a DuckDB connection with the configured
limits; the time is :func:`assets.metrics.duplication.overlapping_pairs` (the search in
SQL, the title similarity of the pairs above the threshold in Python, in batches) with
the configured threshold and use of text. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.metrics.duplication import (  # noqa: E402
    PairSearch,
    PairSearchStats,
    overlapping_pairs,
)
from benchmarks.child import run_child  # noqa: E402

FIXTURES = Path("/work/shared/fixtures/iati/valid")
N_COUNTRIES, N_PARTNERS = 150, 300
MAX_DESCRIPTION_WORDS = 200  # descriptions are cut at 1000 characters anyway

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


def fixture_tables() -> dict[str, pd.DataFrame] | None:
    """The harmonised fixtures, or None when they are missing."""
    if not FIXTURES.is_dir() or not any(FIXTURES.glob("*.xml")):
        return None
    from assets.iati.harmonise import HarmoniseOptions, harmonise_paths
    from assets.settings import load_settings

    _, tables = harmonise_paths([FIXTURES], HarmoniseOptions(rules=load_settings().cd_rules))
    return tables


def _words(texts: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(words per text, vocabulary, word probabilities) of a text column."""
    split = texts.astype("string").fillna("").str.lower().str.split()
    counts = split.str.len().fillna(0).astype("int64").to_numpy()
    freq = pd.Series([w for ws in split for w in ws], dtype=object).value_counts()
    if freq.empty:
        freq = pd.Series({"project": 1})
    return counts, freq.index.to_numpy(dtype=object), (freq / freq.sum()).to_numpy()


def _texts(
    rng: np.random.Generator, n_words: np.ndarray, vocab: np.ndarray, p: np.ndarray
) -> list[str]:
    drawn = vocab[rng.choice(len(vocab), size=int(n_words.sum()), p=p)]
    cuts = np.cumsum(n_words)[:-1]
    return [" ".join(ws) for ws in np.split(drawn, cuts)]


def from_fixtures(
    real: dict[str, pd.DataFrame], n: int, cd_share: float | None = 0.6, seed: int = 7
) -> dict[str, pd.DataFrame]:
    """n synthetic activities, each a copy of a random real activity's profile.

    ``cd_share``: share of CD activities (None: the fixtures' own share, about 23%;
    the default 0.6 stresses the pair search, which only looks at CD activities).
    """
    rng = np.random.default_rng(seed)
    acts = real["activities"]
    real_ids = acts["activity_id"].astype(str).to_numpy()
    real_cd = acts["is_cd"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if cd_share is None or real_cd.all() or not real_cd.any():
        template = rng.integers(0, len(real_ids), n)
    else:  # CD activities copy real CD ones, the others real non-CD ones
        cd_rows, other_rows = np.flatnonzero(real_cd), np.flatnonzero(~real_cd)
        is_cd = rng.random(n) < cd_share
        template = np.where(
            is_cd,
            cd_rows[rng.integers(0, len(cd_rows), n)],
            other_rows[rng.integers(0, len(other_rows), n)],
        )
    ids = np.char.add("BENCH-", np.arange(n).astype(str))

    start = pd.to_datetime(acts["start_date"], errors="coerce")
    end = pd.to_datetime(acts["end_date"], errors="coerce")
    duration = np.array((end - start).dt.days.to_numpy(dtype="float64", na_value=np.nan))
    duration[duration < 0] = np.nan
    real_starts = start.dropna().to_numpy(dtype="datetime64[D]")
    starts = real_starts[rng.integers(0, len(real_starts), n)] + rng.integers(-365, 366, n).astype(
        "timedelta64[D]"
    )
    dur = duration[template]
    has_start = ~start.isna().to_numpy()[template]
    start_dates = pd.Series(pd.to_datetime(starts)).dt.date.astype(object)
    end_dates = pd.Series(
        pd.to_datetime(starts + np.nan_to_num(dur).astype("int64").astype("timedelta64[D]"))
    ).dt.date.astype(object)
    start_dates[~has_start] = None
    end_dates[np.isnan(dur) | ~has_start] = None

    title_n, title_vocab, title_p = _words(acts["title"])
    desc_n, desc_vocab, desc_p = _words(acts["description"])
    titles = _texts(rng, np.maximum(title_n[template], 1), title_vocab, title_p)
    descriptions = _texts(
        rng, np.minimum(desc_n[template], MAX_DESCRIPTION_WORDS), desc_vocab, desc_p
    )
    activities = pd.DataFrame(
        {
            "activity_id": ids,
            "title": titles,
            "description": descriptions,
            "reporting_org_ref": np.char.add("P-", zipf_choice(rng, N_PARTNERS, n).astype(str)),
            "is_cd": real_cd[template],
            "start_date": start_dates,
            "end_date": end_dates,
        }
    )
    del titles, descriptions

    # countries: the template's number of countries, drawn with skew, equal shares
    per_act = real["activity_countries"].groupby("activity_id").size()
    n_countries = per_act.reindex(real_ids, fill_value=0).to_numpy()[template]
    country_act = np.repeat(np.arange(n), n_countries)
    codes = np.array([f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(N_COUNTRIES)])
    countries = pd.DataFrame(
        {
            "activity_id": ids[country_act],
            "country_code": codes[zipf_choice(rng, N_COUNTRIES, len(country_act), 0.8)],
        }
    ).drop_duplicates()
    countries["share"] = 1.0 / countries.groupby("activity_id")["country_code"].transform("size")

    # sectors: the template's vocabulary-1 sector codes and shares
    s = real["activity_sectors"]
    s = s.loc[s["vocabulary"].astype("string") == "1"]
    s = pd.DataFrame(
        {
            "template": pd.Index(real_ids).get_indexer(s["activity_id"].astype(str)),
            "code": s["code"].astype(str).to_numpy(),
            "share": pd.to_numeric(s["share"], errors="coerce").to_numpy(dtype="float64"),
            "is_cd_sector": s["is_cd_sector"].astype("boolean").fillna(False).to_numpy(bool),
        }
    ).sort_values("template")
    first = np.searchsorted(s["template"].to_numpy(), np.arange(len(real_ids)))
    n_sec = np.diff(np.append(first, len(s)))
    k = n_sec[template]
    sector_act = np.repeat(np.arange(n), k)
    offset = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
    rows = np.repeat(first[template], k) + offset
    sectors = pd.DataFrame(
        {
            "activity_id": ids[sector_act],
            "vocabulary": "1",
            "code": s["code"].to_numpy()[rows],
            "share": s["share"].to_numpy()[rows],
            "is_cd_sector": s["is_cd_sector"].to_numpy()[rows],
        }
    )
    return {
        "activities": activities,
        "activity_sectors": sectors,
        "activity_countries": countries,
    }


def run_one(n: int, huge_block: int, window: int, cd_share: float | None) -> dict[str, Any]:
    real = fixture_tables()
    source = (
        f"fixtures {FIXTURES} (CD share {cd_share if cd_share is not None else 'as in fixtures'})"
        if real is not None
        else "synthetic generator (fixtures missing)"
    )
    tables = from_fixtures(real, n, cd_share) if real is not None else synthetic(n)
    del real
    acts = tables["activities"]
    n_cd = int(acts["is_cd"].sum())
    from assets.metrics.stage import prepare_inputs
    from assets.settings import load_settings
    from assets.warehouse import connection
    from tests.metrics_run import register

    settings = load_settings()
    stats = PairSearchStats()
    with connection(settings) as con:
        register(con, tables)
        del tables
        prepare_inputs(con)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        began = time.perf_counter()
        overlapping_pairs(
            con,
            settings.metrics.overlap_threshold,
            settings.metrics.overlap_use_text,
            PairSearch(huge_block=huge_block, window=window),
            stats,
        )
        seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "source": source,
        "cd": n_cd,
        "seconds": seconds,
        "peak_rss_mb": peak / 1024,
        "peak_increase_mb": (peak - base) / 1024,
        "candidates": stats.candidates,
        "window_hits": stats.window_hits,
        "pairs": stats.pairs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--huge-block", type=int, default=PairSearch().huge_block)
    parser.add_argument("--window", type=int, default=PairSearch().window)
    parser.add_argument(
        "--cd-share",
        type=float,
        default=0.6,
        help="share of CD activities (negative: the fixtures' own share)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per size; the median time is printed"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        share = args.cd_share if args.cd_share >= 0 else None
        print(json.dumps(run_one(args.one, args.huge_block, args.window, share)))
        return
    print(
        f"{dt.datetime.now():%Y-%m-%d %H:%M} overlapping-effort pair search benchmark "
        f"(huge_block={args.huge_block}, window={args.window}, median of {args.repeat} runs)"
    )
    print(
        f"{'activities':>11} {'CD':>9} {'median s':>9} {'min s':>8} {'max s':>8} "
        f"{'peak MB':>9} {'candidates':>12} {'pairs':>9} {'x/doubling':>10}"
    )
    previous: dict[str, Any] | None = None
    for n in args.sizes:
        runs = [_run_child(n, args) for _ in range(max(1, args.repeat))]
        result = dict(runs[0])
        times = [r["seconds"] for r in runs]
        result["seconds"] = statistics.median(times)
        result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        if previous is None:
            print(f"data: {result['source']}")
            growth = "-"
        else:
            # time factor per doubling of the input: 2.0 = linear, 4.0 = quadratic
            doublings = math.log2(n / previous["n"])
            growth = f"{(result['seconds'] / previous['seconds']) ** (1 / doublings):.2f}"
        print(
            f"{n:>11,} {result['cd']:>9,} {result['seconds']:>9.2f} {min(times):>8.2f} "
            f"{max(times):>8.2f} {result['peak_rss_mb']:>9.0f} "
            f"{result['candidates']:>12,} {result['pairs']:>9,} {growth:>10}",
            flush=True,
        )
        previous = result


def _run_child(n: int, args: argparse.Namespace) -> dict[str, Any]:
    return run_child(
        __file__,
        [
            "--one",
            str(n),
            "--huge-block",
            str(args.huge_block),
            "--window",
            str(args.window),
            "--cd-share",
            str(args.cd_share),
        ],
    )


if __name__ == "__main__":
    main()
