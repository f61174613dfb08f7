"""Shared fixtures. Fixture modules live in tests/fixtures and are registered here."""

from __future__ import annotations

import importlib.util

_PLUGINS = ("tests.fixtures.sim", "tests.fixtures.stores", "tests.fixtures.gateway")


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


pytest_plugins = [name for name in _PLUGINS if _exists(name)]
