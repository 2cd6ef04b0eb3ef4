"""A night that cannot go right says so: a configuration error stops it before anything
is fetched or published (exit 2, the file and the key named)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import yaml

from pipelines.cli import main
from pipelines.nightly import run_nightly
from tests.conftest import IATI_FIXTURES, RATES
from tests.http_fixture_server import (
    FixtureServer,
    Reply,
    http_server_fixture,  # noqa: F401
    registry_package,
    registry_search,
)


def _config(tmp_path: Path, **sections: Any) -> Path:
    config: dict[str, Any] = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "publish": {"local_dir": str(tmp_path / "publish")},
        "submissions": {"inbox": str(tmp_path / "inbox")},
        "iati": {"sources": [{"name": "files", "kind": "local", "paths": [str(tmp_path / "in")]}]},
        "reference": {"exchange_rates": [str(RATES / "imf-monthly-subset.csv")]},
    }
    config.update(sections)
    path = tmp_path / "night.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "publish").exists()
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        # the only source folder does not exist (it used to publish 0 activities, exit 0)
        ({}, "iati.sources[0].paths[0]: no such folder: {tmp}/in"),
        (
            {"fetch": {"retrys": 2}},
            "fetch.retrys: unknown key; expected one of connect_timeout, max_concurrent, "
            "max_file_mb, max_per_host, "
            "read_timeout, retries",
        ),
        ({"run": {"workers": "two"}}, "run.workers: input should be a valid integer, not 'two'"),
        (
            {
                "iati": {
                    "sources": [
                        {"name": "x", "kind": "registry", "publisher": ["who"]},
                    ]
                }
            },
            "iati.sources[0]: source 'x' (kind registry): unknown option(s) publisher",
        ),
        (
            {"reference": {"exchange_rates": ["{tmp}/rates.csv"]}},
            "reference.exchange_rates: no such file: {tmp}/rates.csv",
        ),
    ],
)
def test_a_configuration_error_stops_the_night_before_anything_is_done(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sections: dict[str, Any],
    message: str,
) -> None:
    text = yaml.safe_dump(sections).replace("{tmp}", str(tmp_path))
    config = _config(tmp_path, **yaml.safe_load(text))
    if "iati" in sections or "reference" in sections:
        (tmp_path / "in").mkdir()  # only the problem named is a problem
        (tmp_path / "in" / "who.xml").write_bytes(
            (IATI_FIXTURES / "valid" / "who-arg.xml").read_bytes()
        )
    instance = dg.DagsterInstance.ephemeral()
    assert run_nightly(config, instance=instance) == 2
    err = capsys.readouterr().err
    assert "configuration error, nothing was fetched or published" in err
    assert f"{config}: {message.replace('{tmp}', str(tmp_path))}" in err
    _nothing_written(tmp_path)
    assert instance.get_runs() == []  # no run was started


def test_cdcompact_run_exits_2_on_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, compact={"countries": ["GH"], "nam": "typo"})
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    assert main(["--config", str(config), "run"]) == 2
    err = capsys.readouterr().err
    expected = "expected one of contacts, countries, name, publishers"
    assert f"{config}: compact.nam: unknown key; {expected}" in err
    _nothing_written(tmp_path)


WHO = IATI_FIXTURES / "valid" / "who-arg.xml"
WRI = IATI_FIXTURES / "valid" / "wri-521257057-strategic-plan-2023-2027.xml"
SEARCH = "/api/3/action/package_search"


def _registry_config(tmp_path: Path, server: FixtureServer) -> Path:
    return _config(
        tmp_path,
        fetch={"connect_timeout": 2, "read_timeout": 2, "retries": 0},
        iati={
            "sources": [
                {
                    "name": "registry",
                    "kind": "registry",
                    "base_url": server.url(""),
                    "publishers": ["who", "wri"],
                }
            ]
        },
    )


def _alerts(server: FixtureServer) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in server.requests("/hook")]


def test_a_failing_fetch_marks_datasets_stale_and_publishes_nothing_new(
    tmp_path: Path,
    http_server: FixtureServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDCOMPACT_ALERT_WEBHOOK", http_server.route("/hook", Reply(204)))
    who_url = http_server.file("/files/who-arg.xml", WHO.read_bytes())
    wri_url = http_server.file("/files/wri.xml", WRI.read_bytes())
    packages = [
        registry_package("who-arg", who_url, "who"),
        registry_package("wri-plan", wri_url, "wri"),
    ]
    http_server.route(SEARCH, registry_search(packages))
    config = _registry_config(tmp_path, http_server)
    instance = dg.DagsterInstance.ephemeral()
    assert run_nightly(config, instance=instance) == 0
    assert "published release" in capsys.readouterr().out
    assert _alerts(http_server) == []  # a good night alerts nobody
    catalog = tmp_path / "publish" / "catalog.json"
    first = json.loads(catalog.read_text())
    activities = pd.read_parquet(tmp_path / "data" / "tables" / "activities.parquet")

    # Night two: WHO's file answers 500; night three: the Registry itself is down.
    http_server.route("/files/who-arg.xml", Reply(500, b"Internal Server Error"))
    for night, broken in ((2, ["who-arg"]), (3, ["who-arg", "wri-plan"])):
        if night == 3:
            http_server.route(SEARCH, Reply(503, b"Service Unavailable"))
        assert run_nightly(config, instance=instance) == 0
        out = capsys.readouterr().out
        assert "no change since release" in out, night
        sources = pd.read_parquet(tmp_path / "data" / "tables" / "sources.parquet")
        download = dict(zip(sources["source_file"], sources["download"], strict=False))
        assert [k for k in sorted(download) if download[k] == "kept"] == broken, night
        status = dict(zip(sources["source_file"], sources["status"], strict=False))
        assert {status[k] for k in broken} == {"ok"}, night  # the content is as it was
        # nothing unpublished: every activity is still there, from the last good copies
        now = pd.read_parquet(tmp_path / "data" / "tables" / "activities.parquet")
        assert sorted(now["activity_id"]) == sorted(activities["activity_id"]), night
        assert f"last good copy kept {len(broken)}" in out  # the summary counts them
        reasons = dict(zip(sources["source_file"], sources["reason"], strict=False))
        assert "fetch failed" in reasons["who-arg"]
        assert "last good copy" in reasons["who-arg"]
        # the catalogue still lists the first release alone
        assert json.loads(catalog.read_text())["releases"] == first["releases"], night
        report = json.loads((tmp_path / "publish" / "quality" / "report.json").read_text())
        assert report["overall"]["validity"]["files_stale"] == len(broken), night
        # the operators' webhook was told, once a night, which datasets are stale
        alert = _alerts(http_server)[-1]
        assert len(_alerts(http_server)) == night - 1
        assert alert["event"] == "datasets_stale"
        assert alert["job"] == "nightly_job"
        stale = sorted(d["key"] for d in alert["datasets"] if d["last_good_kept"])
        assert stale == broken, night
        assert alert["text"].startswith("cdcompact: ")
        assert http_server.requests("/hook")[-1].headers["content-type"] == "application/json"
    assert "listing the datasets of source 'registry' failed" in reasons["registry-listing"]


def test_a_failed_run_exits_1_and_posts_to_the_webhook(
    tmp_path: Path,
    http_server: FixtureServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDCOMPACT_ALERT_WEBHOOK", http_server.route("/hook", Reply(200)))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "who-arg.xml").write_bytes(WHO.read_bytes())
    config = _config(tmp_path)
    (tmp_path / "publish").write_text("a file where the publish folder should be")
    instance = dg.DagsterInstance.ephemeral()
    assert run_nightly(config, instance=instance) == 1
    err = capsys.readouterr().err
    assert "step data_release failed: " in err
    assert "failed; nothing was published" in err
    (alert,) = _alerts(http_server)
    assert alert["event"] == "run_failed"
    assert alert["job"] == "nightly_job"
    (run,) = instance.get_runs(filters=dg.RunsFilter(job_name="nightly_job"))
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert alert["run_id"] == run.run_id
    assert "Steps failed: ['data_release']" in alert["error"]
    assert "data_release: " in alert["error"]  # the step's own error, under the run's


def test_a_webhook_that_fails_is_logged_and_the_night_goes_on(
    tmp_path: Path,
    http_server: FixtureServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = http_server.route("/hook", Reply(500))
    monkeypatch.setenv("CDCOMPACT_ALERT_WEBHOOK", hook + "?token=secret-token")
    http_server.route(SEARCH, Reply(503, b"down"))
    config = _registry_config(tmp_path, http_server)
    assert run_nightly(config, instance=dg.DagsterInstance.ephemeral()) == 0
    assert len(_alerts(http_server)) == 1
    shown = capsys.readouterr()
    assert "alert: cdcompact: 1 IATI datasets could not be fetched" in shown.err
    assert "the alert webhook (CDCOMPACT_ALERT_WEBHOOK) answered HTTP 500" in shown.err
    assert "secret-token" not in shown.out + shown.err
