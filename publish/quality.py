"""The data-quality report as published files (docs/quality-report.md).

:func:`quality_bundle` turns the harmonised tables (views of a DuckDB connection),
the Great Expectations results of the run and the trend of earlier runs into the
files of the report:
``report.json``, ``history.json``, ``report.md``, ``index.html``, one page per
contributor and the GX Data Docs. A release freezes a copy under
``releases/<version>/quality/``; :func:`write_latest_quality` rewrites
``quality/`` at the root of the target every run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from assets.settings import QualitySettings
from assets.storage.targets import Target, content_type
from expectations.outcomes import TableValidation
from expectations.quality import build_quality_report
from publish.quality_html import render_quality_site

#: The latest report, at the root of the publishing target.
QUALITY_DIR = "quality/"
HISTORY = "history.json"
DEFAULT_QUALITY = QualitySettings(
    freshness={"publisher": "quarterly", "country": "annually", "partner": "semiannually"},
    forward_years=3,
    history_runs=400,
    max_findings=1000,
)


@dataclass(frozen=True)
class QualityInputs:
    """What the report needs besides the tables and the release version."""

    validations: Mapping[str, TableValidation] | None = None
    settings: QualitySettings = DEFAULT_QUALITY
    run_id: str | None = None
    data_docs_dir: Path | None = None
    #: The day freshness is judged against (default: the day of the run, UTC).
    as_of: dt.date | None = None
    #: What the run's schema checks found in the tables (per table ``rows`` and
    #: ``by_rule``), when it kept that: the report does not check them again.
    schema_checks: Mapping[str, Mapping[str, Any]] | None = None
    #: Publishers an IATI source was configured to fetch that had no activity dataset in
    #: its listing (by the source's own name for them, e.g. the Registry's ``asdb``):
    #: contributors that sent nothing, like ``compact.publishers``.
    publishers_without_datasets: tuple[str, ...] = ()


@dataclass(frozen=True)
class QualityBundle:
    report: dict[str, Any]
    #: Files relative to quality/ of the release (report.json, index.html,
    #: contributors/…, data-docs/…): links to the data point at ``../``.
    files: dict[str, bytes] = field(default_factory=dict)
    #: The same for quality/ at the root of the target: links point at the release.
    latest_files: dict[str, bytes] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, Any]:
        """The figures the catalogue page shows for a release."""
        return catalogue_summary(self.report)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def quality_bundle(
    con: duckdb.DuckDBPyConnection,
    tables: Collection[str],
    *,
    release: str | None,
    history: Sequence[Mapping[str, Any]] = (),
    inputs: QualityInputs | None = None,
    now: dt.datetime | None = None,
    languages: Sequence[str] = ("en",),
) -> QualityBundle:
    """Every file of the report for the data in ``tables`` (held by ``release``), views of
    ``con`` with their row numbers (:func:`expectations.quality.build_quality_report`);
    the pages in each of ``languages`` (``index.html``, ``index.fr.html``...)."""
    inputs = inputs or QualityInputs()
    generated_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    report = build_quality_report(
        con,
        tables,
        validations=inputs.validations,
        as_of=inputs.as_of or generated_at.date(),
        generated_at=generated_at,
        freshness=inputs.settings.freshness,
        forward_years=inputs.settings.forward_years,
        history=list(history),
        history_runs=inputs.settings.history_runs,
        release=release,
        run_id=inputs.run_id,
        schema_checks=inputs.schema_checks,
        **expected_contributors(inputs.settings, inputs.publishers_without_datasets),
    )
    docs = {f"data-docs/{path}": data for path, data in _data_docs(inputs.data_docs_dir).items()}
    common: dict[str, bytes] = {
        "report.json": _json_bytes(report),
        HISTORY: _json_bytes(report["trend"]),
        "report.md": render_quality_markdown(report).encode(),
        **docs,
    }
    frozen = render_quality_site(
        report, data_docs=bool(docs), release_link="../", languages=languages
    )
    latest = render_quality_site(
        report,
        data_docs=bool(docs),
        release_link=f"../releases/{release}/" if release else None,
        languages=languages,
    )
    return QualityBundle(report, {**common, **frozen}, {**common, **latest})


def expected_contributors(
    settings: QualitySettings, without_datasets: Sequence[str] = ()
) -> dict[str, Any]:
    """Whom the compact expects data from (its publishers and countries, and the publishers
    a source was told to fetch that had no dataset: contributors of the report even when
    they sent nothing) and their contacts, as the report takes them."""
    return {
        "expected": [
            *(
                f"publisher:{ref}"
                for ref in dict.fromkeys([*settings.publishers, *without_datasets])
            ),
            *(f"country:{code}" for code in settings.countries),
        ],
        "contacts": {
            key: {"name": contact.name, "email": contact.email}
            for key, contact in settings.contacts.items()
        },
    }


def _data_docs(folder: Path | None) -> dict[str, bytes]:
    if folder is None or not (folder / "index.html").exists():
        return {}
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def read_history(target: Target) -> list[dict[str, Any]]:
    """The trend so far (quality/history.json of the target); [] when there is none
    or it cannot be read (the report then starts a new trend and says nothing is lost:
    every release keeps its own copy)."""
    data = target.read_bytes(QUALITY_DIR + HISTORY)
    if data is None:
        return []
    try:
        value = json.loads(data)
    except ValueError:
        return []
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def write_latest_quality(target: Target, bundle: QualityBundle) -> None:
    """Rewrite quality/ at the root of the target; files no longer produced are removed."""
    wanted = {QUALITY_DIR + path: data for path, data in bundle.latest_files.items()}
    for key, data in sorted(wanted.items()):
        if key.endswith(HISTORY):
            continue  # written last: the trend only moves once the report is in place
        if target.read_bytes(key) != data:
            target.write_bytes(key, data, content_type(key))
    for key in list(target.list_keys(QUALITY_DIR)):
        if key not in wanted:
            target.delete(key)
    history = QUALITY_DIR + HISTORY
    target.write_bytes(history, wanted[history], content_type(history))


def catalogue_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Headline quality figures of a release for catalog.json and index.html."""
    overall = report["overall"]
    validity = overall["validity"]
    states = [c["figures"]["validity"]["state"] for c in report["contributors"]]
    checks_failed = sum(
        1
        for table in report["tables"].values()
        if not table["schema_conformance"]["passed"]
        or not table.get("expectations", {}).get("passed_errors", True)
    )
    return {
        "files": validity["files"],
        "files_ok": validity["files_ok"],
        "files_partial": validity["files_partial"],
        "files_rejected": validity["files_rejected"],
        "records_quarantined": validity["records_quarantined"],
        "warnings": validity["warnings"],
        "schema_errors": validity["schema_errors"],
        "codelist_errors": validity["codelist_errors"],
        "contributors": len(states),
        "contributors_valid": states.count("valid"),
        "checks_failed": checks_failed,
    }


