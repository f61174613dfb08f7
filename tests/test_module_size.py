"""Modules stay small enough to read in one sitting: past 500 lines a module is split along a seam.
The simulator (`infra/sim/`) is a test fixture of its own and exempt."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 500


def _sources() -> list[str]:
    """The tracked Python files; outside a git checkout, our packages' files."""
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout.strip():
        return listed.stdout.split()
    folders = ("core", "infra", "functions", "tests", "bench", "api", "ci")
    return [
        str(p.relative_to(ROOT))
        for f in folders
        for p in (ROOT / f).rglob("*.py")
        if "node_modules" not in p.parts
    ]


def test_no_module_outside_the_simulator_is_over_500_lines() -> None:
    tracked = _sources()
    assert tracked, "found no Python files"
    over = {
        path: lines
        for path in tracked
        if not path.startswith("infra/sim/")
        and (ROOT / path).is_file()
        and (lines := len((ROOT / path).read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not over, f"modules over {LIMIT} lines: {over}"
