"""``cdcompact run``: the night once, now, on the Dagster instance in $DAGSTER_HOME
(default: .dagster_home of the cdcompact home, :mod:`pipelines.dagster_home`).

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

import contextlib
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from assets.harmonise.store import tables_dir
from assets.iati.fetching import empty_publishers, last_run, preflight
from assets.settings import ConfigError, Settings, load_settings, project_root
from assets.submissions.intake import pending, seed_inbox
from pipelines.alerts import alert_on_run
from pipelines.dagster_home import ensure_dagster_home
from pipelines.definitions import build_definitions
from pipelines.iati import FETCH_STATUSES
from pipelines.jobs import NIGHTLY_JOB
from pipelines.resources import CompactConfig
from pipelines.schedules import iati_datasets_sensor
from pipelines.submissions import SUBMISSIONS_NAME, submission_job, submissions_sensor
from publish.summary import summary


def run_config(verbose: bool) -> dict[str, Any]:
    """The runs' configuration: Dagster's console logger prints a line per event (with
    the run's id) only when ``verbose``; otherwise nothing short of CRITICAL (the night's
    progress, its failures and its summary are printed by this module). The instance's
    event log records every event either way."""
    level = "DEBUG" if verbose else "CRITICAL"
    return {"loggers": {"console": {"config": {"log_level": level}}}}


#: The tag by which a night's progress finds its run (``dg.execute_job`` makes the id).
LAUNCH_TAG = "cdcompact/launch"

Result = dg.ExecuteInProcessResult | dg.JobExecutionResult


def run_nightly(
    config_file: str | os.PathLike[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    verbose: bool = False,
    announce_home: bool = True,
) -> int:
    """Receive and check submissions, then run the night; 0 when every run succeeded, 1
    when one failed (a failed submission run does not stop the night), 2 when the
    configuration is wrong. Without an ``instance``, the one of $DAGSTER_HOME, by
    default the cdcompact home's (:func:`ensure_dagster_home`), said unless the caller
    did (``announce_home``). The night's steps are shown as they start and end; Dagster's
    own log lines only when ``verbose`` (the instance records them either way)."""
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
        _, line = ensure_dagster_home(project_root())
        if announce_home:
            print(line)
        instance = dg.DagsterInstance.get()
    elif announce_home:
        print(f"cdcompact: Dagster instance {instance.root_directory or '(in memory)'}")
    runner = _Runner(settings, defs, instance, verbose)
    print(f"cdcompact: configuration {settings.config_file}")
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
    night = runner.execute(NIGHTLY_JOB, progress=True)
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
        verbose: bool = False,
    ) -> None:
        self.defs, self.instance = defs, instance
        self.verbose, self.run_config = verbose, run_config(verbose)
        # every process or worker rebuilds the job from the same file, wherever it runs
        self.config_file = str(settings.config_file)
        self.in_process = instance.is_ephemeral
        if self.in_process:
            self.executed_by = "this process (in-memory instance)"
        elif settings.executor.kind == "celery":
            self.executed_by = f"Celery workers ({_without_password(settings.executor.broker)})"
        else:
            self.executed_by = f"up to {settings.workers} processes (multiprocess executor)"

    def execute(
        self, job_name: str, tags: Mapping[str, str] | None = None, progress: bool = False
    ) -> Result:
        """The run of ``job_name``; with ``progress``, its steps shown as they start and
        end."""
        launch = uuid.uuid4().hex
        tags = {**(tags or {}), LAUNCH_TAG: launch}
        watcher = _StepProgress(self.instance, launch) if progress else None
        quiet = not self.verbose and not self.in_process
        with _without_dagster_lines() if quiet else contextlib.nullcontext():
            if watcher:
                watcher.start()
            try:
                result = self._execute(job_name, tags)
            finally:
                if watcher:
                    watcher.stop()
        alert_on_run(self.instance, result)
        return result

    def _execute(self, job_name: str, tags: Mapping[str, str]) -> Result:
        result: Result
        if self.in_process:
            result = self.defs.resolve_job_def(job_name).execute_in_process(
                instance=self.instance, tags=tags, raise_on_error=False, run_config=self.run_config
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
                rebuilt, instance=self.instance, run_config=self.run_config, tags=tags
            )
        return result


class _StepProgress:
    """The steps of a run shown as they start and end, read from the instance's event
    log, where the steps of every executor (this process, its child processes, Celery
    workers) record their events: a thread reads it twice a second while the run goes
    on, and once more when it is over. A line when a step starts and when it ends,
    numbered in the order they started, of the steps known so far (the extraction's
    batches are known once its plan ran)."""

    KINDS = frozenset(
        {
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
        }
    )

    def __init__(self, instance: dg.DagsterInstance, launch: str, every: float = 0.5) -> None:
        self.instance, self.launch, self.every = instance, launch, every
        self.run_id: str | None = None
        self.cursor: str | None = None
        self.planned: list[str] = []
        self.started: dict[str, tuple[int, float]] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="cdcompact-progress", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self._read()  # what the run recorded after the last look

    def _watch(self) -> None:
        while not self.stopping.wait(self.every):
            self._read()

    def _find_run(self) -> bool:
        if self.run_id is None:
            found = self.instance.get_runs(
                filters=dg.RunsFilter(tags={LAUNCH_TAG: self.launch}), limit=1
            )
            if not found:
                return False
            run = found[0]
            self.run_id = run.run_id
            plan = (
                self.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
                if run.execution_plan_snapshot_id
                else None
            )
            # the steps of the plan, but a fan-out's ([?]): its steps are shown when known
            self.planned = [s.key for s in plan.steps if "[?]" not in s.key] if plan else []
        return True

    def _read(self) -> None:
        if not self._find_run():
            return
        assert self.run_id is not None
        while True:
            page = self.instance.get_records_for_run(
                self.run_id, cursor=self.cursor, of_type=set(self.KINDS), limit=200
            )
            self.cursor = page.cursor
            for record in page.records:
                self._show(record.event_log_entry)
            if not page.has_more:
                return

    def _show(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None or not event.step_key:
            return
        step = event.step_key
        if event.event_type == dg.DagsterEventType.STEP_START:
            self.started[step] = (len(self.started) + 1, entry.timestamp)
            index = self.started[step][0]
            _say(f"  [{index}/{self._total()}] {_step_name(step)} ...")
            return
        index, since = self.started.get(step, (len(self.started) + 1, entry.timestamp))
        seconds = entry.timestamp - since
        outcome = {
            dg.DagsterEventType.STEP_SUCCESS: f"done in {seconds:.1f} s",
            dg.DagsterEventType.STEP_FAILURE: f"FAILED after {seconds:.1f} s",
            dg.DagsterEventType.STEP_SKIPPED: "skipped (an earlier step failed)",
        }[event.event_type]
        _say(f"  [{index}/{self._total()}] {_step_name(step)} {outcome}")

    def _total(self) -> int:
        return len(set(self.planned) | set(self.started))


#: A line of Dagster's console logger ("2026-01-31 02:00:01 +0000 - dagster - DEBUG - ..."),
#: colours allowed.
DAGSTER_LINE = re.compile(
    rb"^(?:\x1b\[[0-9;]*m)*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - dagster - "
)


@contextlib.contextmanager
def _without_dagster_lines() -> Iterator[None]:
    """Dagster's console lines kept off the terminal while a run goes on. The run's
    configuration quiets the console logger of this process, but each step process
    that the multiprocess executor starts logs its start with Dagster's default console
    logger (DEBUG, "STEP_WORKER_STARTED"), whatever the run says. So the standard error
    of this process and of the processes it starts (file descriptor 2, which they
    inherit) goes through a pipe that drops the lines of Dagster's console format and
    passes every other line on. The instance records every event either way."""
    sys.stderr.flush()
    terminal = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    passed = os.dup(terminal)

    def forward() -> None:
        # runs on while a step process (or the fork server) still holds the pipe
        with open(read, "rb") as pipe, open(passed, "wb", buffering=0) as out:
            for line in pipe:
                if not DAGSTER_LINE.match(line):
                    out.write(line)

    threading.Thread(target=forward, name="cdcompact-stderr", daemon=True).start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        os.close(terminal)


def _step_name(step_key: str) -> str:
    """A step's key and its stage of the night."""
    stage = STAGES.get(step_key.split(".")[0])
    return f"{step_key} ({stage})" if stage else step_key


def _say(line: str) -> None:
    print(line, flush=True)


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
