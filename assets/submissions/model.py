"""What a country results report and a partner submission contain: sheets and columns.

The one place that says which sheets a submission has and which columns each
sheet holds. Columns that are fields of the CD results schema take their type,
description and codes from ``schema/`` (never restated here); the few columns a
submitter fills that are not schema fields (metadata, amounts) are described
here once. Templates, the checker and the harmoniser all read this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from assets.harmonise.schema import table_schema

#: Column types a submitter can fill (Frictionless names).
TYPES = ("string", "integer", "number", "boolean", "date")


@dataclass(frozen=True)
class Column:
    """One column of a submission sheet."""

    name: str
    type: str
    description: str
    required: bool = False
    #: Codes allowed (drop-down list in the template); a codelist name in ``codelist``
    #: means the codes come from the IATI codelists at run time.
    enum: tuple[str, ...] = ()
    codelist: str | None = None
    #: The schema field it fills, as ``table.field`` (None for submission-only columns).
    field: str | None = None


@dataclass(frozen=True)
class Sheet:
    """One sheet (XLSX) or file (CSV) of a submission."""

    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    #: Columns that identify a row within the submission.
    key: tuple[str, ...] = ()
    #: Metadata sheets hold one row that applies to the whole submission.
    single_row: bool = False

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"sheet {self.name} has no column {name!r}")


@dataclass(frozen=True)
class SubmissionType:
    name: str  # country_report | partner_submission
    title: str
    description: str
    sheets: tuple[Sheet, ...]

    def sheet(self, name: str) -> Sheet:
        for sheet in self.sheets:
            if sheet.name == name:
                return sheet
        raise KeyError(f"{self.name} has no sheet {name!r}")


def _schema_field(table: str, name: str) -> dict[str, Any]:
    for spec in table_schema(table)["fields"]:
        if spec["name"] == name:
            return dict(spec)
    raise KeyError(f"schema/{table}.json has no field {name!r}")


def from_schema(
    table: str,
    name: str,
    *,
    column: str | None = None,
    required: bool | None = None,
    codelist: str | None = None,
    description: str | None = None,
) -> Column:
    """A column that fills a schema field: type, description and codes from schema/."""
    spec = _schema_field(table, name)
    constraints = spec.get("constraints", {})
    return Column(
        name=column or name,
        type=spec["type"] if spec["type"] in TYPES else "string",
        description=description or spec.get("description", ""),
        required=bool(constraints.get("required")) if required is None else required,
        enum=tuple(str(v) for v in constraints.get("enum", ())),
        codelist=codelist,
        field=f"{table}.{name}",
    )


YES_NO = "Yes or no (yes/no, y/n, true/false, 1/0 are all understood); empty = unknown."


def _flag(table: str, name: str, text: str) -> Column:
    return from_schema(table, name, description=f"{text} {YES_NO}")


def _indicator_values(framework: str) -> tuple[Column, ...]:
    """Baseline, target, actual and how an indicator is measured: the same on every results
    sheet."""
    return (
        *(
            from_schema("results", name)
            for name in (
                "baseline_year",
                "baseline_value",
                "target_year",
                "target_value",
                "period_start",
                "period_end",
                "actual_value",
                "data_source",
            )
        ),
        _flag(
            "results",
            "government_data_source",
            "Measured with a government data or monitoring system?",
        ),
        _flag("results", "from_country_framework", f"Drawn from the {framework}?"),
    )


@cache
def country_report() -> SubmissionType:
    return SubmissionType(
        name="country_report",
        title="Country results report",
        description="A partner country's capacity-development priorities and the results "
        "indicators it tracks for them.",
        sheets=(
            Sheet(
                "metadata",
                "About this report",
                "One row: which country, which reporting period, who submits.",
                (
                    from_schema("cd_priorities", "country_code", codelist="Country"),
                    Column(
                        "reporting_period",
                        "string",
                        "Reporting period: a year (2025) or a range of years (2024-2025).",
                        required=True,
                    ),
                    Column(
                        "submitted_by",
                        "string",
                        "Name and institution of the person submitting (focal point).",
                        required=True,
                    ),
                    Column(
                        "contact_email", "string", "E-mail address for questions about this report."
                    ),
                ),
                single_row=True,
            ),
            Sheet(
                "cd_priorities",
                "CD priorities",
                "One row per capacity-development priority of the country.",
                (
                    from_schema("cd_priorities", "priority_id"),
                    from_schema("cd_priorities", "title", required=True),
                    from_schema("cd_priorities", "sector_code", codelist="Sector"),
                    from_schema("cd_priorities", "lead_institution"),
                    from_schema("cd_priorities", "strategy_ref"),
                    from_schema("cd_priorities", "start_year"),
                    from_schema("cd_priorities", "end_year"),
                ),
                key=("priority_id",),
            ),
            Sheet(
                "results",
                "Results indicators",
                "One row per indicator and period, linked to a CD priority.",
                (
                    from_schema("results", "indicator_id", required=True),
                    from_schema("results", "priority_id", required=True),
                    from_schema("results", "level", required=True),
                    from_schema("results", "indicator_title", required=True),
                    from_schema(
                        "results",
                        "measure",
                        column="unit",
                        description="Unit of measure (number, percentage, "
                        "institutions, people trained, ...).",
                    ),
                    *_indicator_values("national results framework"),
                ),
                key=("indicator_id", "period_start", "period_end"),
            ),
        ),
    )


@cache
def partner_submission() -> SubmissionType:
    return SubmissionType(
        name="partner_submission",
        title="Partner submission",
        description="A development partner's capacity-development activities in a country, "
        "how they align with its priorities and use its systems, and their results.",
        sheets=(
            Sheet(
                "metadata",
                "About this submission",
                "One row: which partner, which reporting period, who submits.",
                (
                    from_schema(
                        "partner_declarations",
                        "partner_org_ref",
                        description="The partner organisation's IATI organisation "
                        "identifier (e.g. GB-GOV-1, XM-DAC-41114).",
                    ),
                    Column(
                        "reporting_period",
                        "string",
                        "Reporting period: a year (2025) or a range of years (2024-2025).",
                        required=True,
                    ),
                    Column(
                        "submitted_by", "string", "Name of the person submitting.", required=True
                    ),
                    Column("contact_email", "string", "E-mail address for questions."),
                ),
                single_row=True,
            ),
            Sheet(
                "activities",
                "CD activities",
                "One row per capacity-development activity (one recipient country each).",
                (
                    Column(
                        "activity_id",
                        "string",
                        "The activity's IATI identifier when it is published in IATI, "
                        "else your own id (it becomes <partner_org_ref>:<your id>).",
                        required=True,
                        field="activities.activity_id",
                    ),
                    Column(
                        "in_iati",
                        "boolean",
                        f"Is the activity published in IATI under this identifier? {YES_NO}",
                    ),
                    from_schema("activities", "title", required=True),
                    from_schema("activity_countries", "country_code", codelist="Country"),
                    from_schema(
                        "activity_sectors",
                        "code",
                        column="sector_code",
                        required=False,
                        codelist="Sector",
                        description="OECD DAC 5-digit sector of the activity (IATI sector "
                        "vocabulary 1), e.g. 15111 for public finance management; used to "
                        "classify it and to find partners working on the same thing.",
                    ),
                    from_schema("activities", "start_date"),
                    from_schema("activities", "end_date"),
                    Column("budget", "number", "Total budget of the activity, in `currency`."),
                    Column(
                        "disbursed",
                        "number",
                        "Amount disbursed in the reporting period, in `currency`.",
                    ),
                    Column(
                        "currency",
                        "string",
                        "ISO 4217 currency code of the amounts (USD, EUR, ...).",
                        codelist="Currency",
                    ),
                    from_schema("activities", "modality"),
                    from_schema(
                        "partner_declarations",
                        "priority_ids",
                        description="The country CD priorities the activity supports: "
                        "priority ids from the country's report, separated by ';'.",
                    ),
                ),
                key=("activity_id",),
            ),
            Sheet(
                "declarations",
                "Alignment declarations",
                "One row per activity: how it aligns with and uses country systems.",
                (
                    Column(
                        "activity_id",
                        "string",
                        "The activity, as on the activities sheet.",
                        required=True,
                        field="partner_declarations.activity_id",
                    ),
                    _flag(
                        "partner_declarations",
                        "uses_country_pfm",
                        "Funds managed through the country's public financial management?",
                    ),
                    _flag(
                        "partner_declarations",
                        "uses_country_procurement",
                        "The country's procurement system used?",
                    ),
                    _flag(
                        "partner_declarations",
                        "uses_country_me",
                        "The country's monitoring and evaluation system used?",
                    ),
                    _flag("partner_declarations", "on_budget", "On the national budget?"),
                    _flag(
                        "partner_declarations",
                        "results_from_country_framework",
                        "Objectives and results taken from the country's results framework?",
                    ),
                    _flag(
                        "partner_declarations",
                        "coordinated",
                        "Coordinated with the government and other partners?",
                    ),
                    from_schema("partner_declarations", "coordinated_with"),
                    _flag(
                        "partner_declarations",
                        "joint_programme",
                        "Part of a joint programme or basket fund?",
                    ),
                    _flag(
                        "partner_declarations",
                        "parallel_piu",
                        "Run by a parallel project implementation unit?",
                    ),
                ),
                key=("activity_id",),
            ),
            Sheet(
                "results",
                "Results indicators",
                "One row per indicator and period of an activity.",
                (
                    Column(
                        "activity_id",
                        "string",
                        "The activity, as on the activities sheet.",
                        required=True,
                        field="results.activity_id",
                    ),
                    from_schema("results", "indicator_id", required=True),
                    from_schema("results", "level", required=True),
                    from_schema("results", "indicator_title", required=True),
                    from_schema(
                        "results", "measure", column="unit", description="Unit of measure."
                    ),
                    *_indicator_values("country's results framework"),
                ),
                key=("activity_id", "indicator_id", "period_start", "period_end"),
            ),
        ),
    )


def submission_types() -> tuple[SubmissionType, ...]:
    return (country_report(), partner_submission())


def submission_type(name: str) -> SubmissionType:
    for kind in submission_types():
        if kind.name == name:
            return kind
    raise KeyError(f"unknown submission type {name!r}")
