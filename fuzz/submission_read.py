"""Fuzz harness: a submission file of any bytes through reading, checking and harmonising.

``read_submission_bytes`` refuses what it cannot read safely with
:class:`~assets.submissions.read.SubmissionRejected`, which carries a rule and a
plain-language reason for the submitter: that is the expected outcome for bad input (its
rule and reason must not be empty). Anything else it raises is a defect. A submission that
is read goes on, as in the pipeline (``assets.submissions.intake.process``), through
``check_submission`` and ``harmonise_submission``, which must not raise at all.

The display name (``fuzz.xlsx``, ``fuzz.csv``, ...) is chosen by the first byte; the reader
decides the format by content, so the name only shows in messages. Run under atheris by
``fuzz/run.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

from assets.iati.codelists import load_codelists
from assets.iati.harmonise import HarmonisedFile
from assets.settings import load_settings
from assets.submissions.check import (
    CheckedSubmission,
    check_submission,
    format_problems,
    summary_line,
)
from assets.submissions.harmonise import harmonise_submission
from assets.submissions.read import FORMATS, SubmissionRejected, read_submission_bytes
from fuzz.seeds import FIXTURES

NAMES = ("fuzz.xlsx", "fuzz.csv", "fuzz.zip", "fuzz.json")
SETTINGS = load_settings()
CODELISTS = load_codelists(FIXTURES / "codelists")
#: Activity identifiers a partner submission's ``in_iati`` is checked against.
IATI_IDS = frozenset({"XM-DEMO-1001-GH-PFM-01", "XM-DEMO-1001-KE-ROAD-02"})


class InvariantBroken(AssertionError):
    """A result breaks a rule every caller relies on."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantBroken(message)


def display_name(data: bytes) -> str:
    return NAMES[data[0] % len(NAMES)] if data else NAMES[0]


def process(data: bytes) -> tuple[CheckedSubmission, HarmonisedFile] | SubmissionRejected:
    """What the pipeline does with an upload: the checked and harmonised submission, or
    the rejection."""
    name = display_name(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about odd workbooks
        try:
            raw = read_submission_bytes(data, name)
        except SubmissionRejected as exc:
            return exc
    _require(raw.format in FORMATS, f"unknown format {raw.format!r}")
    _require(bool(raw.sheets), "a submission read with no sheets")
    checked = check_submission(raw, SETTINGS, CODELISTS, set(IATI_IDS))
    format_problems(checked)
    summary_line(checked)
    for problem in checked.problems:
        _require(problem.severity in {"error", "warning"}, f"severity {problem.severity!r}")
        problem.describe()
    harmonised = harmonise_submission(
        checked,
        source_file=name,
        sha256=raw.sha256,
        size=raw.size,
        uri=f"inbox:{name}",
        rates=None,
    )
    sources: list[dict[str, Any]] = harmonised.tables["sources"].to_dict("records")
    _require(len(sources) == 1, f"{len(sources)} sources rows, expected 1")
    source = sources[0]
    _require(
        source["n_records"] == source["n_accepted"] + source["n_quarantined"],
        f"n_records != n_accepted + n_quarantined: {source}",
    )
    _require(
        source["status"] == "ok" or bool(source["reason"] and str(source["reason"]).strip()),
        f"a {source['status']} submission without a reason",
    )
    return checked, harmonised


def test_one_input(data: bytes) -> None:
    """Read, check and harmonise ``data`` as a submission; raise only on a defect."""
    outcome = process(data)
    if isinstance(outcome, SubmissionRejected):
        _require(bool(outcome.rule), "a rejection without a rule")
        _require(bool(str(outcome).strip()), f"rejection {outcome.rule!r} without a reason")
