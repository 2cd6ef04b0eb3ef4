"""What a release may show: no local paths, credentials, host names or secret values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from assets.settings import IatiSource, load_settings
from assets.storage.targets import LocalTarget
from publish import release
from publish.provenance import private_strings, public_uri
from publish.release import ReleaseError, check_private, publish_release
from tests.unit.test_release import NOW, OPTIONS, demo_tables, stored

SECRET = "s3cr3t-value-0123456789abcdef"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("file:///srv/cdcompact/demo/iati/xm-demo-1001.xml", "demo/iati/xm-demo-1001.xml"),
        ("file:///home/operator/downloads/who%20arg.xml", "who arg.xml"),
        ("https://user:pw@example.org/a.xml?key=abc&lang=en", "https://example.org/a.xml?lang=en"),
        ("https://example.org/iati/a.xml", "https://example.org/iati/a.xml"),
        ("s3://bucket/inbox/partner.xlsx", "s3://bucket/inbox/partner.xlsx"),
        ("inbox:partner.xlsx", "inbox:partner.xlsx"),
        (None, None),
    ],
)
def test_public_uri(uri: str | None, shown: str | None) -> None:
    assert public_uri(uri, Path("/srv/cdcompact")) == shown


def test_private_strings_are_paths_long_host_names_and_secret_values(tmp_path: Path) -> None:
    settings = load_settings()
    found = private_strings(
        settings,
        {
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "IATI_API_KEY": "0123456789abcdef0123",
            "AWS_ACCESS_KEY_ID": "testing",  # too short to look for: any text may hold it
            "HOME": "/root",  # not a secret by its name
            "DAGSTER_HOME": str(tmp_path / "dagster"),
        },
    )
    assert found[SECRET] == "the value of the environment variable AWS_SECRET_ACCESS_KEY"
    assert found["0123456789abcdef0123"] == "the value of the environment variable IATI_API_KEY"
    assert "testing" not in found
    assert "/root" not in found
    assert found[str(settings.root.resolve())] == "the project folder's path on this machine"
    assert found[str(tmp_path / "dagster")] == "the Dagster folder's path (DAGSTER_HOME)"
    # a local input outside the project: its folder (one inside the project is its root's)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    local = IatiSource("files", "local", (inbox / "a.xml", settings.root / "demo" / "iati"))
    with_inputs = private_strings(dataclasses.replace(settings, iati_sources=(local,)), {})
    assert with_inputs[str(inbox.resolve())] == "a local input folder's path on this machine"
    assert str((settings.root / "demo" / "iati").resolve()) not in with_inputs


def test_a_release_that_would_leak_names_the_file_and_what_but_never_the_value() -> None:
    files = {"data/a.parquet": SECRET.encode(), "README.md": f"token {SECRET}".encode()}
    with pytest.raises(ReleaseError) as caught:
        check_private(files, {SECRET: "the value of AWS_SECRET_ACCESS_KEY"}, "releases/1/")
    assert str(caught.value).startswith(
        "releases/1/README.md would publish the value of AWS_SECRET_ACCESS_KEY; nothing was"
    )
    assert SECRET not in str(caught.value)
    check_private({"data/a.parquet": SECRET.encode()}, {SECRET: "x"})  # binary: not read


def test_a_file_on_disk_is_checked_in_chunks_across_their_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row extracts stay on disk and are read a chunk at a time: a value that starts in
    one chunk and ends in the next is found all the same."""
    monkeypatch.setattr(release, "_SCAN_BYTES", 16)
    clean, leaking = tmp_path / "clean.csv", tmp_path / "leaking.csv"
    clean.write_bytes(b"activity_id,title\r\n" + b"XM-1,Training\r\n" * 50)
    leaking.write_bytes(
        b"activity_id,title\r\n" + b"XM-1,Training\r\n" * 3 + f"XM-2,{SECRET}\r\n".encode()
    )
    local = {"countries/gh/rows/transactions.csv": clean}
    check_private({}, {SECRET: "a secret"}, "releases/1/", local=local)
    local["partners/xm/rows/transactions.csv"] = leaking
    with pytest.raises(ReleaseError) as caught:
        check_private({}, {SECRET: "a secret"}, "releases/1/", local=local)
    assert str(caught.value).startswith(
        "releases/1/partners/xm/rows/transactions.csv would publish a secret;"
    )


