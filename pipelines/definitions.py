"""The code location: the one place that assembles cdcompact's Dagster Definitions."""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg

from assets.settings import Settings, load_settings
from pipelines.alerts import run_failure_alert, stale_datasets_alert
from pipelines.iati import (
    iati_codelists,
    iati_dataset,
    iati_exchange_rates,
    iati_extract,
    iati_fetch,
    iati_schemas,
    iati_transform,
)
from pipelines.jobs import nightly_job
from pipelines.release import data_release
from pipelines.resources import resources
from pipelines.schedules import iati_datasets_sensor, nightly_schedule
from pipelines.submissions import submission, submission_job, submissions_sensor

#: What the multiprocess executor's fork server imports before it forks a step's process.
PRELOADED = ("pipelines.definitions",)


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery executor's configuration, which ``cdcompact worker``'s app shares."""
    return {
        "broker": settings.executor.broker,
        "backend": settings.executor.backend,
        "config_source": {"task_default_queue": settings.executor.queue},
    }


def executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of every job's steps (config ``run.executor``): processes on this
    machine, at most ``run.workers`` at once, or Celery tasks on the workers of a broker."""
    if settings.executor.kind == "celery":
        # imported only when chosen: Celery is not loaded by the default code location
        from celery.exceptions import DuplicateTaskNameWarning
        from dagster_celery import celery_executor

        # dagster-celery 0.29.27 registers its step task anew for every step it sends, the
        # same task each time, which Celery 5.7 warns about once per step
        warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)

        return celery_executor.configured(celery_config(settings), name="celery")
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": settings.workers,
            # a step's process is forked from a server that has imported the code
            # location once (about 0.3 s a step instead of 2.5 s with a fresh interpreter)
            "start_method": {"forkserver": {"preload_modules": list(PRELOADED)}},
        },
        name="multiprocess",
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    """Definitions for one configuration (tests pass their own)."""
    return dg.Definitions(
        assets=[
            iati_exchange_rates,
            iati_codelists,
            iati_schemas,
            iati_fetch,
            iati_dataset,
            iati_extract,
            iati_transform,
            data_release,
            submission,
        ],
        jobs=[nightly_job, submission_job],
        schedules=[nightly_schedule(settings)],
        sensors=[
            iati_datasets_sensor,
            submissions_sensor,
            run_failure_alert,
            stale_datasets_alert,
        ],
        resources=resources(settings),
        executor=executor(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev -m pipelines.definitions` and the daemon."""
    return build_definitions(load_settings())


def job_for(name: str, config_file: str | None = None) -> dg.JobDefinition:
    """The job ``name`` under a configuration file: how ``cdcompact run`` and the processes
    or Celery workers that execute its steps rebuild it (``dg.build_reconstructable_job``)."""
    return build_definitions(load_settings(config_file)).resolve_job_def(name)