def render_quality_markdown(report: Mapping[str, Any]) -> str:
    """A plain-text digest of the report (the HTML pages and report.json hold it all)."""
    validity = report["overall"]["validity"]
    lines = [
        f"# Data quality, {report['as_of']}"
        + (f" (release {report['release']})" if report.get("release") else ""),
        "",
        f"- files: {validity['files']:,} (ok {validity['files_ok']:,}, partial "
        f"{validity['files_partial']:,}, rejected {validity['files_rejected']:,})",
        f"- records: {validity['records']:,} read, {validity['records_accepted']:,} accepted, "
        f"{validity['records_quarantined']:,} quarantined, {validity['warnings']:,} warnings",
        f"- IATI schema errors: {validity['schema_errors']:,} "
        f"({validity['schema_valid_files']:,} of {validity['schema_checked_files']:,} "
        "checked files valid)",
        f"- codelist errors: {validity['codelist_errors']:,} "
        f"(+ {validity['codelist_warnings']:,} warnings)",
        f"- rows failing expectations: {validity['expectation_errors']:,} errors, "
        f"{validity['expectation_warnings']:,} warnings",
        "",
        "The HTML report is `index.html` beside this file, with one page per contributor "
        "under `contributors/`; the figures are in `report.json`.",
        "",
        "## Contributors",
        "",
        "| contributor | kind | state | freshness | records | quarantined | schema errors "
        "| codelist errors | expectation errors |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for item in report["contributors"]:
        figures = item["figures"]
        v = figures["validity"]
        lines.append(
            f"| {_cell(item['name'])} ({_cell(item['ref'])}) | {item['kind']} | {v['state']} "
            f"| {figures['timeliness']['state']} | {v['records']:,} "
            f"| {v['records_quarantined']:,} | {v['schema_errors']:,} "
            f"| {v['codelist_errors']:,} | {v['expectation_errors']:,} |"
        )
    chase = [
        item
        for item in report["contributors"]
        if item["figures"]["validity"]["state"] in ("nothing_received", "rejected")
    ]
    if chase:
        lines += ["", "## Whom to chase", "", "| contributor | kind | state | contact |"]
        lines.append("|---|---|---|---|")
        for item in chase:
            contact = item.get("contact") or {}
            lines.append(
                f"| {_cell(item['name'])} ({_cell(item['ref'])}) | {item['kind']} "
                f"| {item['figures']['validity']['state']} "
                f"| {_cell(' '.join(filter(None, (contact.get('name'), contact.get('email')))))} |"
            )
    if report.get("setup"):
        lines += [
            "",
            "## Setup of this compact",
            "",
            "| rule | message | files |",
            "|---|---|---:|",
        ]
        for item in report["setup"]:
            lines.append(f"| {item['rule']} | {_cell(item['message'])} | {item['files']:,} |")
    lines += [
        "",
        "## Files",
        "",
        "| file | status | records | accepted | quarantined | schema errors | reason |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for item in report["files"]:
        schema = item.get("schema") or {}
        lines.append(
            f"| {_cell(item['source_file'])} | {item['status']} | {item['n_records']:,} "
            f"| {item['n_accepted']:,} | {item['n_quarantined']:,} "
            f"| {schema.get('errors', 0):,} | {_cell(item.get('reason') or '')} |"
        )
        for finding in item.get("findings") or []:
            if finding["severity"] != "error":
                continue
            where = f"line {finding['line']}" if finding.get("line") else "file"
            lines.append(f"|  | {where} | | | | | {_cell(finding['message'])} |")
    lines += ["", "## Tables", "", "| table | rows | schema | expectations |", "|---|---:|---|---|"]
    for table, check in report["tables"].items():
        schema = check["schema_conformance"]
        failed = [
            f"{f['rule']} ({f['severity']}) {f['unexpected']:,}"
            for f in check.get("expectations", {}).get("failed", [])
        ]
        lines.append(
            f"| {table} | {check['rows']:,} | "
            + (
                "passed"
                if schema["passed"]
                else ", ".join(f"{r}: {n:,}" for r, n in schema["violations"].items())
            )
            + f" | {', '.join(failed) or 'passed'} |"
        )
    lines.append("")
    return "\n".join(lines)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
