"""Complete example submissions in JSON, one per kind of submission.

``cdcompact templates`` writes them next to the XLSX and CSV templates
(``templates/country_report.json``, ``templates/partner_submission.json``): a JSON
submission is one object holding, for each sheet of the template, an array of objects
(one per row) whose fields are the sheet's columns; the metadata is a single object.
Every column of every sheet appears, in the template's order, so the examples show the
whole format; a test checks that they pass ``cdcompact check`` with no error and no
warning.
"""

from __future__ import annotations

import json
from typing import Any

from assets.submissions.model import SubmissionType

_COUNTRY_REPORT: dict[str, Any] = {
    "metadata": {
        "country_code": "GH",
        "reporting_period": "2025",
        "submitted_by": "CD Compact focal point, Ministry of Finance",
        "contact_email": "cd.focal.point@example.org",
    },
    "cd_priorities": [
        {
            "priority_id": "GH-P1",
            "title": "Public financial management",
            "sector_code": "15111",
            "lead_institution": "Ministry of Finance",
            "strategy_ref": "Medium-term national development policy framework 2022-2025",
            "start_year": 2022,
            "end_year": 2027,
        },
        {
            "priority_id": "GH-P2",
            "title": "Statistical capacity",
            "sector_code": "16062",
            "lead_institution": "Ghana Statistical Service",
            "strategy_ref": "Ghana Statistics Development Strategy II",
            "start_year": 2023,
            "end_year": 2027,
        },
    ],
    "results": [
        {
            "indicator_id": "GH-I1",
            "priority_id": "GH-P1",
            "level": "output",
            "indicator_title": "Public finance staff trained",
            "unit": "people",
            "baseline_year": 2022,
            "baseline_value": 120,
            "target_year": 2027,
            "target_value": 600,
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
            "actual_value": 310,
            "data_source": "Ministry of Finance training records",
            "government_data_source": True,
            "from_country_framework": True,
        },
        {
            "indicator_id": "GH-I2",
            "priority_id": "GH-P2",
            "level": "intermediate_outcome",
            "indicator_title": "Share of survey results published on schedule",
            "unit": "percentage",
            "baseline_year": 2023,
            "baseline_value": 40.5,
            "target_year": 2027,
            "target_value": 90,
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
            "actual_value": 62.5,
            "data_source": "Ghana Statistical Service release calendar",
            "government_data_source": True,
            "from_country_framework": False,
        },
    ],
}

_PARTNER_SUBMISSION: dict[str, Any] = {
    "metadata": {
        "partner_org_ref": "XM-EXAMPLE-1",
        "reporting_period": "2024-2025",
        "submitted_by": "CD Compact focal point, Example Development Agency",
        "contact_email": "cd.focal.point@example.org",
    },
    "activities": [
        {
            "activity_id": "GH-PFM-01",
            "in_iati": False,
            "title": "Technical assistance to budget execution reporting",
            "country_code": "GH",
            "sector_code": "15111",
            "start_date": "2024-01-01",
            "end_date": "2026-12-31",
            "budget": 1200000,
            "disbursed": 350000.5,
            "currency": "USD",
            "modality": "technical_assistance",
            "priority_ids": "GH-P1",
        },
        {
            "activity_id": "KE-STAT-02",
            "in_iati": False,
            "title": "Twinning of national statistics offices",
            "country_code": "KE",
            "sector_code": "16062",
            "start_date": "2024-07-01",
            "end_date": "2025-12-31",
            "budget": 400000,
            "disbursed": 180000,
            "currency": "EUR",
            "modality": "twinning",
            "priority_ids": "KE-P2;KE-P3",
        },
    ],
    "declarations": [
        {
            "activity_id": "GH-PFM-01",
            "uses_country_pfm": True,
            "uses_country_procurement": True,
            "uses_country_me": True,
            "on_budget": True,
            "results_from_country_framework": True,
            "coordinated": True,
            "coordinated_with": "XM-DAC-41114;XM-DAC-903",
            "joint_programme": False,
            "parallel_piu": False,
        },
        {
            "activity_id": "KE-STAT-02",
            "uses_country_pfm": False,
            "uses_country_procurement": False,
            "uses_country_me": True,
            "on_budget": False,
            "results_from_country_framework": True,
            "coordinated": False,
            "coordinated_with": "",
            "joint_programme": False,
            "parallel_piu": False,
        },
    ],
    "results": [
        {
            "activity_id": "GH-PFM-01",
            "indicator_id": "PFM-1",
            "level": "output",
            "indicator_title": "Budget officers trained in execution reporting",
            "unit": "people",
            "baseline_year": 2023,
            "baseline_value": 0,
            "target_year": 2026,
            "target_value": 150,
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
            "actual_value": 85,
            "data_source": "Ministry of Finance training records",
            "government_data_source": True,
            "from_country_framework": True,
        },
        {
            "activity_id": "KE-STAT-02",
            "indicator_id": "STAT-1",
            "level": "institutional",
            "indicator_title": "Share of county statistics offices using the new survey tools",
            "unit": "percentage",
            "baseline_year": 2024,
            "baseline_value": 10,
            "target_year": 2025,
            "target_value": 75,
            "period_start": "2024-07-01",
            "period_end": "2025-06-30",
            "actual_value": 45,
            "data_source": "Kenya National Bureau of Statistics",
            "government_data_source": True,
            "from_country_framework": True,
        },
    ],
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "country_report": _COUNTRY_REPORT,
    "partner_submission": _PARTNER_SUBMISSION,
}


def json_example(kind: SubmissionType) -> dict[str, Any]:
    """The example of ``kind``, its arrays and fields in the template's order; KeyError
    when the model has a sheet or column the example does not fill."""
    example = EXAMPLES[kind.name]
    document: dict[str, Any] = {}
    for sheet in kind.sheets:
        given = example[sheet.name]
        records = [given] if isinstance(given, dict) else given
        ordered = [
            {column.name: record[column.name] for column in sheet.columns} for record in records
        ]
        document[sheet.name] = ordered[0] if sheet.single_row else ordered
    return document


def json_example_text(kind: SubmissionType) -> str:
    """The example as written to ``templates/<kind>.json``."""
    return json.dumps(json_example(kind), indent=2, ensure_ascii=False) + "\n"
