"""Dependencies point one way: core ← stages ← expectations ← publish ← pipelines.

- core: settings, the table schemas and Parquet store, DuckDB connections, storage
  targets, hashing, the process pool (:data:`CORE`);
- stages: the rest of ``assets/`` (fetch, iati, submissions, harmonise, metrics);
- ``expectations/`` computes checks and the quality report's figures;
- ``publish/`` writes releases and pages;
- ``pipelines/`` holds all Dagster code and the command line.

Every import counts, at the top of a module or inside a function, except those under
``if TYPE_CHECKING:`` (they never run). Dagster and its integration libraries are
imported by ``pipelines/`` alone. The test lists every import that breaks a rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PACKAGES = ("assets", "expectations", "publish", "pipelines")
LAYERS = {"core": 0, "stages": 1, "expectations": 2, "publish": 3, "pipelines": 4}
#: The core modules (and packages: every module under them).
CORE = (
    "assets",
    "assets.settings",
    "assets.hashing",
    "assets.warehouse",
    "assets.pool",
    "assets.storage",
    "assets.harmonise.schema",
    "assets.harmonise.store",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def layer(module: str) -> str:
    top = module.split(".")[0]
    if top != "assets":
        return top
    for core in CORE:
        if module == core or (core != "assets" and module.startswith(core + ".")):
            return "core"
    return "stages"


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import that runs, wherever it stands in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.body:
                for inner in ast.walk(child):
                    skipped.add(id(inner))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # `from publish import headline` imports a module
                yield node.lineno, f"{node.module}.{alias.name}"


def project_module(name: str, known: dict[str, Path]) -> str | None:
    return name if name in known else None


def edges() -> Iterator[tuple[str, int, str]]:
    known = modules()
    for module, path in known.items():
        for line, name in imports(path):
            target = project_module(name, known)
            if target is not None and target != module:
                yield module, line, target


def test_imports_point_from_pipelines_down_to_the_core() -> None:
    known = modules()
    wrong = [
        f"{known[module].relative_to(PROJECT_ROOT)}:{line}: {module} ({layer(module)}) "
        f"imports {target} ({layer(target)})"
        for module, line, target in edges()
        if LAYERS[layer(target)] > LAYERS[layer(module)]
    ]
    assert not wrong, "imports against the direction:\n" + "\n".join(wrong)


def test_only_pipelines_import_dagster() -> None:
    wrong = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}: {module} imports {name}"
        for module, path in modules().items()
        if layer(module) != "pipelines"
        for line, name in imports(path)
        if name.split(".")[0] == "dagster" or name.startswith("dagster_")
    ]
    assert not wrong, "Dagster outside pipelines/:\n" + "\n".join(wrong)


def test_no_module_imports_itself_through_others() -> None:
    graph: dict[str, set[str]] = {}
    for module, _line, target in edges():
        graph.setdefault(module, set()).add(target)
    cycles: set[tuple[str, ...]] = set()
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            cycle = trail[trail.index(node) :]
            first = cycle.index(min(cycle))  # each cycle once, from its smallest module
            cycles.add((*cycle[first:], *cycle[:first], min(cycle)))
            return
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, [*trail, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    shown = sorted(" -> ".join(cycle) for cycle in cycles)
    assert not shown, "import cycles:\n" + "\n".join(shown)


def test_the_rules_see_what_they_judge() -> None:
    """The scan finds the imports it must judge: a test that found nothing could not fail."""
    known = modules()
    assert layer("assets.storage.s3") == "core"
    assert layer("assets.iati.extract") == "stages"
    assert layer("publish.quality_html") == "publish"
    found = {(module, target) for module, _line, target in edges()}
    assert ("pipelines.definitions", "pipelines.iati") in found
    assert ("publish.quality", "publish.quality_html") in found
    assert ("pipelines.nightly", "publish.summary") in found  # inside a function or not
    assert {name for _line, name in imports(known["pipelines.iati"])} >= {"dagster"}
    # a TYPE_CHECKING import does not run, so it is not judged
    rawstore = {name for _line, name in imports(known["assets.fetch.rawstore"])}
    assert "assets.fetch.sources" not in rawstore
