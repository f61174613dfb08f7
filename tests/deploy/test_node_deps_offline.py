"""`make node-deps` (and so `make package-aws`) needs the npm registry once: later runs, even after a
checkout touched package.json, need no network. Run on a copy of the Makefile with an `npm` that
fails, so any attempt to download shows."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_make(folder: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\necho 'npm was called' >&2\nexit 7\n")
    npm.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["make", "-s", "node-deps"], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )


def test_node_deps_is_offline_once_installed_and_says_what_it_downloads(tmp_path):
    for name in ("Makefile", "package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "node_modules").mkdir()
    stamp = tmp_path / "node_modules" / ".installed"
    stamp.write_text(hashlib.sha256((tmp_path / "package-lock.json").read_bytes()).hexdigest() + "\n")
    later = time.time() + 5
    os.utime(tmp_path / "package.json", (later, later))  # a checkout touched it; the lock is unchanged

    done = run_make(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "npm was called" not in done.stderr

    stamp.write_text("an older lock\n")  # the lock changed: npm must run, and it says why first
    os.utime(tmp_path / "package.json", (later + 5, later + 5))
    needed = run_make(tmp_path)
    pins = json.loads((tmp_path / "package.json").read_text())["devDependencies"]
    assert needed.returncode != 0 and "npm was called" in needed.stderr
    assert "from the npm registry" in needed.stderr and f"osls {pins['osls']}" in needed.stderr
