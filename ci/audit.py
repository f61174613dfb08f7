"""`make test`'s dependency audit: pip-audit over the installed environment, offline-tolerant.

Two advisory sources, in order: OSV (pip-audit's default) and PyPI's JSON API (`-s pypi`, the
vulnerabilities PyPI publishes per release). A source that cannot be reached is skipped with a
message; a source that does not know a version (a private mirror) audits nothing for it, which
is said too. A known vulnerability fails the run. Usage: `python -m ci.audit`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

SOURCES = ("osv", "pypi")
TIMEOUT = 180


def run_source(source: str) -> dict[str, Any] | str:
    """pip-audit's JSON report from `source`, or why it could not be had."""
    command = [sys.executable, "-m", "pip_audit", "-s", source, "-f", "json", "--progress-spinner", "off"]
    command.append("--skip-editable")  # grokgate itself is not on PyPI
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)  # noqa: S603 (our argv)
    except subprocess.TimeoutExpired:
        return f"no answer within {TIMEOUT} s"
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return last[:200]
    return report


def summarize(report: dict[str, Any]) -> tuple[list[str], int, int]:
    """(the vulnerabilities found, dependencies audited, dependencies the source did not know)."""
    found: list[str] = []
    audited = unknown = 0
    for dep in report.get("dependencies", []):
        if dep.get("skip_reason"):
            unknown += 1
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            found.append(f"{dep['name']} {dep.get('version', '?')}: {vuln.get('id')} (fixed in {fixes})")
    return found, audited, unknown


def main() -> int:
    any_audited = False
    for source in SOURCES:
        report = run_source(source)
        if isinstance(report, str):
            print(f"audit: {source}: skipped, the advisory source cannot be reached ({report})")
            continue
        found, audited, unknown = summarize(report)
        if found:
            print(f"audit: {source}: {len(found)} known vulnerabilit(ies):")
            for line in found:
                print(f"  {line}")
            return 1
        note = f", {unknown} not known to the source (not audited)" if unknown else ""
        print(f"audit: {source}: {audited} dependencies audited, no known vulnerability{note}")
        any_audited = any_audited or audited > 0
    if not any_audited:
        print("audit: skipped: no advisory source could audit these dependencies here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
