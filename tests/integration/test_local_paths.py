"""A whole night whose inputs live outside the project publishes none of their folders.

The inputs sit in a folder of this machine outside the project: a good IATI file, a file
that is not XML, and a configured file that is not there. Both bad ones fail with a reason
that names where they were read. After the nightly job has published to a local folder,
every file it published is read: none holds the input folder (nor the test's own folder),
and the reasons name the files as a release shows them, by name.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import dagster as dg
import yaml

from pipelines.nightly import run_nightly
from tests.conftest import CODELISTS, IATI_FIXTURES, RATES

#: Binary files: a string in them need not be stored as its bytes (compressed pages).
_BINARY = (".parquet", ".png", ".gif", ".otf", ".ttf", ".woff", ".woff2", ".xlsx")


def test_a_night_with_inputs_outside_the_project_publishes_no_local_path(
    tmp_path: Path, monkeypatch: object
) -> None:
    inbox = tmp_path / "partner inbox" / "iati"
    inbox.mkdir(parents=True)
    (inbox / "acfspain-ph.xml").write_bytes((IATI_FIXTURES / "valid/acfspain-ph.xml").read_bytes())
    (inbox / "not-xml.xml").write_bytes((IATI_FIXTURES / "invalid/not-xml.xml").read_bytes())
    publish_dir = tmp_path / "publish"
    config = {
        "storage": {"data_dir": str(tmp_path / "data")},
        "iati": {
            "sources": [
                {"name": "inbox", "kind": "local", "paths": [str(inbox)]},
                {"name": "missing", "kind": "local", "paths": [str(inbox / "gone.xml")]},
            ]
        },
        "reference": {
            "codelists": str(CODELISTS),
            "exchange_rates": [str(RATES / "imf-monthly-subset.csv")],
        },
        "publish": {"target": "local", "local_dir": str(publish_dir)},
    }
    path = tmp_path / "compact.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_nightly(path, instance=instance) == 0

    published = [p for p in publish_dir.rglob("*") if p.is_file()]
    assert any(p.name == "datapackage.json" for p in published)
    read = 0
    for file in published:
        if file.suffix in _BINARY:
            continue
        data = file.read_bytes()
        assert str(inbox).encode() not in data, file
        assert inbox.as_uri().encode() not in data, file
        assert str(tmp_path).encode() not in data, file
        assert b"file://" not in data, file
        read += 1
    assert read > 20

    (release,) = (publish_dir / "releases").iterdir()
    with (release / "data" / "sources.csv").open(encoding="utf-8", newline="") as handle:
        sources = {row["source_file"]: row for row in csv.DictReader(handle)}
    assert sources["acfspain-ph"]["status"] == "ok"
    assert sources["acfspain-ph"]["uri"] == "acfspain-ph.xml"
    failed = {name: row["reason"] for name, row in sources.items() if row["status"] != "ok"}
    assert failed == {
        "gone": "could not be fetched: gone.xml: no such file",
        "not-xml": "could not be fetched: not-xml.xml: the file is not XML: it starts with "
        "'This is not XML'",
    }
    # the quality report and the tables say the same, by name
    report = (publish_dir / "quality" / "report.json").read_text(encoding="utf-8")
    assert "the file was not checked: could not be fetched: gone.xml: no such file" in report
    assert json.loads(report)["overall"]
    quarantine = (release / "data" / "quarantine.csv").read_text(encoding="utf-8")
    messages = {r["source_file"]: r["message"] for r in csv.DictReader(io.StringIO(quarantine))}
    assert messages["gone"] == "not fetched and no earlier copy: gone.xml: no such file"
