"""The jobs of the nightly chain: fetch (with reference data), one run per changed dataset,
then the tables and the release."""

from __future__ import annotations

import dagster as dg

from assets.iati.assets import (
    iati_codelists,
    iati_dataset,
    iati_exchange_rates,
    iati_fetch,
    iati_harmonised,
    iati_schemas,
)
from assets.release.assets import data_release

iati_fetch_job = dg.define_asset_job(
    "iati_fetch_job",
    selection=dg.AssetSelection.assets(
        iati_exchange_rates, iati_codelists, iati_schemas, iati_fetch
    ),
    description="Load the reference data and fetch every IATI dataset: the nightly chain's start.",
)

iati_dataset_job = dg.define_asset_job(
    "iati_dataset_job",
    selection=dg.AssetSelection.assets(iati_dataset),
    description="Harmonise one IATI dataset (run once per changed dynamic partition).",
)

iati_tables_job = dg.define_asset_job(
    "iati_tables_job",
    selection=dg.AssetSelection.assets(iati_harmonised, data_release),
    description="Combine every dataset partition into the harmonised tables, check them "
    "(blocking) and publish a release when they changed.",
)
