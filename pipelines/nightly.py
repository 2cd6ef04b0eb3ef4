"""``cdcompact run``: the night once, now, on the Dagster instance in $DAGSTER_HOME.

What the daemon does over a day, done at once and waited for: the inbox sensor's
submissions are received and each checked in a run of ``submission_job``; then one run
of ``nightly_job`` (the job the schedule launches) fetches, extracts what changed,
transforms, checks and publishes. Dagster executes the runs, with the executor of the
configuration (``run.executor``: processes on this machine, or Celery workers); an
in-memory instance (tests) executes them in this process. Every run is recorded in the
instance, the alert sensors are evaluated on each, and the exit code says whether the
night succeeded: 0, 1 when a run failed, 2 when the configuration is wrong (nothing is
fetched or published then).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from assets.harmonise.store import tables_dir
from assets.iati.fetching import empty_publishers, last_run, preflight
from assets.settings import ConfigError, Settings, load_settings
from assets.submissions.intake import pending, seed_inbox
from pipelines.alerts import alert_on_run
from pipelines.definitions import build_definitions
from pipelines.iati import FETCH_STATUSES
from pipelines.jobs import NIGHTLY_JOB
from pipelines.resources import CompactConfig
from pipelines.schedules import iati_datasets_sensor
from pipelines.submissions import SUBMISSIONS_NAME, submission_job, submissions_sensor
from publish.summary import summary

#: Console log level of the runs (Dagster's default, DEBUG, prints every event).
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

Result = dg.ExecuteInProcessResult | dg.JobExecutionResult


def run_nightly(
    config_file: str | os.PathLike[str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> int:
    """Receive and check submissions, then run the night; 0 when every run succeeded, 1
    when one failed (a failed submission run does not stop the night), 2 when the
    configuration is wrong."""
    started = time.monotonic()
    try:
        settings = load_settings(config_file)
        preflight(settings)
        defs = build_definitions(settings)
    except ConfigError as exc:
        print(
            f"cdcompact: configuration error, nothing was fetched or published:\n{exc}",
            file=sys.stderr,
        )
        return 2
    if instance is None:
        if not os.environ.get("DAGSTER_HOME"):
            print("cdcompact: DAGSTER_HOME is not set (make run sets it)", file=sys.stderr)
            return 2
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        instance = dg.DagsterInstance.get()
    runner = _Runner(settings, defs, instance)
    print(f"cdcompact: configuration {settings.config_file}")
    print(f"cdcompact: Dagster instance {instance.root_directory or '(in memory)'}")
    print(f"cdcompact: steps executed by {runner.executed_by}")
    compact = (defs.resources or {})["compact"]
    assert isinstance(compact, CompactConfig)

    clock = time.monotonic()
    seeded = seed_inbox(settings)
    if seeded:
        print(
            f"cdcompact: first run: the {len(seeded)} submissions of "
            f"{settings.submissions.seed_dir} copied into the empty inbox (submissions.seed)"
        )
    failed = _submissions(settings, runner, compact)
    stages = {"submissions": time.monotonic() - clock}
    if failed:  # the night goes on with every other input; the exit code says so
        print(
            f"cdcompact: {len(failed)} submission runs failed: {', '.join(failed)}; the night "
            "goes on without them",
            file=sys.stderr,
        )
    night = runner.execute(NIGHTLY_JOB)
    _register_datasets(instance, compact)  # as iati_datasets_sensor does under the daemon
    _report_fetch(settings, night)
    stages.update(_stage_seconds(instance, night.run_id))
    if not night.success:
        for step, error in _step_failures(night):
            print(f"  step {step} failed: {error}", file=sys.stderr)
        print(
            f"cdcompact: the night's run {night.run_id} failed; nothing was published. "
            "See the run in Dagster (the steps that did not fail are recorded as done).",
            file=sys.stderr,
        )
        return 1
    _report_extraction(night)
    print(summary(settings, tables_dir(settings.data_dir)))
    release = _metadata(night, "data_release")
    if release.get("status") == "published":
        print(f"published release {release['version']}: {release['location']}")
    elif release:
        print(f"no change since release {release['version']}: nothing published")
    if release.get("quality_report"):
        print(f"data-quality report: {release['quality_report']}")
    shown = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items())
    print(f"cdcompact: stages: {shown}")
    print(f"cdcompact: nightly job finished in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


class _Runner:
    """Executes a job of the code location on the instance and evaluates the alert
    sensors on its run: with the definitions' executor (``dg.execute_job``, the job
    rebuilt in every process or worker from the configuration file), or in this
    process when the instance is in memory (nothing else could read its storage)."""

    def __init__(
        self,
        settings: Settings,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
    ) -> None:
        self.defs, self.instance = defs, instance
        # every process or worker rebuilds the job from the same file, wherever it runs
        self.config_file = str(settings.config_file)
        self.in_process = instance.is_ephemeral
        if self.in_process:
            self.executed_by = "this process (in-memory instance)"
        elif settings.executor.kind == "celery":
            self.executed_by = f"Celery workers ({_without_password(settings.executor.broker)})"
        else:
            self.executed_by = f"up to {settings.workers} processes (multiprocess executor)"

    def execute(self, job_name: str, tags: Mapping[str, str] | None = None) -> Result:
        result: Result
        if self.in_process:
            result = self.defs.resolve_job_def(job_name).execute_in_process(
                instance=self.instance, tags=tags, raise_on_error=False, run_config=RUN_CONFIG
            )
        else:
            rebuilt = dg.build_reconstructable_job(
                "pipelines.definitions",
                "job_for",
                reconstructable_kwargs={"name": job_name, "config_file": self.config_file},
            )
            # Dagster keeps the last job it rebuilt in this process: a night reads its
            # configuration (file and CDCOMPACT_* variables) afresh
            type(rebuilt).get_definition.cache_clear()
            type(rebuilt).get_repository_definition.cache_clear()
            result = dg.execute_job(
                rebuilt, instance=self.instance, run_config=RUN_CONFIG, tags=tags
            )
        alert_on_run(self.instance, result)
        return result


def _without_password(url: str) -> str:
    """A broker URL as it can be printed."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _submissions(settings: Settings, runner: _Runner, compact: CompactConfig) -> list[str]:
    """What ``submissions_sensor`` does under the daemon: every new inbox file received
    and registered as a partition; then a run of ``submission_job`` for every received
    submission not processed yet. The keys whose run failed."""
    context = dg.build_sensor_context(instance=runner.instance, resources={"compact": compact})
    result = submissions_sensor(context)
    assert isinstance(result, dg.SensorResult)
    _apply_partitions(runner.instance, result)
    new = [request.partition_key for request in result.run_requests or []]
    waiting = pending(settings)
    known = set(runner.instance.get_dynamic_partitions(SUBMISSIONS_NAME))
    earlier = [key for key in waiting if key not in known]
    if earlier:  # received by an older release of cdcompact, never registered
        runner.instance.add_dynamic_partitions(SUBMISSIONS_NAME, earlier)
    if new or waiting:
        print(f"cdcompact: submissions: {len(new)} new in the inbox, {len(waiting)} to check")
    failed = []
    for key in waiting:
        run = runner.execute(submission_job.name, tags={"dagster/partition": key})
        meta = _metadata(run, "submission", partition=key)
        shown = f"{meta.get('status')}: {meta.get('n_accepted')} of {meta.get('n_records')} rows"
        print(f"  {meta.get('source_file', key)}: {shown if run.success else 'run FAILED'}")
        if not run.success:
            failed.append(key)
    return failed


