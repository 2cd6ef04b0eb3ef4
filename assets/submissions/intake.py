"""The submissions inbox: receive files, check and harmonise each, let newer ones replace older.

Files dropped into the inbox (a folder, or an S3 prefix) are stored by sha256 in
the raw store and get a key ``sub-<sha256 prefix>``: the submitter's file name is
kept only as a label, never used as a path. The same bytes sent twice are the
same submission (idempotent). A newer submission for the same country or
partner and period replaces the older one, and the replacement is recorded in
``sources`` and ``quarantine``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from assets.harmonise.schema import table_frame
from assets.harmonise.store import read_tables, write_tables
from assets.iati.codelists import Codelists
from assets.iati.fetching import raw_store
from assets.iati.harmonise import ALL_TABLES, IATI_TABLES, HarmonisedFile
from assets.iati.rates import ExchangeRates
from assets.settings import Settings
from assets.storage.targets import LocalTarget, Target
from assets.storage.targets_config import make_target
from assets.submissions.check import check_submission
from assets.submissions.harmonise import harmonise_submission, rejected_submission
from assets.submissions.read import TEMPLATE_DESCRIPTOR, SubmissionRejected, read_submission

#: Inbox files larger than this are refused before they are read.
MAX_SUBMISSION_BYTES = 50 * 1024 * 1024
INDEX = "index.json"
MARKER = "submission.json"


def submissions_dir(data_dir: Path) -> Path:
    return data_dir / "submissions"


def inbox(settings: Settings) -> Target:
    sub = settings.submissions
    if sub.inbox_target == "local":
        return LocalTarget(sub.inbox_dir)
    return make_target(
        sub.inbox_target,
        sub.inbox_dir,
        sub.s3_bucket,
        sub.s3_prefix,
        sub.s3_endpoint_url,
        sub.s3_region,
    )


def load_index(data_dir: Path) -> dict[str, dict[str, Any]]:
    path = submissions_dir(data_dir) / INDEX
    if not path.exists():
        return {}
    value: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return value


def _save_index(data_dir: Path, index: dict[str, dict[str, Any]]) -> None:
    folder = submissions_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{INDEX}.tmp"
    temporary.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(folder / INDEX)


def label(name: str) -> str:
    """A submitter's file name as a harmless label (never a path)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .") or "submission"


