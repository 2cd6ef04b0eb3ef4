"""Capacity-development classification from the rules in config/compact.yaml.

An activity is CD when any rule matches; ``cd_basis`` lists every rule that
matched so a reader can see why, and ``modality`` says what kind of CD it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from assets.settings import CdRules

#: Rule names in the order they appear in ``cd_basis``.
RULE_ORDER = ("aid_type_technical_cooperation", "ftc_flag", "cd_sector", "cd_keyword")


#: What :func:`normalise_text` reads as a separator besides white space: hyphens, dashes,
#: underscores and slashes.
_SEPARATOR_CHARS = "-\u2010\u2011\u2013\u2014_/"
#: ``str.translate`` table of ASCII text: its separators made spaces.
_ASCII_SEPARATORS = str.maketrans({c: " " for c in _SEPARATOR_CHARS if c.isascii()})


class _Folding(dict[int, int | str | None]):
    """``str.translate`` table that drops combining marks and makes separators spaces: each
    code point is looked up in the Unicode database once, then translate runs in C."""

    def __missing__(self, code: int) -> int | str | None:
        char = chr(code)
        kept: int | str | None = code
        if char in _SEPARATOR_CHARS:
            kept = " "
        elif unicodedata.combining(char):
            kept = None
        self[code] = kept
        return kept


_FOLD = _Folding()


def normalise_text(text: str) -> str:
    """Casefolded, accents removed, hyphens and runs of white space as one space.

    (Separators are made spaces first, then white space runs are split on: the same as
    replacing each run of white space and separators by one space and stripping the ends,
    ``\\s`` and ``str.split`` agreeing on what white space is.)
    """
    folded = text.casefold()
    if folded.isascii():
        folded = folded.translate(_ASCII_SEPARATORS)
    else:
        folded = unicodedata.normalize("NFKD", folded).translate(_FOLD)
    return " ".join(folded.split())


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    cleaned = sorted({normalise_text(p) for p in phrases if p.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in cleaned) + r")(?!\w)")


@dataclass(frozen=True)
class ActivityEvidence:
    """What the classifier looks at for one activity."""

    aid_types: frozenset[str]  # activity default and transaction aid types (DAC vocabulary)
    ftc_flag: bool  # crs-add/other-flags code 1
    dac_sectors: frozenset[str]  # DAC 5-digit codes, activity and transaction level
    texts: tuple[str, ...]  # every title and description narrative, all languages


@dataclass(frozen=True)
class Classification:
    is_cd: bool
    basis: tuple[str, ...]
    modality: str | None

    @property
    def cd_basis(self) -> str | None:
        return ";".join(self.basis) if self.basis else None


class CdClassifier:
    """Applies :class:`CdRules`; compile once, classify many activities."""

    def __init__(self, rules: CdRules) -> None:
        self.rules = rules

    @cached_property
    def _keywords(self) -> re.Pattern[str] | None:
        return _phrase_pattern(p for phrases in self.rules.keywords.values() for p in phrases)

    @cached_property
    def _modalities(self) -> list[tuple[str, re.Pattern[str]]]:
        compiled = []
        for modality, phrases in self.rules.modalities.items():
            pattern = _phrase_pattern(phrases)
            if pattern is not None:
                compiled.append((modality, pattern))
        return compiled

    def is_cd_sector(self, vocabulary: str | None, code: str | None) -> bool:
        return vocabulary == "1" and code is not None and code in self.rules.cd_sectors

    def classify(self, evidence: ActivityEvidence) -> Classification:
        basis: list[str] = []
        technical_cooperation = bool(
            evidence.aid_types & self.rules.technical_cooperation_aid_types
        )
        if technical_cooperation:
            basis.append("aid_type_technical_cooperation")
        if self.rules.ftc_flag and evidence.ftc_flag:
            basis.append("ftc_flag")
        cd_sectors = evidence.dac_sectors & self.rules.cd_sectors
        if cd_sectors:
            basis.append("cd_sector")
        text = normalise_text(" \n ".join(evidence.texts))
        if self._keywords is not None and self._keywords.search(text):
            basis.append("cd_keyword")
        if not basis:
            return Classification(False, (), None)
        return Classification(True, tuple(basis), self._modality(text, evidence, cd_sectors))

    def _modality(
        self, text: str, evidence: ActivityEvidence, cd_sectors: set[str] | frozenset[str]
    ) -> str:
        for modality, pattern in self._modalities:
            if pattern.search(text):
                return modality
        if "D02" in evidence.aid_types or evidence.ftc_flag:
            return "technical_assistance"
        if any(code.endswith("81") or code in {"11330", "11430"} for code in cd_sectors):
            return "training"
        return "other"
