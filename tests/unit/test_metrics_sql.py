"""The metrics stage in DuckDB gives the tables the pandas stage gave, value for value.

``tests/legacy/metrics.py`` is the pandas metrics stage this project used before the
metrics moved into the transform's DuckDB connection (issue 18), kept only as the oracle
of this test. On the shared fixtures, the demo (alone and with the sample submissions),
synthetic tables drawn from the fixtures (``benchmarks/metrics.py``: funding chains,
children repeating their parents, submissions' figures for IATI activities, priorities,
declarations, results) and every hand-built case of the metric tests, with the configured
settings and with others, both stages must give equal tables (the flagged transactions
and the four metric tables): every row in the same order, every value to the last bit
(``check_exact``), every pair id and every reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from assets.iati.codelists import load_codelists
from assets.iati.harmonise import (
    HarmonisedFile,
    HarmoniseOptions,
    combine,
    harmonise_file,
    harmonise_paths,
)
from assets.iati.rates import load_exchange_rates
from assets.metrics import sql
from assets.metrics.duplication import KIND, PairSearch
from assets.metrics.stage import METRIC_TABLES
from assets.settings import MetricsSettings, load_settings
from assets.submissions.check import check_submission
from assets.submissions.harmonise import harmonise_submission
from assets.submissions.read import read_submission
from benchmarks.metrics import synthetic_tables
from tests import submission_samples as samples
from tests.conftest import IATI_FIXTURES, PROJECT_ROOT, RATES
from tests.legacy import metrics as old
from tests.metrics_run import SETTINGS, complete, run_metrics
from tests.unit import (
    test_alignment_metrics,
    test_combine_submissions,
    test_double_counting,
    test_duplication_metrics,
    test_metrics_stage,
)

#: The tables the stage makes: the flagged transactions and the metrics.
STAGE_TABLES = ("transactions", *METRIC_TABLES)


def _settings(threshold: float, text: bool) -> MetricsSettings:
    return MetricsSettings(overlap_threshold=threshold, overlap_use_text=text, method_version="1")


#: The configured settings, and others that let more pairs through.
VARIANTS = {
    "configured": SETTINGS,
    "no text, threshold 0.05": _settings(0.05, False),
    "text, threshold 0.05": _settings(0.05, True),
}


def _options() -> HarmoniseOptions:
    return HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates(
            [RATES / "imf-monthly-subset.csv", RATES / "monthly-average-sdr-per-unit.json"]
        ),
    )


@cache
def _fixtures() -> dict[str, pd.DataFrame]:
    folders = [IATI_FIXTURES / "valid", IATI_FIXTURES / "legacy", IATI_FIXTURES / "invalid"]
    return harmonise_paths(folders, _options())[1]


@cache
def _demo() -> dict[str, pd.DataFrame]:
    return harmonise_paths([PROJECT_ROOT / "demo" / "iati"], _options())[1]


@cache
def _demo_and_submissions(folder: Path) -> dict[str, pd.DataFrame]:
    """The demo's IATI files with the sample country reports and partner submissions."""
    settings = load_settings()
    assert settings.codelists_dir is not None
    codelists = load_codelists(settings.codelists_dir)
    files: list[HarmonisedFile] = [
        harmonise_file(path, _options())
        for path in sorted((PROJECT_ROOT / "demo" / "iati").glob("*.xml"))
    ]
    for write in (
        samples.clean_country_report_ghana,
        samples.messy_country_report_kenya,
        samples.clean_partner_submission,
        samples.partner_json,
    ):
        path = write(folder)
        checked = check_submission(
            read_submission(path), settings, codelists, set(samples.DEMO_IATI_IDS)
        )
        files.append(
            harmonise_submission(
                checked, source_file=path.name, sha256="0" * 64, size=1, uri=path.name,
                rates=_options().rates,
            )
        )  # fmt: skip
    return combine(files)


@cache
def _synthetic() -> dict[str, pd.DataFrame]:
    real = harmonise_paths(
        [IATI_FIXTURES / "valid"], HarmoniseOptions(rules=load_settings().cd_rules)
    )
    return synthetic_tables(real[1], 3000)


def _submission_and_iati() -> dict[str, pd.DataFrame]:
    module = test_combine_submissions
    iati = harmonise_file(module.DEMO, module.options())
    return combine([module._submission(module.ACTIVITY), iati])