def _folder_as_zip(files: dict[str, bytes]) -> bytes:
    """The CSV files of an inbox folder as one ZIP, byte-identical for the same files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name.rsplit("/", 1)[-1], date_time=(2000, 1, 1, 0, 0, 0))
            archive.writestr(info, files[name])
    return buffer.getvalue()


def _submission_of(name: str) -> str:
    """The submission an inbox object belongs to: itself, or its folder of CSV files (with
    the CSV template's own ``datapackage.json``, kept in a filled copy of the folder)."""
    if "/" in name and (
        name.lower().endswith(".csv") or name.rsplit("/", 1)[-1] == TEMPLATE_DESCRIPTOR
    ):
        return name.split("/", 1)[0]
    return name


def _inbox_items(
    box: Target, versions: Mapping[str, str], seen: Mapping[str, str]
) -> list[tuple[str, bytes]]:
    """(label, bytes) of each submission in the inbox (a file, or a folder of CSV files)
    that is not as ``seen``: an object whose version is known and the same is not read,
    and a folder is read again when any of its files is new or changed."""
    members: dict[str, list[str]] = {}
    for name in sorted(versions):
        members.setdefault(_submission_of(name), []).append(name)
    changed = {
        submission: names
        for submission, names in members.items()
        if any(not versions[n] or seen.get(n) != versions[n] for n in names)
    }
    folders: dict[str, dict[str, bytes]] = {}
    items: list[tuple[str, bytes]] = []
    for submission, names in changed.items():
        for name in names:
            data = box.read_bytes(name)
            if data is None:
                continue
            if submission != name:
                if name.rsplit("/", 1)[-1] == TEMPLATE_DESCRIPTOR:
                    continue  # describes the template's columns; no data of the submission
                folders.setdefault(submission, {})[name] = data
            else:
                items.append((name, data))
    items += [(f"{folder}.zip", _folder_as_zip(files)) for folder, files in folders.items()]
    return items


def seed_inbox(settings: Settings) -> list[str]:
    """The first run's demo: every submission of ``submissions.seed`` (a file, or a folder
    of CSV files) copied into the inbox, when nothing was ever received and the inbox is
    empty. The names copied (none when there is no seed, or on any later run)."""
    seed = settings.submissions.seed_dir
    if seed is None or load_index(settings.data_dir):
        return []
    box = inbox(settings)
    if next(box.list_keys(), None) is not None:
        return []
    copied = []
    for entry in sorted(seed.iterdir()):
        if entry.name.startswith("."):
            continue
        files = sorted(entry.glob("*.csv")) if entry.is_dir() else [entry]
        for path in files:
            key = f"{entry.name}/{path.name}" if entry.is_dir() else entry.name
            box.write_file(key, path)
        copied.append(entry.name)
    return copied


def receive(settings: Settings, now: dt.datetime | None = None) -> list[str]:
    """Store every new file of the inbox; the keys of the new submissions."""
    return receive_changed(settings, {}, now)[0]


def receive_changed(
    settings: Settings, seen: Mapping[str, str], now: dt.datetime | None = None
) -> tuple[list[str], dict[str, str]]:
    """Store every new file of the inbox, reading only the objects not as ``seen``
    (``{object: version}``, :meth:`Target.list_versions`); the keys of the new
    submissions, and the inbox's objects and versions now (the next call's ``seen``)."""
    now = now or dt.datetime.now(dt.UTC)
    index = load_index(settings.data_dir)
    known = {entry["sha256"] for entry in index.values()}
    store = raw_store(settings)
    box = inbox(settings)
    versions = dict(box.list_versions())
    new: list[str] = []
    for name, data in _inbox_items(box, versions, seen):
        if len(data) > MAX_SUBMISSION_BYTES:
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 in known:
            continue  # the same bytes again: the same submission
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "submission"
            path.write_bytes(data)
            store.put_file(path, expected_sha256=sha256)
        key = f"sub-{sha256[:16]}"
        index[key] = {
            "key": key,
            "sha256": sha256,
            "name": label(name),
            "bytes": len(data),
            "received_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        known.add(sha256)
        new.append(key)
    if new:
        _save_index(settings.data_dir, index)
    return new, versions


def process(
    settings: Settings,
    key: str,
    rates: ExchangeRates | None,
    codelists: Codelists | None,
    iati_activity_ids: set[str] | None,
) -> HarmonisedFile:
    """Read, check and harmonise one received submission; its tables are stored."""
    entry = load_index(settings.data_dir)[key]
    source_file = f"{key}-{entry['name']}"
    uri = f"inbox:{entry['name']}"
    path = raw_store(settings).local_path(entry["sha256"])
    identity: dict[str, Any] = {"type": None, "who": None, "period": None}
    try:
        raw = read_submission(path, display_name=entry["name"])
    except SubmissionRejected as exc:
        harmonised = rejected_submission(
            source="partner_submission",
            source_file=source_file,
            sha256=entry["sha256"],
            size=entry["bytes"],
            uri=uri,
            rule=exc.rule,
            message=str(exc),
        )
    else:
        checked = check_submission(raw, settings, codelists, iati_activity_ids)
        harmonised = harmonise_submission(
            checked,
            source_file=source_file,
            sha256=entry["sha256"],
            size=entry["bytes"],
            uri=uri,
            rates=rates,
            cd_sectors=frozenset(settings.cd_rules.cd_sectors),
            codelists=codelists,
        )
        meta = checked.metadata
        identity = {
            "type": checked.type_name,
            "who": meta.get("country_code") or meta.get("partner_org_ref"),
            "period": meta.get("reporting_period"),
        }
    folder = submissions_dir(settings.data_dir) / key
    write_tables(harmonised.tables, folder)
    marker = {**entry, **identity, "source_file": source_file}
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return harmonised


def pending(settings: Settings) -> list[str]:
    """Received submissions not processed yet."""
    folder = submissions_dir(settings.data_dir)
    return [k for k in load_index(settings.data_dir) if not (folder / k / MARKER).exists()]


def processed_submissions(settings: Settings) -> list[HarmonisedFile]:
    """Every processed submission, the replaced ones emptied with the replacement recorded."""
    folder = submissions_dir(settings.data_dir)
    markers = []
    for key in sorted(load_index(settings.data_dir)):
        path = folder / key / MARKER
        if path.exists():
            markers.append(json.loads(path.read_text(encoding="utf-8")))
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for marker in markers:
        if marker["type"] is None:
            continue
        identity = (marker["type"], marker["who"], marker["period"])
        if identity not in newest or marker["received_at"] > newest[identity]["received_at"]:
            newest[identity] = marker
    files = []
    for marker in markers:
        tables = read_tables(folder / marker["key"], ALL_TABLES)
        # When it arrived: the submission date the quality report judges freshness by.
        tables["sources"] = table_frame(
            "sources", tables["sources"].assign(fetched_at=marker["received_at"])
        )
        identity = (marker["type"], marker["who"], marker["period"])
        winner = newest.get(identity)
        if winner is not None and winner["key"] != marker["key"]:
            tables = _replaced(tables, marker, winner)
        files.append(HarmonisedFile(marker["source_file"], tables))
    return files


def _replaced(
    tables: dict[str, pd.DataFrame], old: dict[str, Any], new: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    note = (
        f"replaced by the newer submission {new['source_file']} (received {new['received_at']}) "
        f"for {old['who']} and period {old['period']}"
    )
    emptied = {
        t: table_frame(t, []) if t in (*IATI_TABLES, "cd_priorities", "partner_declarations") else f
        for t, f in tables.items()
    }
    sources = tables["sources"].copy()
    sources["n_quarantined"] = sources["n_records"]
    sources["n_accepted"] = 0
    sources["status"] = "rejected"
    sources["reason"] = note
    emptied["sources"] = table_frame("sources", sources)
    emptied["quarantine"] = pd.concat(
        [
            tables["quarantine"],
            table_frame(
                "quarantine",
                [
                    {
                        "source_file": old["source_file"],
                        "source_ref": "/",
                        "table": "sources",
                        "rule": "replaced_by_newer_submission",
                        "value": new["source_file"],
                        "message": note,
                        "severity": "warning",
                    }
                ],
            ),
        ],
        ignore_index=True,
    )
    return emptied
