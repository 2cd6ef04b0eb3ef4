"""The Celery app of ``cdcompact worker``: dagster-celery's step task, on the broker,
result backend and queue of the configuration (``run.celery``), so that a worker reads
the queue the night's runs send their steps to.

``celery -A pipelines.celery_app worker -Q <run.celery.queue>`` (what ``cdcompact
worker`` starts) runs each step it receives as the multiprocess executor would: the
job rebuilt from its configuration file, the instance from the run's reference."""

from __future__ import annotations

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from assets.settings import load_settings
from pipelines.definitions import celery_config

app = make_app(celery_config(load_settings()))
execute_plan = create_task(app)
