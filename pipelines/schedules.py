"""The nightly schedule and the sensors that carry the chain on.

``nightly`` (cron from config) loads the reference data; when that run
succeeds, ``iati_datasets_sensor`` registers a dynamic partition per
configured dataset file and requests one run per partition; when no dataset
run is left queued or running, ``iati_tables_sensor`` requests the combine
run. ``cdcompact run`` drives the same chain synchronously.
"""

from collections.abc import Iterator

import dagster as dg
from dagster import RunStatusSensorContext

from assets.iati.sources import SourceError, discover_datasets
from assets.settings import Settings, load_settings
from pipelines.jobs import iati_dataset_job, iati_reference_job, iati_tables_job

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def nightly_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly",
        job=iati_reference_job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        description="The nightly job: reference data, then every IATI dataset, then the tables.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[iati_reference_job],
    request_job=iati_dataset_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After the reference data: one partition and one run per IATI dataset file.",
)
def iati_datasets_sensor(context: RunStatusSensorContext) -> dg.SensorResult | dg.SkipReason:
    try:
        datasets = discover_datasets(load_settings())
    except SourceError as exc:
        return dg.SkipReason(str(exc))
    known = set(context.instance.get_dynamic_partitions("iati_datasets"))
    new = [d.key for d in datasets if d.key not in known]
    run_id = context.dagster_run.run_id
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=d.key, run_key=f"{run_id}:{d.key}") for d in datasets
        ],
        dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest("iati_datasets", new)]
        if new
        else [],
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