def test_publish_refuses_a_leak_and_publishes_nothing(tmp_path: Path, tables_dir: Path) -> None:
    tables = demo_tables()
    tables["activities"].loc[0, "title"] = f"Training ({SECRET})"
    options = OPTIONS.__class__(**{**OPTIONS.__dict__, "private": {SECRET: "a secret"}})
    root = tmp_path / "publish"
    with pytest.raises(ReleaseError, match=r"data/activities.csv would publish a secret"):
        publish_release(stored(tables, tables_dir), LocalTarget(root), options, now=NOW)
    assert not (root / "catalog.json").exists()
    assert not (root / "releases").exists()


def test_local_sources_are_published_without_the_machines_folders(
    tmp_path: Path, tables_dir: Path
) -> None:
    tables = demo_tables()
    before = set(tables["sources"]["uri"])
    assert any(uri.startswith("file:///") for uri in before)
    options = OPTIONS.__class__(**{**OPTIONS.__dict__, "project_root": Path.cwd()})
    publish_release(stored(tables, tables_dir), LocalTarget(tmp_path / "publish"), options, now=NOW)
    release = tmp_path / "publish" / "releases" / "2026.11.28"
    package = json.loads((release / "datapackage.json").read_text())
    shown = {source["uri"] for source in package["provenance"]["inputs"]}
    assert shown == {public_uri(uri, Path.cwd()) for uri in before}
    assert not any("file:" in uri or uri.startswith("/") for uri in shown)
    assert "file:///" not in (release / "data" / "sources.csv").read_text()


def test_a_local_file_that_failed_is_named_as_a_release_shows_it(
    tmp_path: Path, tables_dir: Path
) -> None:
    """A file read from a folder outside the project failed: its reason and its rejection
    in quarantine say where it was read. The release names it by its name alone, in every
    file it publishes (data, quality report, pages), and its guard, told this folder,
    finds nothing to refuse."""
    tables = demo_tables()
    sources, quarantine = tables["sources"], tables["quarantine"]
    uri = "file:///srv/inbox/partner%20data/who-arg.xml"
    failed = (
        f"{uri}: FileNotFoundError: [Errno 2] No such file or directory: "
        "'/srv/inbox/partner data/who-arg.xml' (listed in /srv/inbox/partner data)"
    )
    name = sources.loc[0, "source_file"]
    sources.loc[0, ["uri", "status", "reason"]] = [uri, "rejected", failed]
    row = quarantine.iloc[[0]].copy()
    row[["source_file", "source_ref", "table", "field", "rule", "value", "message"]] = [
        name,
        "/",
        "sources",
        None,
        "not_fetched",
        None,
        f"file rejected: {failed}",
    ]
    tables["quarantine"] = pd.concat([quarantine, row], ignore_index=True)
    private = {"/srv/inbox": "the input folder's path on this machine"}
    options = OPTIONS.__class__(**{**OPTIONS.__dict__, "private": private})
    publish_release(stored(tables, tables_dir), LocalTarget(tmp_path / "publish"), options, now=NOW)
    release = tmp_path / "publish" / "releases" / "2026.11.28"
    published = [p for p in (tmp_path / "publish").rglob("*") if p.is_file()]
    assert len(published) > 20
    for path in published:
        assert b"/srv/inbox" not in path.read_bytes(), path
    shown = (
        "who-arg.xml: FileNotFoundError: [Errno 2] No such file or directory: 'who-arg.xml' "
        "(listed in partner data)"
    )
    rows = pd.read_csv(release / "data" / "sources.csv", dtype=str).set_index("source_file")
    assert (rows.loc[name, "uri"], rows.loc[name, "reason"]) == ("who-arg.xml", shown)
    messages = pd.read_csv(release / "data" / "quarantine.csv", dtype=str)
    assert f"file rejected: {shown}" in set(messages["message"])
    report = json.loads((release / "quality" / "report.json").read_text())
    assert shown in json.dumps(report)


@pytest.mark.parametrize(
    ("table", "field", "value", "secret"),
    [
        ("sources", "bytes", 123_456_789_012_345, "123456789012"),  # digits in a number
        ("activities", "title", f"={SECRET}", f"'={SECRET}"),  # the formula's apostrophe too
        ("transactions", "exclusion_reason", f"why: {SECRET}\nsee", SECRET),
    ],
)
def test_a_leak_in_any_cell_of_a_data_file_is_refused(
    tmp_path: Path, tables_dir: Path, table: str, field: str, value: object, secret: str
) -> None:
    tables = demo_tables()
    tables[table].loc[1, field] = value
    options = OPTIONS.__class__(**{**OPTIONS.__dict__, "private": {secret: "a secret"}})
    with pytest.raises(ReleaseError, match=rf"data/{table}.csv would publish a secret"):
        publish_release(stored(tables, tables_dir), LocalTarget(tmp_path), options, now=NOW)
    assert not (tmp_path / "releases").exists()
