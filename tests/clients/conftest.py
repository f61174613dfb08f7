"""The released clients against a real gateway and the simulator, over loopback.

One simulator and one gateway (SQLite store, an API key, unlimited `sim-` accounts) serve every
client test of the session. The npm clients are installed, pinned, in their own folders
(`tests/clients/<name>/package.json` + `package-lock.json`) by `make client-deps`; the Python
ones come with the test extras.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, sim_gateway

HERE = Path(__file__).resolve().parent
KEY = "sk-clients-test"


def npm_bin(folder: str, name: str) -> Path:
    """The pinned client's executable; a clear failure (never a skip) when it is not installed."""
    path = HERE / folder / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make client-deps` (npm ci in tests/clients/{folder}).")
    return path


def run_cli(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A released CLI run to its end (no stdin, 120 s at most); a non-zero exit fails the test
    with what it printed."""
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    name = Path(argv[0]).name
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory for a CLI."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not on PATH; the npm clients need Node.js 20 or newer.")
    return found


@pytest.fixture(scope="session")
def _clients_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimServer, Gateway]]:
    env = {
        "GROKGATE_API_KEYS": KEY,
        # the names clients hard-code (Codex's and Claude Code's default models, Claude Code's small
        # haiku model), as docs/clients.md suggests
        "GROKGATE_MODEL_ALIASES": (
            "gpt-*=grok-4.20-0309-reasoning,claude-*=grok-4.20-0309-reasoning,"
            "claude-haiku-*=grok-4.20-0309-non-reasoning"
        ),
    }
    tokens = [
        (f"sim-{tier.value}-unlimited-client{i}", tier) for i in range(4) for tier in (Tier.SUPER, Tier.HEAVY)
    ]
    with sim_gateway(tmp_path_factory.mktemp("clients"), tokens, env) as pair:
        yield pair


@pytest.fixture(scope="session")
def client_sim(_clients_pair: tuple[SimServer, Gateway]) -> SimServer:
    return _clients_pair[0]


@pytest.fixture(scope="session")
def client_gw(_clients_pair: tuple[SimServer, Gateway]) -> Gateway:
    return _clients_pair[1]


def prompts(sim: SimServer, since: int = 0) -> list[str]:
    """The upstream prompts of the chat turns since turn `since` (either transport)."""
    return [turn.message for turn in sim.log.chat_turns()[since:]]


def turns(sim: SimServer) -> int:
    return len(sim.log.chat_turns())
