"""All inputs together: IATI datasets, country reports and partner submissions, in DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from assets.harmonise import combine as combining
from assets.harmonise.combine import FetchOutcome
from assets.harmonise.reuse import inputs_fingerprint
from assets.harmonise.store import reference_dir
from assets.iati.extract import extract_dir, is_extracted
from assets.iati.fetching import (
    conformance_key,
    dataset_inputs,
    fetch_outcome,
    iati_dir,
    last_run,
    raw_store,
    reference_fingerprint,
)
from assets.iati.harmonise import conformance_path
from assets.iati.transform import TransformOptions, iati_tables
from assets.settings import Settings
from assets.submissions.intake import MARKER as SUBMISSION_MARKER
from assets.submissions.intake import load_index, processed_submissions, submissions_dir
from assets.warehouse import connection


def transform_options(settings: Settings) -> TransformOptions:
    """The rules of the configuration and the reference data this run stored."""
    folder = reference_dir(settings.data_dir)
    rates = folder / "exchange_rates.parquet"
    codelists = folder / "codelists.parquet"
    return TransformOptions(
        rules=settings.cd_rules,
        preferred_languages=settings.preferred_languages,
        rate_fallback_months=settings.rate_fallback_months,
        rates=pd.read_parquet(rates) if rates.exists() else pd.DataFrame(),
        codelists=pd.read_parquet(codelists) if codelists.exists() else None,
        max_findings=settings.quality.max_findings,
    )


def transform(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Every harmonised table of tonight's inputs as ``c_<table>`` in ``con``: the extracted
    IATI datasets transformed, the processed submissions, tonight's fetch outcome, one
    activity per identifier."""
    inputs, outcomes = dataset_inputs(settings)
    iati_tables(con, inputs, transform_options(settings))
    submissions = processed_submissions(settings)
    combining.combine_tables(con, [(h.source_file, h.tables) for h in submissions], outcomes)


def refreshed_sources(settings: Settings, sources: pd.DataFrame) -> pd.DataFrame:
    """The combined ``sources`` table of an earlier night with tonight's fetch outcome
    (used when the inputs did not change, so nothing else in the tables can have)."""
    results = {r["key"]: r for r in last_run(settings.data_dir) if r["sha256"]}
    records = raw_store(settings).records()
    outcomes = [
        fetch_outcome(key, results.get(key, {"status": None}), record)
        for key, record in records.items()
    ]
    with connection(settings) as con:
        return combining.refresh_sources(con, sources, outcomes)


def combined_fingerprint(settings: Settings) -> str:
    """What :func:`transform` would combine tonight, as one digest
    (:func:`assets.harmonise.reuse.inputs_fingerprint`)."""
    root = iati_dir(settings.data_dir)
    key = conformance_key(settings)

    def dataset_marker(sha256: str | None) -> str | None:
        if not sha256 or not is_extracted(root / "extract", sha256):
            return None
        findings = conformance_path(root / "conformance", key, sha256)
        return f"{extract_dir(root / 'extract', sha256)}|{findings.exists()}"

    folder = submissions_dir(settings.data_dir)
    index = load_index(settings.data_dir)
    submissions = [json.dumps(index, sort_keys=True)]
    for name in sorted(index):
        path: Path = folder / name / SUBMISSION_MARKER
        submissions.append(path.read_text(encoding="utf-8") if path.exists() else f"{name}: -")
    return inputs_fingerprint(
        settings,
        last_run(settings.data_dir),
        reference_fingerprint(settings),
        dataset_marker,
        submissions,
    )


__all__ = ["FetchOutcome", "combined_fingerprint", "refreshed_sources", "transform"]