def _register_datasets(instance: dg.DagsterInstance, compact: CompactConfig) -> None:
    """What ``iati_datasets_sensor`` does under the daemon after a fetch."""
    context = dg.build_sensor_context(instance=instance, resources={"compact": compact})
    result = iati_datasets_sensor(context)
    if isinstance(result, dg.SensorResult):
        _apply_partitions(instance, result)


def _apply_partitions(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest) and request.partition_keys:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)


def _report_fetch(settings: Settings, night: Result) -> None:
    """Tonight's fetch, when the night got that far."""
    if not _metadata(night, "iati_fetch"):
        return
    results = last_run(settings.data_dir)
    counts = {s: sum(1 for r in results if r["status"] == s) for s in FETCH_STATUSES}
    print(
        f"cdcompact: {len(results)} IATI datasets: {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['failed']} failed, "
        f"{counts['missing']} missing, {counts['removed']} removed"
    )
    for record in results:
        if record["status"] == "failed":
            kept = "last good copy kept" if record["sha256"] else "no earlier copy"
            print(f"  failed  {record['key']}: {record['error']} ({kept})")
        elif record["status"] in ("missing", "removed"):
            print(f"  {record['status']}  {record['key']}: {record['error']}")
    for source, publishers in empty_publishers(settings.data_dir).items():
        for publisher in publishers:
            print(f"  no datasets  publisher {publisher!r} of source {source!r}: nothing received")


