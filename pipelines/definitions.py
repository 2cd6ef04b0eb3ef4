"""The code location: the one place that assembles cdcompact's Dagster Definitions."""

from __future__ import annotations

from typing import Any

import dagster as dg

from assets.iati.assets import (
    CompactConfig,
    iati_codelists,
    iati_exchange_rates,
    iati_extract,
    iati_fetch,
    iati_schemas,
    iati_transform,
)
from assets.release.assets import data_release
from assets.settings import Settings, load_settings
from assets.submissions.assets import submission, submission_job, submissions_sensor
from assets.warehouse import duckdb_resource
from pipelines.jobs import iati_extract_job, iati_fetch_job, iati_tables_job
from pipelines.schedules import iati_datasets_sensor, iati_tables_sensor, nightly_schedule


def build_definitions(settings: Settings) -> dg.Definitions:
    """Definitions for one configuration (tests pass their own)."""
    return dg.Definitions(
        assets=[
            iati_exchange_rates,
            iati_codelists,
            iati_schemas,
            iati_fetch,
            iati_extract,
            iati_transform,
            data_release,
            submission,
        ],
        jobs=[iati_fetch_job, iati_extract_job, iati_tables_job, submission_job],
        schedules=[nightly_schedule(settings)],
        sensors=[iati_datasets_sensor, iati_tables_sensor, submissions_sensor],
        resources=resources(settings),
    )


def resources(settings: Settings) -> dict[str, Any]:
    """The resources of the assets: the configuration file, and DuckDB (an in-memory
    database with the ``warehouse`` section's memory limit, spill folder and threads)."""
    return {
        "compact": CompactConfig(config_file=str(settings.config_file)),
        "warehouse": duckdb_resource(settings),
    }


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev -m pipelines.definitions` and `cdcompact run`."""
    return build_definitions(load_settings())
