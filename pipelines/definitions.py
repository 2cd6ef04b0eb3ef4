"""The code location: the one place that assembles cdcompact's Dagster Definitions."""

from __future__ import annotations

import dagster as dg

from assets.settings import Settings, load_settings
from pipelines.alerts import run_failure_alert, stale_datasets_alert
from pipelines.iati import (
    iati_codelists,
    iati_exchange_rates,
    iati_extract,
    iati_fetch,
    iati_schemas,
    iati_transform,
)
from pipelines.jobs import iati_extract_job, iati_fetch_job, iati_tables_job
from pipelines.release import data_release
from pipelines.resources import resources
from pipelines.schedules import iati_datasets_sensor, iati_tables_sensor, nightly_schedule
from pipelines.submissions import submission, submission_job, submissions_sensor


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
        sensors=[
            iati_datasets_sensor,
            iati_tables_sensor,
            submissions_sensor,
            run_failure_alert,
            stale_datasets_alert,
        ],
        resources=resources(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev -m pipelines.definitions` and `cdcompact run`."""
    return build_definitions(load_settings())
