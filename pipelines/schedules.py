"""The nightly schedule and the sensors that carry the chain on.

``nightly`` (cron from config) loads the reference data and fetches every
dataset (registering a dynamic partition per dataset); when that run
succeeds, ``iati_datasets_sensor`` requests one run per dataset whose copy or
reference data changed — or, when nothing changed, the tables run directly;
when no dataset run is left queued or running, ``iati_tables_sensor``
requests the combine-and-publish run. ``cdcompact run`` drives the same chain
synchronously.
"""

from collections.abc import Iterator

import dagster as dg
from dagster import RunStatusSensorContext

from assets.iati.fetching import last_run, plan
from assets.settings import Settings, load_settings
from pipelines.jobs import iati_dataset_job, iati_fetch_job, iati_tables_job

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
    request_jobs=[iati_dataset_job, iati_tables_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After the fetch: one run per dataset to harmonise again, or the tables "
    "run at once when nothing changed.",
)
def iati_datasets_sensor(context: RunStatusSensorContext) -> dg.SensorResult:
    settings = load_settings()
    to_harmonise = plan(settings, last_run(settings.data_dir))
    run_id = context.dagster_run.run_id
    if not to_harmonise:
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"tables-after-{run_id}", job_name=iati_tables_job.name)
            ]
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=key, run_key=f"{run_id}:{key}", job_name=iati_dataset_job.name
            )
            for key in to_harmonise
        ]
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[iati_dataset_job],
    request_job=iati_tables_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When the last dataset run of a night has finished, combine the tables.",
)
def iati_tables_sensor(context: RunStatusSensorContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
    pending = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=iati_dataset_job.name, statuses=IN_FLIGHT), limit=1
    )
    if pending:
        yield dg.SkipReason("dataset runs are still queued or running")
        return
    yield dg.RunRequest(run_key=f"tables-after-{context.dagster_run.run_id}")
