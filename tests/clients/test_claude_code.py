"""The released Claude Code CLI (`@anthropic-ai/claude-code`, pinned in tests/clients/claude_code)
against the gateway, as docs/clients.md tells users: `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY`,
no `--model` (Claude Code asks for its own default, `claude-*`, which the gateway's alias serves),
a temporary HOME, and the switches that keep it from calling home.

The simulator's directives script the "model"; each test checks what Claude Code printed and what
reached the upstream. Claude Code's own Bash tool runs the command of the round trip, so its output
is real.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from infra.sim.server import SimServer
from tests.clients.conftest import KEY, npm_bin, prompts, run_cli, turns
from tests.fixtures.gateway import Gateway

# The command prints the directive of the next turn: only a command that really ran (and computed
# 6*7) makes the final answer `sum-42`. `\u0023` keeps the inner `#sim` from being this turn's.
ROUND_TRIP = (
    "Compute six times seven. #sim think=2 tool=Bash "
    'args={"command": "echo \\"\\u0023sim think=0 say=sum-$((6*7))\\"", "description": "Multiply"}'
)


def claude(home: Path, workdir: Path, gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=gw.url,
        ANTHROPIC_API_KEY=KEY,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        NO_COLOR="1",
    )
    return run_cli([str(npm_bin("claude_code", "claude")), "-p", *args], workdir, env)


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def test_plain_answer(client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path) -> None:
    since = turns(client_sim)
    done = claude(
        _home(tmp_path), workdir, client_gw, "--", "Say hello. #sim think=0 say=hello-from-the-gateway"
    )
    assert done.stdout.strip().splitlines()[-1] == "hello-from-the-gateway"
    [prompt] = [p for p in prompts(client_sim, since) if "Say hello." in p]
    # Claude Code's system prompt, its environment (a role "system" message), its tools, the question
    head = prompt.split("[user]:", 1)[0]
    assert "Claude" in head and f"Primary working directory: {workdir}" in head
    assert "## Bash" in prompt and "## Read" in prompt
    assert "Say hello." in prompt.split("[user]:", 1)[1]
    assert client_sim.log.last_chat().mode == "expert"  # claude-* -> grok-4.20-0309-reasoning


def test_bash_round_trip_then_continue(
    client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path
) -> None:
    home = _home(tmp_path)
    since = turns(client_sim)
    done = claude(home, workdir, client_gw, "--allowedTools", "Bash", "--", ROUND_TRIP)
    assert done.stdout.strip().splitlines()[-1] == "sum-42"
    first, second = [p for p in prompts(client_sim, since) if "Compute six times seven." in p]
    assert "## Bash" in first and "<tool_name>Bash</tool_name>" not in first
    # the call went back in Claude Code's history, and the command's real output reached the upstream
    assert "<tool_name>Bash</tool_name>" in second
    assert "[tool result for toolu_" in second
    assert "#sim think=0 say=sum-42" in second.rsplit("[tool result for toolu_", 1)[1]

    since = turns(client_sim)
    resumed = claude(home, workdir, client_gw, "--continue", "--", "And now? #sim think=0 say=continued-ok")
    assert resumed.stdout.strip().splitlines()[-1] == "continued-ok"
    [third] = [p for p in prompts(client_sim, since) if "And now?" in p]
    assert "Compute six times seven." in third and "sum-42" in third
    assert third.index("Compute six times seven.") < third.index("And now?")


def test_thinking_is_shown_with_a_reasoning_model(
    client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path
) -> None:
    done = claude(
        _home(tmp_path),
        workdir,
        client_gw,
        "--output-format",
        "stream-json",
        "--verbose",
        "--",
        "Think it over. #sim think=6 say=thought-through",
    )
    events: list[dict[str, Any]] = [
        json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")
    ]
    blocks = [b for e in events if e.get("type") == "assistant" for b in e["message"]["content"]]
    thinking = [b for b in blocks if b["type"] == "thinking"]
    assert thinking and thinking[0]["thinking"].strip() and thinking[0]["signature"]
    assert [b["text"] for b in blocks if b["type"] == "text"] == ["thought-through"]
    assert events[-1]["type"] == "result" and events[-1]["result"] == "thought-through"
