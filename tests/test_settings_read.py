"""Every setting does something: each field of `Settings` is read somewhere outside the settings
module and the README table's generator, directly (`settings.field`) or through a `Settings`
method that reads it and is itself called elsewhere (`egress_proxies()` for the proxy fields)."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OWN = ("core/settings", "functions/settings_doc.py")


def _tracked() -> dict[str, str]:
    names = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {name: (ROOT / name).read_text() for name in names if (ROOT / name).is_file()}


def _methods_reading(sources: dict[str, str]) -> dict[str, set[str]]:
    """Field -> the names of the settings module's methods whose body reads `self.<field>`."""
    readers: dict[str, set[str]] = {}
    for name, text in sources.items():
        if not name.startswith(OWN[0]):
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Attribute)
                        and isinstance(inner.value, ast.Name)
                        and inner.value.id == "self"
                    ):
                        readers.setdefault(inner.attr, set()).add(node.name)
    return readers


def test_every_setting_is_read_outside_the_settings_module():
    sources = _tracked()
    elsewhere = "\n".join(text for name, text in sources.items() if not name.startswith(OWN))
    readers = _methods_reading(sources)
    unread = [
        field
        for field in Settings.model_fields
        if not any(re.search(rf"\.{name}\b", elsewhere) for name in {field, *readers.get(field, ())})
    ]
    assert not unread, f"settings nothing reads: {unread}"


def test_the_check_sees_a_method_read():
    readers = _methods_reading({"core/settings.py": (ROOT / "core" / "settings.py").read_text()})
    assert "egress_proxies" in readers["proxy_urls"]