def _report_extraction(night: Result) -> None:
    """Tonight's extraction, a line per step (its batch of datasets)."""
    steps: dict[str, list[tuple[str, str]]] = {}
    for event in night.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.partition and event.step_key:
            status = materialization.metadata.get("status")
            shown = str(getattr(status, "value", status))
            steps.setdefault(event.step_key, []).append((materialization.partition, shown))
    if not steps:
        print("cdcompact: nothing to extract: every dataset's copy is extracted already")
        return
    total = sum(len(datasets) for datasets in steps.values())
    print(f"cdcompact: extracting {total} datasets in {len(steps)} steps")
    for index, step in enumerate(sorted(steps), start=1):
        datasets = steps[step]
        first, last = datasets[0][0], datasets[-1][0]
        shown = first if len(datasets) == 1 else f"{first} ... {last}"
        counts = {
            s: sum(1 for _, status in datasets if status == s) for s in ("extracted", "rejected")
        }
        print(
            f"  [{index}/{len(steps)}] {shown} ({len(datasets)} datasets): "
            f"{counts['extracted']} extracted, {counts['rejected']} rejected"
        )


def _metadata(result: Result, asset: str, partition: str | None = None) -> dict[str, Any]:
    """The metadata of the run's materialization of ``asset`` (of its ``partition``)."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if (
            materialization.asset_key == dg.AssetKey(asset)
            and materialization.partition == partition
        ):
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}


def _step_failures(result: Result) -> list[tuple[str, str]]:
    shown = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        message = data.error.message.strip() if data.error else "see the run"
        shown.append((event.step_key or "?", message.splitlines()[0]))
    return shown


#: The stages a night's summary times, by the asset whose steps make each up.
STAGES = {
    "iati_exchange_rates": "fetch",
    "iati_codelists": "fetch",
    "iati_schemas": "fetch",
    "iati_fetch": "fetch",
    "iati_extract": "extraction",
    "iati_transform": "tables and checks",
    "data_release": "release",
}


def _stage_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Wall-clock seconds of each stage of the night's run: from the first of its steps
    being started (its process included) to the last one's end."""
    spans: dict[str, list[float]] = {}
    kinds = {
        dg.DagsterEventType.STEP_WORKER_STARTING,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
    }
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        stage = STAGES.get(event.step_key.split(".")[0], event.step_key)
        span = spans.setdefault(stage, [entry.timestamp, entry.timestamp])
        span[0], span[1] = min(span[0], entry.timestamp), max(span[1], entry.timestamp)
    return {stage: end - start for stage, (start, end) in spans.items()}
