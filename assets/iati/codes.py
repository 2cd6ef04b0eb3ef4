"""IATI code translations between standard versions (1.0x letter codes to 2.0x)."""

from __future__ import annotations

#: 1.0x TransactionType letter codes -> 2.0x numeric codes.
TRANSACTION_TYPE_1X: dict[str, str] = {
    "IF": "1",
    "C": "2",
    "D": "3",
    "E": "4",
    "IR": "5",
    "LR": "6",
    "R": "7",
    "QP": "8",
    "QS": "9",
    "CG": "10",
}

#: Transaction types that are money coming in to the reporting organisation.
INCOMING_TRANSACTION_TYPES = frozenset({"1", "11", "13"})

#: 1.0x ActivityDateType -> 2.0x codes
#: (1 start planned, 2 start actual, 3 end planned, 4 end actual).
ACTIVITY_DATE_TYPE_1X: dict[str, str] = {
    "start-planned": "1",
    "start-actual": "2",
    "end-planned": "3",
    "end-actual": "4",
}

#: 1.0x sector Vocabulary -> 2.0x SectorVocabulary codes; RO = reporting organisation.
SECTOR_VOCABULARY_1X: dict[str, str] = {
    "DAC": "1",
    "DAC-3": "2",
    "COFOG": "3",
    "NACE": "4",
    "NTEE": "5",
    "ADT": "6",
    "RO": "99",
    "RO2": "98",
}

#: 1.0x OrganisationRole names -> 2.0x codes (case-insensitive on input).
ORGANISATION_ROLE_1X: dict[str, str] = {
    "funding": "1",
    "accountable": "2",
    "extending": "3",
    "implementing": "4",
}

#: IATI ResultType -> the schema's result level.
RESULT_LEVEL: dict[str, str] = {
    "1": "output",
    "2": "intermediate_outcome",
    "3": "impact",
    "9": "other",
    "output": "output",
    "outcome": "intermediate_outcome",
    "impact": "impact",
}

#: Values IATI uses for true in boolean attributes.
TRUE_VALUES = frozenset({"1", "true"})
FALSE_VALUES = frozenset({"0", "false"})


def transaction_type(code: str | None) -> str | None:
    """A 2.0x transaction type code; 1.0x letter codes are translated."""
    if code is None:
        return None
    code = code.strip()
    return TRANSACTION_TYPE_1X.get(code.upper(), code) if code else None


def sector_vocabulary(code: str | None) -> str:
    """A 2.0x sector vocabulary; absent means DAC 5-digit (1 in 2.0x, DAC in 1.0x)."""
    if code is None or not code.strip():
        return "1"
    code = code.strip()
    if code.upper() in SECTOR_VOCABULARY_1X:
        return SECTOR_VOCABULARY_1X[code.upper()]
    return code


def activity_date_type(code: str | None) -> str | None:
    if code is None:
        return None
    code = code.strip()
    return ACTIVITY_DATE_TYPE_1X.get(code.lower(), code)


def organisation_role(code: str | None) -> str | None:
    if code is None or not code.strip():
        return None
    code = code.strip()
    return ORGANISATION_ROLE_1X.get(code.lower(), code)


def boolean(value: str | None) -> bool | None:
    """IATI xsd:boolean (``1``/``0``/``true``/``false``); anything else is unknown."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    return None
