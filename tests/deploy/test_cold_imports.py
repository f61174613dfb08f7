"""Importing a deployable loads no SDK its routes don't need at import: boto3, curl_cffi and the
Redis clients load on first use (DESIGN rule 10). Checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.coldstart import LAZY_SDKS, deployables

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", deployables())
def test_importing_a_deployable_loads_no_lazy_sdk(name):
    code = (
        f"import sys, functions.{name}\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({LAZY_SDKS!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"functions.{name} imports {result.stdout.strip()} at import"
