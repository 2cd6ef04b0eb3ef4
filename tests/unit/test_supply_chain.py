"""Dependencies pinned with hashes, and the vulnerability audit's verdicts."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import audit, lock

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[([^\]]+)\])?==(\S+)")


def _lock_entries() -> dict[str, tuple[set[str], str, list[str]]]:
    """Canonical name → (extras, version, hashes) of requirements.lock."""
    entries: dict[str, tuple[set[str], str, list[str]]] = {}
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _PIN.match(line)
        assert match, f"requirements.lock: not a pinned requirement: {line[:80]!r}"
        extras = set(match.group(2).split(",")) if match.group(2) else set()
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})\b", line)
        entries[canonicalize_name(match.group(1))] = (extras, match.group(3), hashes)
    return entries


def test_every_pin_has_a_hash_and_no_line_is_unpinned() -> None:
    entries = _lock_entries()
    assert len(entries) > 100
    assert [name for name, (_, _, hashes) in entries.items() if not hashes] == []


def test_every_project_requirement_is_pinned_within_its_range_with_its_extras() -> None:
    entries = _lock_entries()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [
        line for extra in project["optional-dependencies"].values() for line in extra
    ]
    for line in listed:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} is a dependency but not in requirements.lock"
        extras, version, _ = entries[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {requirement.name}=={version}, outside {requirement.specifier}"
        )
        assert requirement.extras <= extras, f"{line}: the lock lacks the extras"


def test_dagster_integrations_match_the_dagster_release() -> None:
    """dagster 1.13.27 goes with dagster-postgres 0.29.27 and dagster-graphql 1.13.27."""
    entries = _lock_entries()
    major, minor, patch = entries["dagster"][1].split(".")
    assert major == "1"
    for name, (_, version, _) in entries.items():
        if name.startswith("dagster-"):
            assert version in (f"1.{minor}.{patch}", f"0.{int(minor) + 16}.{patch}"), (
                f"{name}=={version} next to dagster=={major}.{minor}.{patch}"
            )


def test_the_environment_is_the_lock() -> None:
    """What is installed is what is pinned: a package added without re-locking fails here."""
    entries = _lock_entries()
    pins = lock.installed()
    drift = {
        name: (version, entries.get(canonicalize_name(name), (set(), None, []))[1])
        for name, version in pins.items()
        if entries.get(canonicalize_name(name), (set(), None, []))[1] != version
    }
    assert drift == {}, "installed vs locked; run tools/lock.py"
    extras = lock.requested_extras(pins)
    assert extras.get("gql") == {"requests"}
    for name, asked in extras.items():
        assert asked <= entries[name][0], f"{name}: extras {asked} asked but not locked"


def test_lock_lines_are_what_pip_reads() -> None:
    text = lock.render(
        {"gql": "4.0.0", "six": "1.17.0"},
        {"gql": ["a" * 64], "six": ["b" * 64, "c" * 64]},
        {"gql": {"requests"}},
    )
    assert text.endswith(
        "gql[requests]==4.0.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
        "six==1.17.0 \\\n    --hash=sha256:"
        + "b" * 64
        + " \\\n    --hash=sha256:"
        + "c" * 64
        + "\n"
    )
    assert metadata.version("packaging")


_REPORT = {
    "dependencies": [
        {"name": "requests", "version": "2.0.0", "vulns": [
            {"id": "PYSEC-2023-74", "aliases": ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"],
             "fix_versions": ["2.31.0"]},
        ]},
        {"name": "lxml", "version": "6.1.3", "vulns": []},
        {"name": "shady", "version": "0.1", "vulns": [{"id": "GHSA-xxxx", "fix_versions": []}]},
        {"name": "private-pkg",
         "skip_reason": "Dependency not found on PyPI and could not be audited: private-pkg (1.0)"},
    ]
}  # fmt: skip


def test_a_known_vulnerability_fails_and_names_package_version_identifier_and_fix() -> None:
    lines, status = audit.summary(audit.parse(_REPORT))
    assert status == 1
    assert "pip-audit: requests 2.0.0 has PYSEC-2023-74 (fixed in 2.31.0)" in lines
    assert "pip-audit: shady 0.1 has GHSA-xxxx (no fixed release yet)" in lines
    assert lines[0].startswith("pip-audit: 1 of 4 packages could not be audited")
    assert "the other 3 were" in lines[0]


def test_an_ignored_identifier_or_alias_passes(tmp_path: Path) -> None:
    ignore = tmp_path / "audit-ignore.txt"
    ignore.write_text("# why\nCVE-2023-32681  # we never send Proxy-Authorization\nGHSA-xxxx\n")
    lines, status = audit.summary(audit.parse(_REPORT, audit.read_ignored(ignore)))
    assert status == 0
    assert lines[-1] == "pip-audit: no known vulnerabilities in the 3 audited"


def test_unreachable_advisories_pass_but_never_claim_a_clean_audit() -> None:
    report = {
        "dependencies": [
            {
                "name": n,
                "skip_reason": f"Dependency not found on PyPI and could not be audited: {n} (1)",
            }
            for n in ("a", "b")
        ]
    }
    lines, status = audit.summary(audit.parse(report))
    assert status == 0
    assert len(lines) == 1
    assert "none of the 2 packages was audited" in lines[0]
    assert "no known vulnerabilities" not in lines[0]


def test_a_lock_without_hashes_fails_the_audit_with_pip_audits_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unhashed = tmp_path / "requirements.lock"
    unhashed.write_text("requests==2.0.0\n")
    assert audit.main(["--lock", str(unhashed), "--timeout", "5"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("pip-audit could not run; nothing audited:")
    assert "requests==2.0.0 does not contain a hash" in out
