"""The jobs of the nightly chain: fetch (with reference data), the extraction of each
dataset not extracted yet, then the transform, the checks and the release."""

from __future__ import annotations

import dagster as dg

from pipelines.iati import (
    iati_codelists,
    iati_exchange_rates,
    iati_extract,
    iati_fetch,
    iati_schemas,
    iati_transform,
)
from pipelines.release import data_release

iati_fetch_job = dg.define_asset_job(
    "iati_fetch_job",
    selection=dg.AssetSelection.assets(
        iati_exchange_rates, iati_codelists, iati_schemas, iati_fetch
    ),
    description="Load the reference data and fetch every IATI dataset: the nightly chain's start.",
)

#: The tag of extraction runs, which dagster.yaml's queue limits.
STAGE_TAG = "cdcompact/stage"

iati_extract_job = dg.define_asset_job(
    "iati_extract_job",
    selection=dg.AssetSelection.assets(iati_extract),
    tags={STAGE_TAG: "extract"},
    description="Extract IATI datasets (one dynamic partition each; only datasets whose "
    "copy has not been extracted yet).",
)

iati_tables_job = dg.define_asset_job(
    "iati_tables_job",
    selection=dg.AssetSelection.assets(iati_transform, data_release),
    description="Transform every extracted dataset and submission into the harmonised tables "
    "in DuckDB, check them (blocking) and publish a release when they changed.",
)
