"""Bring the ``--help`` texts of docs/command-line.md up to date with the command line.

    .venv/bin/python tools/cli_reference.py          # rewrite the blocks that changed
    .venv/bin/python tools/cli_reference.py --check  # exit 1 when one is stale

Every block of the page that follows a ``<!-- help: COMMAND -->`` line (``COMMAND`` empty
for ``cdcompact`` itself, else e.g. ``iati harmonise``) is the output of ``cdcompact
COMMAND --help`` at a width of 88 columns; tests/unit/test_cli.py checks that they are,
and that every command has one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from pipelines.cli import build_parser

PAGE = Path(__file__).resolve().parents[1] / "docs" / "command-line.md"
WIDTH = 88
BLOCK = re.compile(r"(<!-- help: ?(?P<command>[a-z ]*?) ?-->\n```text\n)(?P<text>.*?)(```)", re.S)


def commands(
    parser: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand, with its parser, ``cdcompact`` itself first."""
    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def help_text(parser: argparse.ArgumentParser) -> str:
    """``--help`` as a terminal of :data:`WIDTH` columns shows it."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH + 2)  # argparse leaves two columns free
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            parser.print_help()
        return out.getvalue()
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def documented(page: str) -> dict[str, str]:
    """The help texts on the page, by command (``""`` for cdcompact itself)."""
    return {m["command"]: m["text"] for m in BLOCK.finditer(page)}


def updated(page: str) -> str:
    """The page with every help block as the command line prints it."""
    texts = {" ".join(path): help_text(parser) for path, parser in commands()}

    def replace(match: re.Match[str]) -> str:
        text = texts.get(match["command"], match["text"])
        return match.group(1) + text + match.group(4)

    return BLOCK.sub(replace, page)


def main(argv: list[str]) -> int:
    page = PAGE.read_text(encoding="utf-8")
    new = updated(page)
    if "--check" in argv:
        if new != page:
            print(f"{PAGE} is stale: run tools/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    if new != page:
        PAGE.write_text(new, encoding="utf-8")
        print(f"{PAGE} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
