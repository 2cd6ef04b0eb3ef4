"""All HTML comes from the templates in ``publish/templates/``: no Python module of the
project writes markup. The test reads every string literal of every module but the
docstrings (f-strings by their literal parts) and lists those holding an HTML or SVG
tag: an opening one with attributes or ``>``, or a closing one.

A placeholder such as ``folder for <table>.parquet`` is not markup: an opening tag
directly followed by ``.``, or glued to a word (``c_<table>``), does not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PACKAGES = ("assets", "expectations", "publish", "pipelines", "tools")
#: HTML and SVG elements the pages use; a string naming one as a tag is markup.
ELEMENTS = (
    "a abbr article aside b body br caption circle code col colgroup dd details div dl dt "
    "em fieldset figcaption figure footer form g h1 h2 h3 h4 h5 h6 head header html i img "
    "input label legend li line link main meta nav ol option p path polygon polyline pre "
    "rect script section select small span strong style sub summary sup svg table tbody "
    "td text textarea tfoot th thead time title tr tspan ul"
)
NAMES = ELEMENTS.replace(" ", "|")
TAG = re.compile(rf"</(?:{NAMES})>|(?<!\w)<(?:{NAMES})(?:\s+[a-z-]+(?:=|\s|>)|\s*/?>(?!\.))")


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of ``tree``'s module, classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def markup_in(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            match = TAG.search(node.value)
            if match:
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: {match.group()}")
    return found


def test_the_pattern_finds_markup_and_leaves_placeholders_alone() -> None:
    assert TAG.search('<a href="x">')
    assert TAG.search("</td>")
    assert TAG.search("<tr>")
    assert TAG.search('<svg xmlns="http://www.w3.org/2000/svg"')
    assert not TAG.search("schema/<table>.json")
    assert not TAG.search("folder for <table>.parquet")
    assert not TAG.search("a < b and c > d")
    assert not TAG.search("relations ``f<i>_<table>``")


def test_no_python_module_writes_html() -> None:
    found = [
        line
        for package in PACKAGES
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        for line in markup_in(path)
    ]
    assert found == [], "markup in Python (it belongs in publish/templates/):\n" + "\n".join(found)
