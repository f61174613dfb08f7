"""Importing a deployable loads what its routes need and no more: no SDK that loads on first use
(boto3, curl_cffi and the Redis clients: DESIGN rule 10) and no other deployable. Checked in fresh
interpreters; the import-linter contract "Deployables are independent" checks the same statically."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench.coldstart import LAZY_SDKS, deployables

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", deployables())
def test_importing_a_deployable_loads_no_lazy_sdk_and_no_other_deployable(name):
    others = [f"functions.{other}" for other in deployables() if other != name]
    code = (
        f"import sys, functions.{name}\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({LAZY_SDKS!r}))))\n"
        f"print(','.join(sorted(set(sys.modules) & set({others!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    sdks, deployed = result.stdout.split("\n")[:2]
    assert sdks.strip() == "", f"functions.{name} imports {sdks.strip()} at import"
    assert deployed.strip() == "", f"functions.{name} imports the deployables {deployed.strip()}"


def test_the_independence_contract_names_every_deployable():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    independent = next(c for c in contracts if c["type"] == "independence")
    assert sorted(independent["modules"]) == [f"functions.{name}" for name in deployables()]
