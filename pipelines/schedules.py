"""The nightly schedule and the sensors that carry the chain on.

``nightly`` (cron from config) loads the reference data and fetches every
dataset (registering a dynamic partition per dataset); when that run
succeeds, ``iati_datasets_sensor`` requests the extraction of every dataset not
extracted yet, a run per range of at most ``EXTRACT_BATCH`` dataset partitions —
or, when there is nothing to extract, the tables run directly; when no
extraction run is left queued or running, ``iati_tables_sensor`` requests the
transform-and-publish run. ``cdcompact run`` drives the same chain synchronously.
"""

from collections.abc import Iterator

import dagster as dg
from dagster import RunStatusSensorContext

from assets.iati.fetching import extract_ranges, last_run, plan, raw_store
from assets.settings import Settings, load_settings
from pipelines.iati import EXTRACT_BATCH, IATI_DATASETS_NAME
from pipelines.jobs import iati_extract_job, iati_fetch_job, iati_tables_job

#: Dagster's tags of a run over a range of partitions (a single-run backfill's).
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def nightly_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly",
        job=iati_fetch_job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        description="The nightly job: reference data and fetch, the changed datasets, the "
        "tables and the release.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[iati_fetch_job],
    request_jobs=[iati_extract_job, iati_tables_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After the fetch: the extraction of the datasets not extracted yet (a run "
    "per range of dataset partitions), or the tables run at once when there is none.",
)
def iati_datasets_sensor(context: RunStatusSensorContext) -> dg.SensorResult:
    settings = load_settings()
    to_extract = plan(settings, last_run(settings.data_dir))
    run_id = context.dagster_run.run_id
    if not to_extract:
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"tables-after-{run_id}", job_name=iati_tables_job.name)
            ]
        )
    order = context.instance.get_dynamic_partitions(IATI_DATASETS_NAME)
    sizes = {k: r.bytes for k, r in raw_store(settings).records().items()}
    requests = []
    for first, last in extract_ranges(order, to_extract, sizes, EXTRACT_BATCH):
        if first == last:
            requests.append(
                dg.RunRequest(
                    partition_key=first, run_key=f"{run_id}:{first}", job_name=iati_extract_job.name
                )
            )
        else:
            requests.append(
                dg.RunRequest(
                    run_key=f"{run_id}:{first}:{last}",
                    job_name=iati_extract_job.name,
                    tags={RANGE_START: first, RANGE_END: last},
                )
            )
    return dg.SensorResult(run_requests=requests)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[iati_extract_job],
    request_job=iati_tables_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the last extraction run of a night has finished, transform the tables.",
)
def iati_tables_sensor(context: RunStatusSensorContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
    pending = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=iati_extract_job.name, statuses=IN_FLIGHT), limit=1
    )
    if pending:
        yield dg.SkipReason("extraction runs are still queued or running")
        return
    yield dg.RunRequest(run_key=f"tables-after-{context.dagster_run.run_id}")
