"""Realistic submission files written at test time (nothing binary is committed).

Each function writes one file into ``folder`` and returns its path. ``EXPECTED`` says what
the checker must find in each: rows read and rows with errors per sheet, the error rules
by (sheet, row), key messages and the number of recorded normalisations; for the hostile
files, the rule they are rejected with and part of the reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import openpyxl

#: A real identifier of the demo IATI data (demo/iati/xm-demo-1001.xml).
DEMO_IATI_ID = "XM-DEMO-1001-GH-PFM-01"
DEMO_IATI_IDS = frozenset({DEMO_IATI_ID, "XM-DEMO-1001-KE-ROAD-02", "GB-DEMO-2002-KE-TVET-01"})

Rows = Sequence[Sequence[Any]]


def _write_xlsx(path: Path, sheets: dict[str, tuple[Sequence[str], Rows]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, (header, rows) in sheets.items():
        worksheet = workbook.create_sheet(name)
        worksheet.append(list(header))
        for row in rows:
            worksheet.append(list(row))
        # Text that starts with "=" is text typed by a person, not a formula.
        for row_cells in worksheet.iter_rows():
            for cell in row_cells:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"
    workbook.save(path)
    return path


def _csv_bytes(header: Sequence[str], rows: Rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue().encode("utf-8")


# --- country reports ------------------------------------------------------------------

COUNTRY_META = ("country_code", "reporting_period", "submitted_by", "contact_email")
PRIORITY_COLUMNS = (
    "priority_id",
    "title",
    "sector_code",
    "lead_institution",
    "strategy_ref",
    "start_year",
    "end_year",
)
COUNTRY_RESULT_COLUMNS = (
    "indicator_id",
    "priority_id",
    "level",
    "indicator_title",
    "unit",
    "baseline_year",
    "baseline_value",
    "target_year",
    "target_value",
    "period_start",
    "period_end",
    "actual_value",
    "data_source",
    "government_data_source",
    "from_country_framework",
)


def clean_country_report_ghana(folder: Path) -> Path:
    jan, dec = dt.datetime(2025, 1, 1), dt.datetime(2025, 12, 31)
    return _write_xlsx(
        folder / "ghana-country-report-2025.xlsx",
        {
            "metadata": (
                COUNTRY_META,
                [("GH", "2025", "Ama Mensah, Ministry of Finance", "ama.mensah@mofep.gov.gh")],
            ),
            "cd_priorities": (
                PRIORITY_COLUMNS,
                [
                    (
                        "GH-P1",
                        "Public financial management",
                        15111,
                        "Ministry of Finance",
                        "MTNDPF 2022-2025",
                        2022,
                        2027,
                    ),
                    (
                        "GH-P2",
                        "Statistical capacity",
                        16062,
                        "Ghana Statistical Service",
                        "GSDS II",
                        2023,
                        2027,
                    ),
                    (
                        "GH-P3",
                        "Water and sanitation",
                        14030,
                        "Ministry of Sanitation",
                        "NWP",
                        2024,
                        2028,
                    ),
                ],
            ),
            "results": (
                COUNTRY_RESULT_COLUMNS,
                [
                    (
                        "GH-I1",
                        "GH-P1",
                        "output",
                        "PFM staff trained",
                        "people",
                        2022,
                        120,
                        2027,
                        600,
                        jan,
                        dec,
                        340,
                        "MoF HR records",
                        "yes",
                        "yes",
                    ),
                    (
                        "GH-I2",
                        "GH-P1",
                        "institutional",
                        "Budget credibility (PEFA PI-1)",
                        "score",
                        2022,
                        2,
                        2027,
                        3,
                        jan,
                        dec,
                        2,
                        "PEFA assessment",
                        "no",
                        "yes",
                    ),
                    (
                        "GH-I3",
                        "GH-P2",
                        "output",
                        "Statisticians certified",
                        "people",
                        2023,
                        15,
                        2027,
                        80,
                        jan,
                        dec,
                        31,
                        "GSS",
                        "yes",
                        "yes",
                    ),
                    (
                        "GH-I4",
                        "GH-P2",
                        "intermediate_outcome",
                        "Surveys published on time",
                        "percentage",
                        2023,
                        40.5,
                        2027,
                        90,
                        jan,
                        dec,
                        62.5,
                        "GSS",
                        "yes",
                        "no",
                    ),
                    (
                        "GH-I5",
                        "GH-P3",
                        "impact",
                        "Households with basic sanitation",
                        "percentage",
                        2024,
                        25,
                        2028,
                        40,
                        jan,
                        dec,
                        27,
                        "DHS",
                        "no",
                        "yes",
                    ),
                    (
                        "GH-I6",
                        "GH-P3",
                        "other",
                        "District WASH plans adopted",
                        "plans",
                        2024,
                        0,
                        2028,
                        50,
                        jan,
                        dec,
                        12,
                        "MSWR",
                        None,
                        None,
                    ),
                ],
            ),
        },
    )


def messy_country_report_kenya(folder: Path) -> Path:
    """What a busy ministry might really send: odd headers, typos, mixed spellings."""
    return _write_xlsx(
        folder / "Kenya report FINAL (2).xlsx",
        {
            "Metadata": (
                ("Country Code", "reporting period ", "Submitted_By", "contact email"),
                [("Keyna", 2025, "Wanjiru Kamau ", "w.kamau@treasury.go.ke")],
            ),
            "CD Priorities": (
                (
                    "Priority ID",
                    "Title",
                    "Sector Code",
                    "Lead institution",
                    "Strategy ref",
                    "Start Year",
                    "End Year",
                    "Notes",
                ),
                [
                    (
                        "KP1",
                        "Public financial management",
                        15111,
                        "National Treasury",
                        "MTP IV",
                        2023,
                        2027,
                        "flagship",
                    ),
                    (
                        "KP2",
                        '=HYPERLINK("http://example.org/stats","Statistics")',
                        16062,
                        "KNBS",
                        "MTP IV",
                        2023,
                        2027,
                        None,
                    ),
                    (
                        "KP3",
                        "Agricultural extension",
                        " 31120 ",
                        "Ministry of Agriculture",
                        "ASTGS",
                        2026,
                        2024,
                        None,
                    ),
                    (None, None, None, None, None, None, None, None),
                    (
                        "KP2",
                        "Health statistics",
                        12220,
                        "Ministry of Health",
                        "KHSSP",
                        2023,
                        2027,
                        "duplicate by mistake",
                    ),
                ],
            ),
            "Results": (
                (
                    "Indicator ID",
                    "priority id",
                    "Level",
                    "Indicator Title",
                    "Unit",
                    "Baseline Year",
                    "Baseline value",
                    "Target Year",
                    "Target Value",
                    "Period Start",
                    "Period End",
                    "Actual Value",
                    "Data Source",
                    "Government data source",
                    "From Country Framework",
                ),
                [
                    (
                        "KI1",
                        "KP1",
                        "output",
                        "PFM staff trained",
                        "people",
                        2023,
                        "1,200",
                        2027,
                        "12,000",
                        dt.datetime(2025, 1, 1),
                        dt.datetime(2025, 12, 31),
                        "3,400",
                        "Treasury HR",
                        "yes",
                        "Y",
                    ),
                    (
                        "KI2",
                        "KP2",
                        "Institutional",
                        "Statistical system maturity",
                        "score",
                        2023,
                        2,
                        2027,
                        4,
                        45658,
                        "2025-12-31",
                        3,
                        "KNBS",
                        1,
                        "oui",
                    ),
                    (
                        "KI3",
                        "KP9",
                        "output",
                        "Extension officers trained",
                        "people",
                        2023,
                        0,
                        2027,
                        500,
                        dt.datetime(2025, 1, 1),
                        dt.datetime(2025, 12, 31),
                        120,
                        "MoA",
                        "no",
                        "no",
                    ),
                    (
                        "KI4",
                        "KP1",
                        "output",
                        "Auditors certified",
                        "people",
                        2023,
                        10,
                        2027,
                        60,
                        "03/04/2025",
                        dt.datetime(2025, 12, 31),
                        22,
                        "OAG",
                        "yes",
                        "yes",
                    ),
                    (
                        "KI5",
                        "KP3",
                        "impact",
                        "  Farmers reached  ",
                        "people",
                        2023,
                        1000,
                        2027,
                        5000,
                        dt.datetime(2025, 1, 1),
                        dt.datetime(2025, 12, 31),
                        2100,
                        "MoA",
                        "no",
                        "yes",
                    ),
                ],
            ),
        },
    )


# --- partner submissions --------------------------------------------------------------

PARTNER_META = ("partner_org_ref", "reporting_period", "submitted_by", "contact_email")
ACTIVITY_COLUMNS = (
    "activity_id",
    "in_iati",
    "title",
    "country_code",
    "start_date",
    "end_date",
    "budget",
    "disbursed",
    "currency",
    "modality",
    "priority_ids",
)
DECLARATION_COLUMNS = (
    "activity_id",
    "uses_country_pfm",
    "uses_country_procurement",
    "uses_country_me",
    "on_budget",
    "results_from_country_framework",
    "coordinated",
    "coordinated_with",
    "joint_programme",
    "parallel_piu",
)
PARTNER_RESULT_COLUMNS = ("activity_id", *COUNTRY_RESULT_COLUMNS[:1], *COUNTRY_RESULT_COLUMNS[2:])


def clean_partner_submission(folder: Path) -> Path:
    day = dt.datetime
    return _write_xlsx(
        folder / "xm-demo-9001-submission.xlsx",
        {
            "metadata": (
                PARTNER_META,
                [("XM-DEMO-9001", "2025", "Jo Partner", "jo@partner.example")],
            ),
            "activities": (
                ACTIVITY_COLUMNS,
                [
                    (
                        DEMO_IATI_ID,
                        "yes",
                        "PFM reform support",
                        "GH",
                        day(2022, 1, 1),
                        day(2026, 12, 31),
                        2500000,
                        600000,
                        "USD",
                        "technical_assistance",
                        "GH-P1",
                    ),
                    (
                        "GH-STAT-01",
                        "no",
                        "Statistics twinning",
                        "GH",
                        day(2023, 3, 1),
                        day(2027, 2, 28),
                        800000,
                        150000,
                        "EUR",
                        "twinning",
                        "GH-P2",
                    ),
                    (
                        "KE-TVET-02",
                        "no",
                        "TVET instructors training",
                        "KE",
                        day(2024, 1, 1),
                        day(2026, 6, 30),
                        1200000,
                        300000,
                        "USD",
                        "training",
                        "KP1;KP3",
                    ),
                    (
                        "KE-DIGI-03",
                        "no",
                        "Digital public finance peer learning",
                        "KE",
                        day(2024, 7, 1),
                        day(2025, 12, 31),
                        300000,
                        90000,
                        "GBP",
                        "peer_learning",
                        None,
                    ),
                ],
            ),
            "declarations": (
                DECLARATION_COLUMNS,
                [
                    (
                        DEMO_IATI_ID,
                        "yes",
                        "yes",
                        "yes",
                        "yes",
                        "yes",
                        "yes",
                        "GB-GOV-1;XM-DAC-41114",
                        "no",
                        "no",
                    ),
                    ("GH-STAT-01", "no", "no", "yes", "yes", "yes", "yes", None, "no", "no"),
                    ("KE-TVET-02", "yes", "no", "no", "yes", "no", "yes", "GB-GOV-1", "yes", "no"),
                    ("KE-DIGI-03", "no", "no", "no", "no", "no", "no", None, "no", "yes"),
                ],
            ),
            "results": (
                PARTNER_RESULT_COLUMNS,
                [
                    (
                        DEMO_IATI_ID,
                        "R1",
                        "output",
                        "Budget officers trained",
                        "people",
                        2022,
                        0,
                        2026,
                        400,
                        day(2025, 1, 1),
                        day(2025, 12, 31),
                        150,
                        "Project M&E",
                        "yes",
                        "yes",
                    ),
                    (
                        "GH-STAT-01",
                        "R1",
                        "institutional",
                        "Survey quality framework adopted",
                        "yes/no",
                        2023,
                        0,
                        2027,
                        1,
                        day(2025, 1, 1),
                        day(2025, 12, 31),
                        0,
                        "GSS",
                        "yes",
                        "yes",
                    ),
                    (
                        "KE-TVET-02",
                        "R1",
                        "output",
                        "Instructors certified",
                        "people",
                        2024,
                        0,
                        2026,
                        900,
                        day(2025, 1, 1),
                        day(2025, 12, 31),
                        410,
                        "TVETA",
                        "yes",
                        "no",
                    ),
                    (
                        "KE-DIGI-03",
                        "R1",
                        "intermediate_outcome",
                        "E-procurement adopted",
                        "percentage",
                        2024,
                        10,
                        2025,
                        60,
                        day(2025, 1, 1),
                        day(2025, 12, 31),
                        35,
                        "PPRA",
                        "no",
                        "no",
                    ),
                ],
            ),
        },
    )


def partner_csv_zip(folder: Path) -> Path:
    """A ZIP of CSV files in a sub-folder, as an export from another system might be."""
    members = {
        "metadata.csv": _csv_bytes(
            PARTNER_META, [("XM-DEMO-9001", "2025", "Jo Partner", "jo@partner.example")]
        ),
        "activities.csv": _csv_bytes(
            ACTIVITY_COLUMNS,
            [
                (
                    DEMO_IATI_ID,
                    "yes",
                    "PFM reform support",
                    "GH",
                    "2022-01-01",
                    "2026-12-31",
                    "2500000",
                    "600000",
                    "USD",
                    "technical_assistance",
                    "GH-P1",
                ),
                (
                    "XM-DEMO-9001-KE-99",
                    "yes",
                    "Roads maintenance training",
                    "Kenya",
                    "2024-01-01",
                    "2025-12-31",
                    "400000",
                    "100000",
                    "usd",
                    "training",
                    "KP1",
                ),
                (
                    "KE-AUDIT-05",
                    "no",
                    "Audit peer review",
                    "KE",
                    "2024-01-01",
                    "2025-12-31",
                    "-5000",
                    "1000",
                    "USD",
                    "peer_learning",
                    None,
                ),
            ],
        ),
        "declarations.csv": _csv_bytes(
            DECLARATION_COLUMNS,
            [
                (DEMO_IATI_ID, "yes", "yes", "yes", "yes", "yes", "yes", None, "no", "no"),
                ("XM-DEMO-9001-KE-99", "no", "no", "yes", "no", "no", "yes", None, "no", "no"),
            ],
        ),
        "results.csv": _csv_bytes(
            PARTNER_RESULT_COLUMNS,
            [
                (
                    DEMO_IATI_ID,
                    "R1",
                    "output",
                    "Budget officers trained",
                    "people",
                    "2022",
                    "0",
                    "2026",
                    "400",
                    "2025-01-01",
                    "2025-12-31",
                    "150",
                    "M&E",
                    "yes",
                    "yes",
                ),
            ],
        ),
    }
    path = folder / "partner-export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"export-2025/{name}", data)
    return path


def partner_json(folder: Path) -> Path:
    document: dict[str, Any] = {
        "metadata": {
            "partner_org_ref": "XM-DEMO-9001",
            "reporting_period": "2024-2025",
            "submitted_by": "Jo Partner",
        },
        "activities": [
            {
                "activity_id": "KE-WATER-07",
                "in_iati": False,
                "title": "Water utility twinning",
                "country_code": "KE",
                "start_date": "2024-02-01",
                "end_date": "2026-01-31",
                "budget": 750000,
                "disbursed": 120000.5,
                "currency": "EUR",
                "modality": "twinning",
                "priority_ids": ["KP1", "KP2"],
            },
            {
                "activity_id": "GH-HEALTH-08",
                "in_iati": False,
                "title": "Health data systems",
                "country_code": "GH",
                "start_date": "2025-01-01",
                "end_date": "2024-06-30",
                "budget": 100000,
                "disbursed": 0,
                "currency": "USD",
                "modality": "Technical assistance",
                "priority_ids": "GH-P2",
            },
        ],
        "declarations": [
            {
                "activity_id": "KE-WATER-07",
                "uses_country_pfm": True,
                "on_budget": False,
                "coordinated": True,
            },
        ],
        "results": [
            {
                "activity_id": "KE-WATER-07",
                "indicator_id": "W1",
                "level": "output",
                "indicator_title": "Utility staff trained",
                "target_year": 2026,
                "target_value": 80,
            },
            {
                "activity_id": "KE-WATER-99",
                "indicator_id": "W2",
                "level": "output",
                "indicator_title": "Meters installed",
                "target_year": 2026,
                "target_value": 1000,
            },
        ],
    }
    path = folder / "partner.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


# --- hostile files --------------------------------------------------------------------


def zip_bomb(folder: Path) -> Path:
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.csv", b"partner_org_ref\r\n" + b"0" * (8 * 1024 * 1024))
    return path


def zip_traversal(folder: Path) -> Path:
    path = folder / "traversal.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.csv", _csv_bytes(PARTNER_META, [("XM-DEMO-9001", "", "", "")]))
        archive.writestr("../../etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    return path


def xlsx_with_macros(folder: Path) -> Path:
    plain = clean_country_report_ghana(folder)
    path = folder / "report-with-macros.xlsx"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 fake VBA project")
    return path


def too_many_rows(folder: Path, rows: int = 60) -> Path:
    """A workbook with ``rows`` data rows: read it with ReadLimits(max_rows=50)."""
    return _write_xlsx(
        folder / "huge.xlsx",
        {
            "metadata": (COUNTRY_META, [("GH", "2025", "A", None)]),
            "cd_priorities": (
                PRIORITY_COLUMNS,
                [(f"P{i}", f"Priority {i}", None, None, None, 2024, 2025) for i in range(rows)],
            ),
        },
    )


def pdf_renamed(folder: Path) -> Path:
    path = folder / "report.xlsx"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n")
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.xlsx"
    path.write_bytes(b"")
    return path


def corrupt_xlsx(folder: Path) -> Path:
    path = folder / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("xl/workbook.xml", b"not xml at all <<<")
    return path


SAMPLES: dict[str, Callable[[Path], Path]] = {
    "clean_country_report_ghana": clean_country_report_ghana,
    "clean_partner_submission": clean_partner_submission,
    "messy_country_report_kenya": messy_country_report_kenya,
    "partner_csv_zip": partner_csv_zip,
    "partner_json": partner_json,
}
HOSTILE: dict[str, Callable[[Path], Path]] = {
    "zip_bomb": zip_bomb,
    "zip_traversal": zip_traversal,
    "xlsx_with_macros": xlsx_with_macros,
    "too_many_rows": too_many_rows,
    "pdf_renamed": pdf_renamed,
    "empty_file": empty_file,
    "corrupt_xlsx": corrupt_xlsx,
}

#: What the checker must find. ``rows``: sheet -> (rows read, rows with errors);
#: ``errors``: (sheet, row) -> error rules; ``warnings``: warning rules that must appear.
EXPECTED: dict[str, dict[str, Any]] = {
    "clean_country_report_ghana": {
        "type": "country_report",
        "format": "xlsx",
        "metadata": {"country_code": "GH", "reporting_period": "2025"},
        "rows": {"metadata": (1, 0), "cd_priorities": (3, 0), "results": (6, 0)},
        "errors": {},
        "warnings": set(),
        "normalisations": 0,
        "messages": [],
    },
    "clean_partner_submission": {
        "type": "partner_submission",
        "format": "xlsx",
        "metadata": {"partner_org_ref": "XM-DEMO-9001"},
        "rows": {
            "metadata": (1, 0),
            "activities": (4, 0),
            "declarations": (4, 0),
            "results": (4, 0),
        },
        "errors": {},
        "warnings": set(),
        "normalisations": 0,
        "messages": [],
    },
    "messy_country_report_kenya": {
        "type": "country_report",
        "format": "xlsx",
        "metadata": {
            "country_code": None,
            "submitted_by": "Wanjiru Kamau",
            "reporting_period": "2025",
        },
        "rows": {"metadata": (1, 1), "cd_priorities": (4, 2), "results": (5, 2)},
        "errors": {
            ("metadata", 2): {"invalid_country"},
            ("cd_priorities", 4): {"date_order"},
            ("cd_priorities", 6): {"duplicate_key"},
            ("results", 4): {"unknown_priority"},
            ("results", 5): {"ambiguous_date"},
        },
        "warnings": {
            "formula_text",
            "unknown_column",
            "normalised_header",
            "normalised_sheet_name",
            "normalised_number",
            "normalised_boolean",
            "normalised_excel_date",
            "normalised_whitespace",
            "normalised_code",
            "normalised_blank_rows",
        },
        "normalisations": 18,
        "messages": [
            "sheet metadata, row 2, column country_code: 'Keyna' is not an ISO country "
            "code — did you mean KE (Kenya)?",
            "sheet cd_priorities, row 6, column priority_id: priority_id 'KP2' appears twice "
            "(first on row 3); each must be unique on this sheet",
            "sheet results, row 4, column priority_id: priority 'KP9' is not on the "
            "`cd_priorities` sheet (known: KP1, KP2, KP3)",
            "'03/04/2025' is ambiguous: 3 April 2025 or 4 March 2025? Write dates as "
            "YYYY-MM-DD (2025-04-03 or 2025-03-04)",
            "looks like a spreadsheet formula; stored as text and published with a leading "
            "apostrophe in CSV",
            "'12,000' read as 12000",
            "Excel date number 45658 read as 2025-01-01",
            "column `Notes` is not part of the `cd_priorities` sheet",
        ],
    },
    "partner_csv_zip": {
        "type": "partner_submission",
        "format": "csv_zip",
        "metadata": {"partner_org_ref": "XM-DEMO-9001"},
        "rows": {
            "metadata": (1, 0),
            "activities": (3, 1),
            "declarations": (2, 0),
            "results": (1, 0),
        },
        "errors": {("activities", 4): {"negative_amount"}},
        "warnings": {"not_in_iati", "normalised_country_name", "normalised_code"},
        "normalisations": 2,
        "messages": [
            "sheet activities, row 3, column activity_id: 'XM-DEMO-9001-KE-99' is marked as "
            "published in IATI but is not (yet) in the IATI data",
            "country 'Kenya' read as its code KE",
            "budget -5000 is negative",
        ],
    },
    "partner_json": {
        "type": "partner_submission",
        "format": "json",
        "metadata": {"partner_org_ref": "XM-DEMO-9001", "contact_email": None},
        "rows": {
            "metadata": (1, 0),
            "activities": (2, 1),
            "declarations": (1, 0),
            "results": (2, 1),
        },
        "errors": {("activities", 2): {"date_order"}, ("results", 2): {"unknown_activity"}},
        "warnings": {"normalised_list", "normalised_code"},
        "normalisations": 2,
        "messages": [
            "results[1].activity_id: activity 'KE-WATER-99' is not in the array "
            '"activities" (known: KE-WATER-07, GH-HEALTH-08) — did you mean KE-WATER-07?',
            "activities[1].end_date: the activity ends before it starts",
        ],
    },
    "zip_bomb": {"rejected": "zip_bomb", "message": "possible ZIP bomb"},
    "zip_traversal": {"rejected": "unsafe_path", "message": "'../../etc/passwd'"},
    "xlsx_with_macros": {"rejected": "macros", "message": "contains macros"},
    "too_many_rows": {"rejected": "too_many_rows", "message": "sheet 'cd_priorities'"},
    "pdf_renamed": {"rejected": "unknown_format", "message": "a PDF file, not a submission"},
    "empty_file": {"rejected": "empty", "message": "the file is empty"},
    "corrupt_xlsx": {"rejected": "corrupt", "message": "damaged Excel workbook"},
}