#: Every case: (builder, settings variants).
CASES: dict[str, tuple[Callable[[], dict[str, pd.DataFrame]], tuple[str, ...]]] = {
    "shared fixtures": (_fixtures, tuple(VARIANTS)),
    "demo": (_demo, tuple(VARIANTS)),
    "synthetic, 3000 activities": (_synthetic, tuple(VARIANTS)),
    "double counting": (test_double_counting.double_counting_tables, ("configured",)),
    "IATI and a submission": (_submission_and_iati, ("configured",)),
    "alignment": (test_alignment_metrics.alignment_tables, ("configured",)),
    "metrics stage": (test_metrics_stage.stage_tables, ("configured", "text, threshold 0.05")),
    "duplication": (test_duplication_metrics.build_tables, tuple(VARIANTS)),
    "duplication, three partners": (
        test_duplication_metrics.three_partners_tables,
        tuple(VARIANTS),
    ),
    "duplication, priorities": (test_duplication_metrics.priority_tables, tuple(VARIANTS)),
    "duplication, many sectors": (test_duplication_metrics.many_sectors_tables, tuple(VARIANTS)),
    "duplication, huge block": (test_duplication_metrics.huge_block_tables, tuple(VARIANTS)),
    "duplication, dense block": (test_duplication_metrics._dense_block_tables, tuple(VARIANTS)),
}


@cache
def _tables(case: str) -> dict[str, pd.DataFrame]:
    return complete(CASES[case][0]())


@cache
def _expected(case: str, variant: str) -> dict[str, pd.DataFrame]:
    """The pandas stage's tables (the oracle)."""
    return old.add_metrics(_tables(case), VARIANTS[variant])


def _compare(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for table in STAGE_TABLES:
        pd.testing.assert_frame_equal(
            got[table], expected[table].reset_index(drop=True), check_exact=True, obj=table
        )


@pytest.mark.parametrize(
    ("case", "variant"),
    [(case, variant) for case, (_, variants) in CASES.items() for variant in variants],
)
def test_every_table_equals_the_pandas_stages(case: str, variant: str) -> None:
    _compare(run_metrics(_tables(case), VARIANTS[variant]), _expected(case, variant))


def test_the_cases_give_every_kind_of_row() -> None:
    """The comparisons above are not of empty tables."""
    found: dict[str, set[str]] = {}
    for case, (_, variants) in CASES.items():
        for variant in variants:
            published = _expected(case, variant)
            for table in STAGE_TABLES:
                if len(published[table]):
                    found.setdefault("tables", set()).add(table)
            found.setdefault("kinds", set()).update(published["duplication_pairs"]["kind"])
            reasons = published["transactions"]["exclusion_reason"].dropna()
            found.setdefault("reasons", set()).update(
                reasons.str.replace(r"(from|activity|file) .*", r"\1", regex=True)
            )
            found.setdefault("bases", set()).update(published["alignment_links"]["basis"])
    assert found["tables"] == set(STAGE_TABLES)
    assert found["kinds"] == {KIND, "funding_chain", "same_activity_reported_twice"}
    assert {
        "incoming funds",
        "incoming funds from",
        "secondary reporter",
        "reported again by child activity",
        "also reported in IATI (file",
    } <= found["reasons"]
    assert found["bases"] == {"partner_declared", "result_reference", "sector_match"}


def test_the_demo_with_submissions_equals_the_pandas_stages(tmp_path: Path) -> None:
    tables = complete(_demo_and_submissions(tmp_path))
    assert len(tables["partner_declarations"])
    assert len(tables["cd_priorities"])
    for settings in VARIANTS.values():
        _compare(run_metrics(tables, settings), old.add_metrics(tables, settings))


@pytest.mark.parametrize("case", ["shared fixtures", "demo", "synthetic, 3000 activities"])
def test_the_combined_tables_as_the_transform_leaves_them(case: str) -> None:
    """Tables without a row order of their own (``c_<table>`` as combine makes them): the
    stage reads them in the tables' order, which is the order of the frames here."""
    tables = complete(CASES[case][0]())
    for settings in (SETTINGS, VARIANTS["no text, threshold 0.05"]):
        _compare(run_metrics(tables, settings, combined=True), old.add_metrics(tables, settings))


def test_sums_in_batches_equal_the_pandas_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sums in row order are made a batch of groups at a time (here of 500 rows)."""
    monkeypatch.setattr(sql, "BATCH_ROWS", 500)
    tables = complete(_synthetic())
    settings = VARIANTS["no text, threshold 0.05"]
    _compare(run_metrics(tables, settings), old.add_metrics(tables, settings))


@pytest.mark.parametrize(("huge_block", "window"), [(5, 2), (5, 3), (10, 4)])
def test_windowed_pair_search_equals_the_pandas_one(huge_block: int, window: int) -> None:
    settings = _settings(0.05, True)
    search = old.OverlapSettings(
        threshold=0.05, use_text=True, huge_block=huge_block, window=window
    )
    for builder in (test_duplication_metrics._dense_block_tables, _synthetic):
        tables = complete(builder())
        expected = old.overlapping_pairs(tables, search)
        pairs = run_metrics(tables, settings, PairSearch(huge_block, window))["duplication_pairs"]
        got = pairs.loc[pairs["kind"] == KIND].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=True)
        assert len(expected)
