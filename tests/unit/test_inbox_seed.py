"""The first run's demo: the submissions of ``submissions.seed`` copied into an empty inbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets.iati.fetching import preflight
from assets.settings import ConfigError, load_settings
from assets.submissions.intake import receive, seed_inbox
from tests.conftest import PROJECT_ROOT

DEMO_SUBMISSIONS = PROJECT_ROOT / "demo" / "submissions"


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CDCOMPACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDCOMPACT_INBOX_DIR", str(tmp_path / "inbox"))
    monkeypatch.setenv("CDCOMPACT_SUBMISSIONS_SEED", str(DEMO_SUBMISSIONS))
    return tmp_path


def test_the_demo_submissions_go_into_an_empty_inbox_once(folders: Path) -> None:
    settings = load_settings()
    assert seed_inbox(settings) == [
        "demo-development-agency-2025",
        "demo-skills-trust-2025",
        "ghana-country-report-2025",
        "kenya-country-report-2025",
        "nepal-country-report-2025",
    ]
    copied = folders / "inbox" / "ghana-country-report-2025" / "cd_priorities.csv"
    assert (
        copied.read_bytes()
        == (DEMO_SUBMISSIONS / "ghana-country-report-2025" / "cd_priorities.csv").read_bytes()
    )
    # each folder of CSV files is one submission when received
    keys = receive(settings)
    assert len(keys) == 5
    index = json.loads((folders / "data" / "submissions" / "index.json").read_text())
    assert sorted(entry["name"] for entry in index.values()) == sorted(
        f"{p.name}.zip" for p in DEMO_SUBMISSIONS.iterdir()
    )
    # once something was received, an emptied inbox is not filled again
    for path in sorted((folders / "inbox").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert seed_inbox(settings) == []
    assert not any((folders / "inbox").iterdir())


def test_an_inbox_with_a_file_in_it_is_not_seeded(folders: Path) -> None:
    (folders / "inbox").mkdir()
    (folders / "inbox" / "ours.json").write_text("{}")
    assert seed_inbox(load_settings()) == []
    assert [p.name for p in (folders / "inbox").iterdir()] == ["ours.json"]


def test_the_demo_configuration_seeds_and_the_live_one_does_not(
    folders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CDCOMPACT_SUBMISSIONS_SEED")
    assert load_settings().submissions.seed_dir == DEMO_SUBMISSIONS
    assert load_settings(PROJECT_ROOT / "config" / "live.yaml").submissions.seed_dir is None


def test_a_missing_seed_folder_is_a_configuration_error(
    folders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDCOMPACT_SUBMISSIONS_SEED", str(folders / "gone"))
    with pytest.raises(ConfigError) as raised:
        preflight(load_settings())
    assert str(raised.value) == (
        "environment variable CDCOMPACT_SUBMISSIONS_SEED: submissions.seed: no such folder: "
        f"{folders / 'gone'}"
    )
