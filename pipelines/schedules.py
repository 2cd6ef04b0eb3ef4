"""The nightly schedule, and the sensor that registers the dataset partitions.

``nightly`` (cron from config) launches ``nightly_job``: one run per night, whose
executor fans the extraction out (a step per batch of datasets) and fans it back in to
the transform and the release, so a night whose extraction failed combines and
publishes nothing, and says so in its run. ``cdcompact run`` launches the same job.

``iati_datasets_sensor`` registers a partition of ``iati_dataset`` for every dataset
with a good copy, after each fetch (its cursor is the last fetch it dealt with); the
night's extraction steps record each dataset's extraction on its partition.
"""

import dagster as dg

from assets.iati.fetching import last_run
from assets.settings import Settings
from pipelines.iati import IATI_DATASETS, IATI_DATASETS_NAME, iati_fetch
from pipelines.jobs import nightly_job
from pipelines.resources import CompactConfig


def nightly_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly",
        job=nightly_job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        description="The nightly job: reference data and fetch, the changed datasets, the "
        "tables and the release.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each fetch: a partition of iati_dataset for every dataset with a "
    "good copy that the instance does not know yet.",
)
def iati_datasets_sensor(
    context: dg.SensorEvaluationContext, compact: CompactConfig
) -> dg.SensorResult | dg.SkipReason:
    latest = context.instance.fetch_materializations(iati_fetch.key, limit=1).records
    if not latest:
        return dg.SkipReason("no fetch yet")
    fetch_id = str(latest[0].storage_id)
    if context.cursor == fetch_id:
        return dg.SkipReason("no fetch since the last evaluation")
    known = set(context.instance.get_dynamic_partitions(IATI_DATASETS_NAME))
    fetched = last_run(compact.settings().data_dir)
    new = [r["key"] for r in fetched if r["sha256"] and r["key"] not in known]
    return dg.SensorResult(
        dynamic_partitions_requests=[IATI_DATASETS.build_add_request(new)] if new else [],
        cursor=fetch_id,
    )
