"""vercel.json serves every public route from exactly one function, and every function is real.

Layout: `api/<name>.py` are one-line shims that import `app` from `functions/<name>.py` (Vercel
makes a function of each `.py` under `api/`); rewrites keep the client's path (`/v1/...`),
which the Starlette routes match. `app` detection is checked with the analysis the
`@vercel/python` builder itself runs (node_modules, pinned by package-lock.json).
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Route

from functions.local import all_routes

ROOT = Path(__file__).resolve().parents[2]
CONFIG: dict[str, Any] = json.loads((ROOT / "vercel.json").read_text())
ANALYSIS = ROOT / "node_modules" / "@vercel" / "python-analysis"
MAX_DURATION = 800  # Pro/Enterprise ceiling with Fluid compute; Hobby is 300
# The deployable that serves each route module: one streaming function for the three dialects.
DEPLOYABLE = {"chat": "chat", "responses": "chat", "messages": "chat", "models": "models", "admin": "admin"}


def source_regex(source: str) -> re.Pattern[str]:
    """A Vercel rewrite source (path-to-regexp subset: `/:name`, `/:name?`, `/:name*`, `/:name+`, `(.*)`)."""
    params = {"": "/[^/]+", "?": "(?:/[^/]+)?", "*": "(?:/.+)?", "+": "/.+"}
    pattern = ""
    for token in re.split(r"(/:\w+[*+?]?|\(\.\*\))", source):
        if token == "(.*)":
            pattern += ".*"
        elif token.startswith("/:"):
            pattern += params[token[-1] if token[-1] in "*+?" else ""]
        else:
            pattern += re.escape(token)
    return re.compile(pattern + "$")


def sample_paths(route: Route) -> list[str]:
    """Concrete paths a Starlette route matches: `{id}` -> one segment, `{x:path}` -> two."""
    one = re.sub(r"\{\w+:path\}", "grok-4/latest", route.path)
    return [re.sub(r"\{\w+(:\w+)?\}", "abc123", one)]


def owner(route: BaseRoute) -> str:
    """The deployable (a configured function) whose `routes` hold this route; a deployable may
    include routes written in other modules (chat serves /v1/responses and /v1/messages)."""
    assert isinstance(route, Route)
    names = [Path(entry).stem for entry in CONFIG["functions"]]
    owners = [n for n in names if route in importlib.import_module(f"functions.{n}").routes]
    assert len(owners) <= 1, (route.path, owners)
    module: str = route.endpoint.__module__
    return owners[0] if owners else module.removeprefix("functions.")


def functions_for(path: str) -> list[str]:
    return [
        rewrite["destination"]
        for rewrite in CONFIG["rewrites"]
        if source_regex(rewrite["source"]).match(path)
    ]


def test_source_regex_follows_path_to_regexp():
    assert source_regex("/v1/models/:path*").match("/v1/models/grok-4/latest")
    assert source_regex("/v1/models/:path*").match("/v1/models")
    assert not source_regex("/v1/models").match("/v1/models/x")
    assert source_regex("/v1/files/:id").match("/v1/files/abc")
    assert not source_regex("/v1/files/:id").match("/v1/files/abc/content")


def test_every_public_route_is_served_by_exactly_one_function():
    routes = [r for r in all_routes() if isinstance(r, Route)]
    assert routes
    for route in routes:
        for path in sample_paths(route):
            targets = set(functions_for(path))
            assert targets == {f"/api/{owner(route)}"}, f"{path} ({route.path}) -> {sorted(targets)}"
            app = importlib.import_module(f"api.{owner(route)}").app
            assert any(
                r.matches({"type": "http", "path": path, "method": m})[0].value == 2
                for r in app.routes
                for m in route.methods or ["GET"]
            ), f"{owner(route)} does not serve {path}"
    assert set(functions_for("/health")) == {"/api/models"}


def test_every_rewrite_target_is_a_function_file_with_config():
    destinations = {rewrite["destination"] for rewrite in CONFIG["rewrites"]}
    configured = set(CONFIG["functions"])
    for destination in destinations:
        assert destination.startswith("/api/")
        assert f"{destination.removeprefix('/')}.py" in configured, destination
    for entry, settings in configured_functions():
        assert (ROOT / entry).is_file(), entry
        assert 0 < settings["maxDuration"] <= MAX_DURATION
        assert ".env" in settings["excludeFiles"] and "tests/**" in settings["excludeFiles"]
        assert len(settings["excludeFiles"]) <= 256  # the vercel.json schema's limit
    assert "builds" not in CONFIG  # `builds` cannot be combined with `functions`
    assert CONFIG["framework"] is None  # no preset may turn the project into one app


def configured_functions() -> list[tuple[str, dict[str, Any]]]:
    return sorted(CONFIG["functions"].items())


def test_every_function_exposes_the_deployable_app():
    for entry, _ in configured_functions():
        name = Path(entry).stem
        shim = importlib.import_module(f"api.{name}")
        deployable = importlib.import_module(f"functions.{name}")
        assert shim.app is deployable.app


def test_the_vercel_builder_finds_app_in_every_function():
    """Run @vercel/python's own entrypoint analysis (the one its build step uses) on each file."""
    if shutil.which("node") is None or not ANALYSIS.is_dir():
        pytest.fail("@vercel/python is not installed: run `make node-deps` (npm ci)", pytrace=False)
    files = [entry for entry, _ in configured_functions()]
    script = (
        "const pa = require('@vercel/python-analysis'); const fs = require('fs');"
        "(async () => { const out = {};"
        " for (const f of process.argv.slice(1)) out[f] = await pa.findAppOrHandler(fs.readFileSync(f, 'utf8'));"
        " console.log(JSON.stringify(out)); })();"
    )
    result = subprocess.run(
        ["node", "-e", script, *files], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dict.fromkeys(files, "app")


def test_crons_hit_a_function_that_serves_their_path_on_get():
    assert CONFIG["crons"], "no cron configured"
    for cron in CONFIG["crons"]:
        targets = functions_for(cron["path"])
        assert len(set(targets)) == 1, cron
        app = importlib.import_module(f"api.{targets[0].removeprefix('/api/')}").app
        scope = {"type": "http", "path": cron["path"], "method": "GET"}  # Vercel calls crons with GET
        assert any(r.matches(scope)[0].value == 2 for r in app.routes), cron
        assert len(cron["schedule"].split()) == 5
