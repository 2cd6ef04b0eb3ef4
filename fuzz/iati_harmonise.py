"""Fuzz harness: an IATI activity file of any bytes through ``harmonise_file``.

The contract under test: harmonising never raises for what is inside the file; a broken
file comes back as a ``rejected`` (or ``partial``) source with a reason. Besides any
exception, :func:`test_one_input` fails when the result breaks the invariants every caller
relies on: one ``sources`` row, ``n_records = n_accepted + n_quarantined``, a reason for a
source that is not ``ok``, and no conformance finding saying the check hit an internal
error (the conformance pass turns its own exceptions into such a finding).

Options (CD rules, the shared fixtures' codelists and exchange rates, the IATI XML
Schemas) are built once, at import. Run under atheris by ``fuzz/run.py``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from assets.harmonise.schema import ArrowTables
from assets.iati.codelists import load_codelists
from assets.iati.conformance import IatiSchemas
from assets.iati.harmonise import IATI_TABLES, HarmonisedFile, HarmoniseOptions, harmonise_file
from assets.iati.rates import load_exchange_rates
from assets.settings import load_settings
from fuzz.seeds import FIXTURES

STATUSES = frozenset({"ok", "partial", "rejected"})


def build_options() -> HarmoniseOptions:
    """The options the pipeline harmonises with, from the shared fixtures."""
    rates = FIXTURES / "exchange-rates"
    return HarmoniseOptions(
        rules=load_settings().cd_rules,
        rates=load_exchange_rates(
            [rates / "imf-monthly-subset.csv", rates / "monthly-average-sdr-per-unit.json"]
        ),
        codelists=load_codelists(FIXTURES / "codelists"),
        schemas=IatiSchemas.from_dir(FIXTURES / "iati-schemas"),
    )


OPTIONS = build_options()
#: Where each input is written. ``fuzz/run.py`` names a folder of its own (libFuzzer ends the
#: process without running ``atexit``); otherwise a temporary one, removed at exit.
WORK_ENV = "CDCOMPACT_FUZZ_WORK"


def _work_folder() -> Path:
    if os.environ.get(WORK_ENV):
        folder = Path(os.environ[WORK_ENV])
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    folder = Path(tempfile.mkdtemp(prefix="cdcompact-fuzz-iati-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


_PATH = _work_folder() / "fuzz.xml"


class InvariantBroken(AssertionError):
    """The harmonised result breaks a rule every caller relies on."""


def _require(condition: bool, message: str, harmonised: HarmonisedFile) -> None:
    if not condition:
        raise InvariantBroken(f"{message}; sources: {_records(harmonised, 'sources')}")


def _records(harmonised: HarmonisedFile, table: str) -> list[dict[str, Any]]:
    tables = harmonised.tables
    if isinstance(tables, ArrowTables):
        rows: list[dict[str, Any]] = tables.arrow[table].to_pylist()
        return rows
    return list(tables[table].to_dict("records"))


def check(harmonised: HarmonisedFile) -> dict[str, Any]:
    """The invariants of one harmonised file; its ``sources`` row."""
    tables = harmonised.tables
    # The names only: ``in`` on a Mapping reads the table (an Arrow one into a frame).
    names = set(tables.arrow if isinstance(tables, ArrowTables) else tables)
    missing = [t for t in (*IATI_TABLES, "sources", "quarantine") if t not in names]
    _require(not missing, f"tables missing: {missing}", harmonised)
    sources = _records(harmonised, "sources")
    _require(len(sources) == 1, f"{len(sources)} sources rows, expected 1", harmonised)
    source = sources[0]
    status, reason = source["status"], source["reason"]
    _require(status in STATUSES, f"unknown status {status!r}", harmonised)
    n_records, n_accepted = source["n_records"], source["n_accepted"]
    n_quarantined = source["n_quarantined"]
    _require(
        n_records == n_accepted + n_quarantined,
        f"n_records {n_records} != n_accepted {n_accepted} + n_quarantined {n_quarantined}",
        harmonised,
    )
    _require(
        status == "ok" or bool(reason and str(reason).strip()),
        f"a {status} source without a reason",
        harmonised,
    )
    if status == "rejected":
        _require(n_accepted == 0, "a rejected source with accepted records", harmonised)
        _require(harmonised.rows("activities") == 0, "a rejected source with rows", harmonised)
    if "conformance" in names:
        for finding in _records(harmonised, "conformance"):
            message = str(finding.get("message") or "")
            _require(
                "internal error" not in message,
                f"the conformance check failed internally: {message}",
                harmonised,
            )
    return source


def harmonise(data: bytes) -> HarmonisedFile:
    """``data`` harmonised as the IATI file ``fuzz.xml``."""
    _PATH.write_bytes(data)
    return harmonise_file(_PATH, OPTIONS, source_file="fuzz.xml")


def test_one_input(data: bytes) -> None:
    """Harmonise ``data`` as an IATI file; raise only on a defect."""
    check(harmonise(data))
