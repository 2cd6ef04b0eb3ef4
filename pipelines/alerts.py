"""Alerts: a JSON message to the operators' webhook when a run of the night fails, and
when tonight's fetch left datasets stale (their last good copy stood in).

The webhook's URL comes from the environment variable ``CDCOMPACT_ALERT_WEBHOOK`` only
(chat and incident services put a token in it), and is never logged. Every alert is
logged, posted or not; a webhook that cannot be reached is logged as an error and
never fails a run or the night.

The message (``Content-Type: application/json``)::

    {"event": "run_failed" | "datasets_stale", "text": "<one line for a chat>",
     "job": ..., "run_id": ..., "at": "<UTC ISO 8601>",
     "error": ... (run_failed: the run's error, then each failed step's),
     "datasets": [{"key", "error", "last_good_kept"}] (datasets_stale; run_failed
                 when the failed night's fetch left datasets stale)}

``text`` makes it readable by Slack- and Mattermost-style incoming webhooks as it is.
The daemon evaluates the sensors; ``cdcompact run`` evaluates the same sensors on the
runs it executes (:func:`alert_on_run`).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import dagster as dg
import requests

from pipelines.jobs import nightly_job

#: The environment variable with the webhook's URL.
WEBHOOK_ENV = "CDCOMPACT_ALERT_WEBHOOK"
#: Seconds to wait for the webhook.
TIMEOUT = 10.0


def post_alert(payload: dict[str, Any], log: Any) -> bool:
    """Log the alert and post it to the webhook, if one is configured; True when posted."""
    log.warning(f"alert: {payload['text']}")
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        log.info(f"no alert webhook: set {WEBHOOK_ENV} to post alerts")
        return False
    try:
        response = requests.post(url, json=payload, timeout=TIMEOUT)
    except requests.RequestException as exc:  # the URL may hold a token: never shown
        log.error(f"the alert webhook ({WEBHOOK_ENV}) could not be reached: {type(exc).__name__}")
        return False
    if response.status_code >= 300:
        log.error(f"the alert webhook ({WEBHOOK_ENV}) answered HTTP {response.status_code}")
        return False
    log.info(f"alert posted to the webhook ({WEBHOOK_ENV})")
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def step_errors(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """``<step>: <error>`` of each step that failed in the run."""
    found = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        data = event.step_failure_data if event is not None else None
        if event is not None and data is not None and data.error is not None:
            found.append(f"{event.step_key}: {data.error.message.strip()}")
    return found


def failure_payload(
    run: dg.DagsterRun,
    error: str | None,
    steps: list[str] | None = None,
    stale: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    shown = "\n".join([(error or "see the run in Dagster").strip(), *(steps or [])])
    payload: dict[str, Any] = {
        "event": "run_failed",
        "text": f"cdcompact: run {run.run_id} of {run.job_name} failed: {shown.splitlines()[0]}",
        "job": run.job_name,
        "run_id": run.run_id,
        "at": _now(),
        "error": shown,
    }
    if stale:  # a night that failed after its fetch still says what the fetch could not do
        payload["datasets"] = stale
    return payload


def stale_payload(run: dg.DagsterRun, failures: list[dict[str, Any]]) -> dict[str, Any]:
    kept = sum(1 for failure in failures if failure.get("last_good_kept"))
    keys = ", ".join(str(failure["key"]) for failure in failures[:10])
    more = f" and {len(failures) - 10} more" if len(failures) > 10 else ""
    return {
        "event": "datasets_stale",
        "text": f"cdcompact: {len(failures)} IATI datasets could not be fetched tonight "
        f"({kept} stale, their last good copy used): {keys}{more}",
        "job": run.job_name,
        "run_id": run.run_id,
        "at": _now(),
        "datasets": failures,
    }


def fetch_failures(instance: dg.DagsterInstance, run_id: str) -> list[dict[str, Any]]:
    """The datasets the fetch of run ``run_id`` could not fetch (its ``failures`` metadata)."""
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    for entry in entries:
        materialization = entry.asset_materialization
        if materialization is None or materialization.asset_key != dg.AssetKey("iati_fetch"):
            continue
        value = materialization.metadata.get("failures")
        data = getattr(value, "data", None)
        return list(data) if isinstance(data, list) else []
    return []


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts a JSON message to the webhook in ${WEBHOOK_ENV} when a run fails.",
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    steps = step_errors(context.instance, run.run_id)
    stale = fetch_failures(context.instance, run.run_id)
    post_alert(failure_payload(run, context.failure_event.message, steps, stale), context.log)


@dg.run_status_sensor(
    name="stale_datasets_alert",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[nightly_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts a JSON message to the webhook in ${WEBHOOK_ENV} when tonight's "
    "fetch could not fetch some datasets (stale: their last good copy stands in); a night "
    "that failed says so in its run_failed message instead.",
)
def stale_datasets_alert(context: dg.RunStatusSensorContext) -> None:
    failures = fetch_failures(context.instance, context.dagster_run.run_id)
    if failures:
        post_alert(stale_payload(context.dagster_run, failures), context.log)


def alert_on_run(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult | dg.JobExecutionResult
) -> None:
    """Evaluate the alert sensors on a run executed in this process (``cdcompact run``),
    as the daemon evaluates them on the runs it watches."""
    if not result.success:
        failed = dg.build_run_status_sensor_context(
            sensor_name=run_failure_alert.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()
        run_failure_alert(failed)
        return
    if result.dagster_run.job_name == nightly_job.name:
        context = dg.build_run_status_sensor_context(
            sensor_name=stale_datasets_alert.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_success_event(),
        )
        stale_datasets_alert(context)
