"""Things that need closing close one way: `async def aclose()`. Deps closes its singletons by
`aclose`, so an adapter whose port said `close` was never closed (or carried an alias)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_class_in_the_gateway_closes_by_an_async_close():
    found = []
    for package in ("core", "infra", "functions"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ClassDef):
                    continue
                for item in node.body:
                    aliased = (
                        isinstance(item, ast.Assign)
                        and isinstance(item.value, ast.Name)
                        and {item.value.id, *(getattr(t, "id", "") for t in item.targets)}
                        == {"close", "aclose"}
                    )
                    if aliased or (isinstance(item, ast.AsyncFunctionDef) and item.name == "close"):
                        found.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not found, found
