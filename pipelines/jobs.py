"""The night's job: reference data and fetch, the extraction of every dataset not
extracted yet (batches fanned out as steps), the transform, the checks and the release,
in one run that the schedule, the UI and ``cdcompact run`` launch alike."""

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

NIGHTLY_JOB = "nightly_job"
#: The tag of the night's runs, which dagster.yaml's queue limits to one at a time (two
#: nights at once would write the same data folder).
STAGE_TAG = "cdcompact/stage"

nightly_job = dg.define_asset_job(
    NIGHTLY_JOB,
    selection=dg.AssetSelection.assets(
        iati_exchange_rates,
        iati_codelists,
        iati_schemas,
        iati_fetch,
        iati_extract,
        iati_transform,
        data_release,
    ),
    tags={STAGE_TAG: "night"},
    description="The night: reference data and fetch, the extraction of every dataset not "
    "extracted yet (in batches, a step each), the transform in DuckDB, the blocking checks "
    "and a release when the tables changed.",
)
