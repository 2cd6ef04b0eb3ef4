"""SQL helpers of the DuckDB stages: functions every transform connection has.

Messages in ``quarantine`` were always written by Python (``f"{value!r}"``,
``f"{x:g}"``, ``str(x)`` of a float, ``f"{date:%Y-%m}"``), and published tables
keep them exactly. DuckDB formats numbers and quotes text its own way, so these
few formats are Python functions registered in the connection: they run only on
the rows that become quarantine messages, never on every row.

The macros reproduce, in SQL, orderings and tests the pandas code had:
``natural_key`` is the sort key of ``source_ref`` (numbers compared as numbers).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import duckdb
from duckdb import func

#: What Python's ``str.strip()`` removes (every character for which ``str.isspace()``),
#: for SQL's ``trim``: codes and references are compared as Python strips them.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: The same as an RE2 character class (DuckDB's ``trim`` with a set of characters is slow).
SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
_STRIPPED = "'^" + SPACE + "+|" + SPACE + "+$'"


def py_strip(column: str) -> str:
    """SQL: the text of ``column`` as Python's ``str.strip()`` leaves it."""
    return f"regexp_replace(CAST({column} AS VARCHAR), {_STRIPPED}, '', 'g')"


#: Characters RE2 treats as special, escaped by :func:`re2_escape`.
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")
#: Python's ``\w`` (str.isalnum() or "_") as an RE2 class.
RE2_WORD = r"[\p{L}\p{N}_]"


def re2_escape(text: str) -> str:
    """``text`` as a literal in an RE2 pattern (``re.escape`` escapes characters RE2 refuses
    to see escaped, such as a space)."""
    return _RE2_SPECIAL.sub(r"\\\1", text)


def _py_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _py_g(value: float | None) -> str | None:
    return None if value is None else format(value, "g")


def _py_repr(value: str | None) -> str | None:
    return None if value is None else repr(value)


def _py_month(value: dt.date | None) -> str | None:
    return None if value is None else f"{value:%Y-%m}"


def register(con: duckdb.DuckDBPyConnection) -> None:
    """The Python formats and SQL macros in ``con`` (idempotent)."""
    functions: tuple[tuple[str, Any, list[Any]], ...] = (
        ("py_str", _py_str, ["DOUBLE"]),
        ("py_g", _py_g, ["DOUBLE"]),
        ("py_repr", _py_repr, ["VARCHAR"]),
        ("py_month", _py_month, ["DATE"]),
    )
    try:  # registered already on this connection?
        con.execute("SELECT py_month(NULL)").fetchall()
    except duckdb.CatalogException:
        for name, function, arguments in functions:
            con.create_function(
                name, function, arguments, "VARCHAR", null_handling=func.SPECIAL, side_effects=False
            )
    # ``source_ref`` sorted as pandas sorted it: every run of digits padded to 8 (zfill).
    con.execute(
        r"""
        CREATE OR REPLACE MACRO natural_key(s) AS array_to_string(
            list_transform(
                regexp_extract_all(s, '\p{Nd}+|\P{Nd}+'),
                p -> CASE
                    WHEN regexp_full_match(p, '\p{Nd}+') AND length(p) < 8
                    THEN repeat('0', 8 - length(p)) || p
                    ELSE p
                END
            ),
            ''
        )
        """
    )
