"""The nightly schedule and the sensors that carry the chain on.

``nightly`` (cron from config) loads the reference data and fetches every
dataset; when that run succeeds, ``iati_datasets_sensor`` registers a dynamic
partition for every dataset new to the instance and requests the extraction of
every dataset not
extracted yet, a run per range of at most ``EXTRACT_BATCH`` dataset partitions —
or, when there is nothing to extract, the tables run directly. Every run of the
chain carries the night's tag (:data:`NIGHT_TAG`: the fetch run's id). Once every
extraction run of a night has finished, ``iati_tables_sensor`` requests that
night's transform-and-publish run, one per night (its run key is the night's);
when one of them failed, it requests nothing and says so (the failed run itself
is alerted by :mod:`pipelines.alerts`). ``cdcompact run`` drives the same chain
synchronously.
"""

import json

import dagster as dg
from dagster import RunStatusSensorContext

from assets.iati.fetching import extract_ranges, last_run, plan, raw_store
from assets.settings import Settings
from pipelines.iati import EXTRACT_BATCH, IATI_DATASETS, IATI_DATASETS_NAME
from pipelines.jobs import iati_extract_job, iati_fetch_job, iati_tables_job
from pipelines.resources import CompactConfig

#: Dagster's tags of a run over a range of partitions (a single-run backfill's).
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
#: The tag that ties the runs of one night together: the id of its fetch run.
NIGHT_TAG = "cdcompact/night"
#: Nights the tables sensor has dealt with, kept in its cursor.
NIGHTS_KEPT = 50
#: Extraction runs the tables sensor looks back over.
RUNS_LOOKED_AT = 1000
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
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


#: Seconds between two evaluations of the sensors that carry a night on: each costs one
#: query of run storage, and a night waits for them between its stages.
CHAIN_INTERVAL = 10


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[iati_fetch_job],
    request_jobs=[iati_extract_job, iati_tables_job],
    minimum_interval_seconds=CHAIN_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After the fetch: a partition for every dataset new to the instance, the "
    "extraction of the datasets not extracted yet (a run per range of dataset partitions), "
    "or the tables run at once when there is none.",
)
def iati_datasets_sensor(
    context: RunStatusSensorContext, compact: CompactConfig
) -> dg.SensorResult:
    settings = compact.settings()
    fetched = last_run(settings.data_dir)
    to_extract = plan(settings, fetched)
    night = context.dagster_run.run_id
    tags = {NIGHT_TAG: night}
    # every dataset with a copy is a partition; the new ones are added before the runs
    known = context.instance.get_dynamic_partitions(IATI_DATASETS_NAME)
    registered = set(known)
    new = [r["key"] for r in fetched if r["sha256"] and r["key"] not in registered]
    partitions = [IATI_DATASETS.build_add_request(new)] if new else []
    if not to_extract:
        return dg.SensorResult(
            run_requests=[tables_request(night)], dynamic_partitions_requests=partitions
        )
    order = [*known, *new]
    sizes = {k: r.bytes for k, r in raw_store(settings).records().items()}
    requests = []
    for first, last in extract_ranges(order, to_extract, sizes, EXTRACT_BATCH):
        if first == last:
            requests.append(
                dg.RunRequest(
                    partition_key=first,
                    run_key=f"{night}:{first}",
                    job_name=iati_extract_job.name,
                    tags=tags,
                )
            )
        else:
            requests.append(
                dg.RunRequest(
                    run_key=f"{night}:{first}:{last}",
                    job_name=iati_extract_job.name,
                    tags={**tags, RANGE_START: first, RANGE_END: last},
                )
            )
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partitions)


def register_datasets(
    instance: dg.DagsterInstance, fetch: dg.ExecuteInProcessResult, compact: CompactConfig
) -> list[str]:
    """What the daemon does with ``iati_datasets_sensor``'s partitions after a fetch run,
    for a fetch run executed in this process (``cdcompact run``): the dataset partitions
    the sensor asks for, registered; their keys."""
    context = dg.build_run_status_sensor_context(
        sensor_name=iati_datasets_sensor.name,
        dagster_instance=instance,
        dagster_run=fetch.dagster_run,
        dagster_event=fetch.get_run_success_event(),
        resources={"compact": compact},
    )
    result = iati_datasets_sensor(context)
    assert isinstance(result, dg.SensorResult)
    added: list[str] = []
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
            added.extend(request.partition_keys)
    return added


def tables_request(night: str) -> dg.RunRequest:
    """The one transform-and-publish run of a night (its run key is the night's)."""
    return dg.RunRequest(
        run_key=f"tables-{night}", job_name=iati_tables_job.name, tags={NIGHT_TAG: night}
    )


@dg.sensor(
    jobs=[iati_tables_job],
    minimum_interval_seconds=CHAIN_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When every extraction run of a night has finished: the night's tables "
    "run if they all succeeded, else nothing, said in the tick's log.",
)
def iati_tables_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    handled: list[str] = json.loads(context.cursor) if context.cursor else []
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=iati_extract_job.name), limit=RUNS_LOOKED_AT
    )
    nights: dict[str, list[dg.DagsterRun]] = {}
    for run in reversed(runs):  # oldest first
        night = run.tags.get(NIGHT_TAG)
        if night and night not in handled:
            nights.setdefault(night, []).append(run)
    requests = []
    skipped = []
    for night, night_runs in nights.items():
        if any(run.status in IN_FLIGHT for run in night_runs):
            continue
        handled.append(night)
        failed = [run.run_id for run in night_runs if run.status != dg.DagsterRunStatus.SUCCESS]
        if failed:
            message = (
                f"night {night}: {len(failed)} of {len(night_runs)} extraction runs did not "
                f"succeed ({', '.join(failed)}): the tables are not combined and nothing is "
                "published"
            )
            context.log.error(message)
            skipped.append(message)
            continue
        requests.append(tables_request(night))
    return dg.SensorResult(
        run_requests=requests,
        skip_reason="; ".join(skipped) if skipped and not requests else None,
        cursor=json.dumps(handled[-NIGHTS_KEPT:]),
    )
