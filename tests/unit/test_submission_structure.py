"""The Frictionless structural pass finds what does not fit the template's Table Schema."""

from __future__ import annotations

import pandas as pd

from assets.submissions.model import country_report
from assets.submissions.structure import structure_problems


def test_frictionless_reports_codes_types_required_and_duplicate_keys() -> None:
    results = pd.DataFrame(
        [
            {
                "indicator_id": "I1",
                "priority_id": "P1",
                "level": "output",
                "indicator_title": "Staff trained",
                "period_start": None,
                "period_end": None,
                "_row": 2,
                "_valid": True,
            },
            {
                "indicator_id": "I2",
                "priority_id": "P1",
                "level": "galaxy",
                "indicator_title": "Audits",
                "period_start": None,
                "period_end": None,
                "_row": 3,
                "_valid": True,
            },
            {
                "indicator_id": "I3",
                "priority_id": "P1",
                "level": "output",
                "indicator_title": None,
                "period_start": None,
                "period_end": None,
                "_row": 4,
                "_valid": True,
            },
            {
                "indicator_id": "I1",
                "priority_id": "P1",
                "level": "output",
                "indicator_title": "Again",
                "period_start": None,
                "period_end": None,
                "_row": 5,
                "_valid": True,
            },
        ]
    )
    for column in country_report().sheet("results").columns:
        if column.name not in results.columns:
            results[column.name] = None
    problems = structure_problems(country_report(), {"results": results})
    found = {(sheet, row, column, rule) for sheet, row, column, rule, _ in problems}
    assert ("results", 3, "level", "structure_constraint-error") in found
    assert ("results", 4, "indicator_title", "structure_constraint-error") in found
    assert any(rule == "structure_primary-key" and row == 5 for _, row, _, rule in found)
    assert not any(row == 2 for _, row, _, _ in found)


def test_a_clean_sheet_has_no_structural_problem() -> None:
    priorities = pd.DataFrame([{"priority_id": "P1", "title": "PFM", "_row": 2, "_valid": True}])
    for column in country_report().sheet("cd_priorities").columns:
        if column.name not in priorities.columns:
            priorities[column.name] = None
    assert structure_problems(country_report(), {"cd_priorities": priorities}) == []
