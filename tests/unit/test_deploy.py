"""deploy/ (the Kubernetes deployment) agrees with the code: the code location it starts,
the variables it sets, the chart release it pins and the queue limits of dagster.yaml."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import assets.settings
from assets.settings import ENVIRONMENT
from pipelines.alerts import WEBHOOK_ENV

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALUES = DEPLOY / "helm" / "values.yaml"
#: Read outside ENVIRONMENT: the configuration file and the project root (assets.settings),
#: the alert webhook (pipelines.alerts).
OTHER_VARIABLES = {"CDCOMPACT_CONFIG", "CDCOMPACT_HOME", WEBHOOK_ENV}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def deployment(values: dict[str, Any]) -> dict[str, Any]:
    deployments = values["dagster-user-deployments"]["deployments"]
    assert [d["name"] for d in deployments] == ["cdcompact"]
    return deployments[0]


def k8s_run_launcher(values: dict[str, Any]) -> dict[str, Any]:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    return values["runLauncher"]["config"]["k8sRunLauncher"]


def test_the_code_location_module_defines_definitions(values: dict[str, Any]) -> None:
    args = deployment(values)["dagsterApiGrpcArgs"]
    assert args[0] == "--module-name"
    module = importlib.import_module(args[1])
    assert module.__name__ == "pipelines.definitions"
    assert hasattr(module, "defs")
    assert deployment(values)["port"] == 3030


def test_every_cdcompact_variable_named_in_deploy_is_read_by_the_code() -> None:
    source = inspect.getsource(assets.settings)
    for name in ("CDCOMPACT_CONFIG", "CDCOMPACT_HOME"):
        assert f'"{name}"' in source, f"assets.settings no longer reads {name}"
    known = set(ENVIRONMENT) | OTHER_VARIABLES
    files = [VALUES, DEPLOY / "Dockerfile", DEPLOY / "README.md"]
    named = {
        (path.name, name)
        for path in files
        for name in re.findall(r"\bCDCOMPACT_[A-Z0-9_]+", path.read_text(encoding="utf-8"))
    }
    assert {name for _, name in named} >= {"CDCOMPACT_CONFIG", "CDCOMPACT_DATA_DIR"}
    unknown = sorted(f"{file}: {name}" for file, name in named if name not in known)
    assert not unknown, f"variables the code does not read: {unknown}"


def test_the_chart_release_is_the_dagster_release_of_the_lock() -> None:
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = re.findall(r"^dagster==(\S+)", lock, flags=re.MULTILINE)
    assert len(pinned) == 1
    for path in (DEPLOY / "README.md", VALUES):
        text = path.read_text(encoding="utf-8")
        versions = re.findall(r"dagster/dagster --version (\S+)", text)
        assert versions, f"{path.name} names no chart version"
        assert set(versions) == set(pinned), f"{path.name}: chart {versions}, lock {pinned}"


def test_the_queue_limits_are_those_of_dagster_yaml(values: dict[str, Any]) -> None:
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    coordinator = instance["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    daemon = values["dagsterDaemon"]
    assert daemon["enabled"] is True
    run_coordinator = daemon["runCoordinator"]
    assert run_coordinator["enabled"] is True
    assert run_coordinator["type"] == "QueuedRunCoordinator"
    queued = run_coordinator["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == coordinator["config"]["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == coordinator["config"]["tag_concurrency_limits"]
    assert {"key": "cdcompact/stage", "value": "night", "limit": 1} in queued[
        "tagConcurrencyLimits"
    ]
    assert values["telemetry"]["enabled"] is instance["telemetry"]["enabled"] is False


def test_run_pods_get_the_code_servers_environment_and_volumes(values: dict[str, Any]) -> None:
    server, launcher = deployment(values), k8s_run_launcher(values)
    # When on, the chart hands the code server's resources to the run pods, over the launcher's.
    assert server["includeConfigInLaunchedRuns"] == {"enabled": False}
    for key in ("envConfigMaps", "envSecrets", "volumes", "volumeMounts"):
        assert launcher[key] == server[key], key
    assert server["envConfigMaps"] == [{"name": "cdcompact-env"}]
    assert server["envSecrets"] == [{"name": "cdcompact-secrets"}]
    claims = [
        volume["persistentVolumeClaim"]["claimName"]
        for volume in server["volumes"]
        if "persistentVolumeClaim" in volume
    ]
    assert claims == ["cdcompact-data"]
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    assert mounts["cdcompact-data"] == "/data"
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert f"CDCOMPACT_CONFIG={mounts['cdcompact-config']}/" in readme
    assert f"CDCOMPACT_DATA_DIR={mounts['cdcompact-data']}" in readme


def test_postgres_is_external_with_the_password_from_the_secret(values: dict[str, Any]) -> None:
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"] == "cdcompact-secrets"
    assert {"name": values["global"]["postgresqlSecretName"]} in deployment(values)["envSecrets"]
