"""Known vulnerabilities in the pinned dependencies (``make audit``, part of ``make test``).

    .venv/bin/python tools/audit.py [--lock requirements.lock] [--timeout 20]

Runs ``pip-audit`` on ``requirements.lock`` (every package pinned with its
hashes, nothing installed) against PyPI's advisory data and prints one line
per package it could not audit and per known vulnerability.

* A known vulnerability fails the command (exit 1), unless its identifier is
  listed, with the reason it does not apply, in ``config/audit-ignore.txt``.
* Offline-tolerant: when the advisory database cannot be reached (no network,
  a registry mirror without PyPI's JSON API, a timeout) the command says so,
  names how many packages were not audited and why, and passes. It never
  reports "no known vulnerabilities" for packages it could not check.
* pip-audit failing for any other reason (an unhashed or unreadable lock)
  fails the command (exit 2) with pip-audit's own message.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IGNORE = ROOT / "config" / "audit-ignore.txt"
#: What pip-audit's last error line says when the network, not the lock, failed.
_NETWORK = re.compile(
    r"ConnectionError|ConnectTimeout|ReadTimeout|Timeout|NameResolution|Max retries|"
    r"Temporary failure in name resolution|Network is unreachable|SSLError|ProxyError",
)


@dataclass
class Audit:
    """What one run of pip-audit found: audited, skipped (with why), vulnerable."""

    audited: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    vulnerable: list[tuple[str, str, str, list[str]]] = field(default_factory=list)


def read_ignored(path: Path = IGNORE) -> set[str]:
    """Vulnerability identifiers of ``path``: the first word of each non-comment line."""
    if not path.exists():
        return set()
    ignored = set()
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            ignored.add(words[0])
    return ignored


def parse(report: dict[str, Any], ignored: Iterable[str] = ()) -> Audit:
    """The findings of pip-audit's JSON report, minus the ignored identifiers."""
    skip = set(ignored)
    audit = Audit()
    for dependency in report.get("dependencies", []):
        name = str(dependency.get("name", "?"))
        if "skip_reason" in dependency:
            audit.skipped[name] = str(dependency["skip_reason"])
            continue
        audit.audited.append(name)
        for vuln in dependency.get("vulns", []):
            ids = {vuln.get("id", "?"), *vuln.get("aliases", [])}
            if ids & skip:
                continue
            audit.vulnerable.append(
                (
                    name,
                    str(dependency.get("version", "?")),
                    str(vuln.get("id", "?")),
                    [str(v) for v in vuln.get("fix_versions", [])],
                )
            )
    return audit


def summary(audit: Audit) -> tuple[list[str], int]:
    """Lines to print and the exit status."""
    lines = []
    total = len(audit.audited) + len(audit.skipped)
    if audit.skipped:
        why = Counter(_reason_kind(reason) for reason in audit.skipped.values())
        reasons = "; ".join(f"{kind}: {count}" for kind, count in why.most_common())
        if audit.audited:
            lines.append(
                f"pip-audit: {len(audit.skipped)} of {total} packages could not be audited "
                f"({reasons}); the other {len(audit.audited)} were"
            )
        else:
            lines.append(
                f"pip-audit: the advisory database could not be used, none of the {total} "
                f"packages was audited ({reasons}); run `make audit` where PyPI's JSON API "
                "is reachable"
            )
    for name, version, ident, fixes in audit.vulnerable:
        fix = f"fixed in {', '.join(fixes)}" if fixes else "no fixed release yet"
        lines.append(f"pip-audit: {name} {version} has {ident} ({fix})")
    if audit.vulnerable:
        lines.append(
            f"pip-audit: {len(audit.vulnerable)} known vulnerabilities; upgrade (tools/lock.py) "
            "or list the identifier with the reason it does not apply in "
            f"{IGNORE.relative_to(ROOT)}"
        )
        return lines, 1
    if audit.audited:
        lines.append(f"pip-audit: no known vulnerabilities in the {len(audit.audited)} audited")
    return lines, 0


def _reason_kind(reason: str) -> str:
    if "not found on PyPI" in reason:
        return "the index answered 'not found' (a mirror or proxy without PyPI's JSON API?)"
    return reason.split(":", 1)[0]


def run_pip_audit(lock: Path, timeout: int) -> dict[str, Any] | str:
    """pip-audit's JSON report, or why it could not run to the end."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        str(lock),
        "--disable-pip",
        "--require-hashes",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        str(timeout),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = [line for line in done.stderr.splitlines() if line.strip()]
        return last[-1] if last else f"pip-audit exited with status {done.returncode}"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--timeout", type=int, default=20)
    args = parser.parse_args(argv)
    report = run_pip_audit(args.lock, args.timeout)
    if isinstance(report, str):
        if _NETWORK.search(report):
            print(
                f"pip-audit: the advisory database could not be reached; nothing audited ({report})"
            )
            return 0
        print(f"pip-audit could not run; nothing audited: {report}")
        return 2
    lines, status = summary(parse(report, read_ignored()))
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
