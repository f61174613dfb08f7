"""The released Codex CLI (`@openai/codex`, pinned in tests/clients/codex) against the gateway.

A custom provider in a temporary CODEX_HOME (`wire_api = "responses"`, the key from an env var),
as docs/clients.md tells users. The simulator's directives script the "model"; each test checks
what Codex printed and what reached the upstream. Codex's own shell runs the command of the tool
round trip, so its output is real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.sim.server import SimServer
from tests.clients.conftest import KEY, npm_bin, prompts, run_cli, turns
from tests.fixtures.gateway import Gateway

MODEL = "grok-4.20-0309-reasoning"
# The shell command prints the directive of the next turn: only a command that really ran (and
# computed 6*7) makes the model's final answer `sum-42`. `\u0023` keeps the inner `#sim` from
# being the first turn's directive.
ROUND_TRIP = (
    "Compute six times seven. #sim think=4 tool=exec_command "
    'args={"cmd": "echo \\"\\u0023sim think=2 say=sum-$((6*7))\\""}'
)


def codex_home(tmp: Path, gw: Gateway, model: str | None = MODEL, extra: str = "") -> Path:
    """A CODEX_HOME whose config.toml is the provider block of docs/clients.md (plus `extra`)."""
    home = tmp / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        (f'model = "{model}"\n' if model else "")
        + 'model_provider = "grokgate"\n\n'
        + extra
        + "[model_providers.grokgate]\n"
        'name = "grokgate"\n'
        f'base_url = "{gw.url}/v1"\n'
        'env_key = "GROKGATE_API_KEY"\n'
        'wire_api = "responses"\n'
    )
    return home


def codex(home: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env.update(CODEX_HOME=str(home), GROKGATE_API_KEY=KEY, NO_COLOR="1")
    return run_cli(
        [str(npm_bin("codex", "codex")), "exec", "--skip-git-repo-check", "-s", "danger-full-access", *args],
        workdir,
        env,
    )


def test_plain_answer(client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path) -> None:
    since = turns(client_sim)
    done = codex(
        codex_home(tmp_path, client_gw), workdir, "Say hello. #sim think=0 say=hello-from-the-gateway"
    )
    assert done.stdout.strip().splitlines()[-1] == "hello-from-the-gateway"
    [prompt] = prompts(client_sim, since)
    # Codex's instructions, its tools (exec_command; the namespace of sub-agent tools), the question
    assert "Codex CLI" in prompt and "## exec_command" in prompt and "Say hello." in prompt
    assert (
        "## multi_agent_v1." in prompt
        and "web_search" not in prompt.split("# Tools", 1)[1].split("When to call")[0]
    )


def test_exec_command_round_trip_then_resume(
    client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path
) -> None:
    home = codex_home(tmp_path, client_gw)
    since = turns(client_sim)
    done = codex(home, workdir, ROUND_TRIP)
    assert done.stdout.strip().splitlines()[-1] == "sum-42"
    first, second = prompts(client_sim, since)
    assert "Compute six times seven." in first
    # the call went back in Codex's history, and the command's real output reached the upstream
    assert "<tool_name>exec_command</tool_name>" in second
    assert "(exec_command)]:" in second and "#sim think=2 say=sum-42" in second.rsplit("[tool result", 1)[1]

    # Codex keeps the signed reasoning items and sends them back on resume; the gateway checks them
    rollouts = list((home / "sessions").rglob("*.jsonl"))
    assert rollouts and '"encrypted_content":"gg1.' in rollouts[0].read_text()
    since = turns(client_sim)
    resumed = codex(home, workdir, "resume", "--last", "And now? #sim think=0 say=resumed-ok")
    assert resumed.stdout.strip().splitlines()[-1] == "resumed-ok"
    [third] = prompts(client_sim, since)
    assert "Compute six times seven." in third and "sum-42" in third and "And now?" in third


def escaped_json(value: object) -> str:
    """`value` as a directive's JSON value, any `#sim` in it kept for a later turn."""
    return json.dumps(value).replace("#sim", "\\u0023sim")


def test_default_model_code_mode_round_trip(
    client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path
) -> None:
    """No `model` in config.toml: Codex asks for its default model (an alias here) and sends its
    tools as an `additional_tools` input item: namespaces of functions and the free-form `exec`
    tool (JavaScript that calls the other tools). The model's `exec` call comes back as a
    `custom_tool_call` in the `functions` namespace; Codex runs the script, which runs the shell."""
    script = "const r = await tools.exec_command({cmd: \"echo '\\u0023sim think=0 say=js-'$((6*7))' end'\"}); text(r);"
    since = turns(client_sim)
    done = codex(
        codex_home(tmp_path, client_gw, model=None),
        workdir,
        f"Run the script. #sim think=2 tool=functions.exec args={json.dumps(script)}",
    )
    assert done.stdout.strip().splitlines()[-1] == "js-42"
    first, second = prompts(client_sim, since)
    assert "## functions.exec" in first and "FREE-FORM" in first and "## collaboration.spawn_agent" in first
    assert "<tool_name>functions.exec</tool_name>" in second
    assert "#sim think=0 say=js-42 end" in second.rsplit("[tool result", 1)[1]


# The patch adds a file whose one line is the next turn's directive: the call (given back in
# Codex's history) carries it, so the final answer shows the patch went back upstream.
PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+#sim think=0 say=patched-notes\n*** End Patch\n"


def test_gpt5_apply_patch_round_trip(
    client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path
) -> None:
    """`model = "gpt-5.5"` (an alias here): Codex offers `apply_patch` as a free-form `custom`
    tool with its Lark grammar, and `tool_search` and `web_search`, which are dropped."""
    since = turns(client_sim)
    prompt = f"Write the notes. #sim think=2 tool=apply_patch args={escaped_json(PATCH)}"
    done = codex(codex_home(tmp_path, client_gw, model="gpt-5.5"), workdir, prompt)
    assert done.stdout.strip().splitlines()[-1] == "patched-notes"
    assert (workdir / "notes.txt").read_text() == "#sim think=0 say=patched-notes\n"  # Codex applied it
    first, second = prompts(client_sim, since)
    assert "## apply_patch" in first and "FREE-FORM" in first and "lark grammar" in first
    assert "*** Add File: notes.txt" in second and "Success. Updated the following files" in second


def test_tool_search_finds_a_deferred_mcp_tool(
    client_gw: Gateway, client_sim: SimServer, tmp_path: Path, workdir: Path
) -> None:
    """An MCP server's tools are deferred behind Codex's client-run `tool_search`: the model's
    search is a `tool_search_call`, Codex's own search answers with a `tool_search_output`
    holding the `mcp__glossary` namespace, the model calls `lookup` in it, Codex runs the MCP
    tool, and its result reaches the upstream. The search query carries the second turn's
    directive (`invoke` markup: a bare-word argument), the MCP result the third's."""
    server = Path(__file__).with_name("mcp_glossary.py")
    mcp = f'[mcp_servers.glossary]\ncommand = "{sys.executable}"\nargs = ["{server}"]\n\n'
    query = "glossary #sim think=0 tool_format=invoke tool=lookup args=tide end"
    since = turns(client_sim)
    home = codex_home(tmp_path, client_gw, model="gpt-5.5", extra=mcp)
    done = codex(
        home, workdir, f"Define tide. #sim think=0 tool=tool_search args={escaped_json({'query': query})}"
    )
    assert done.stdout.strip().splitlines()[-1] == "glossary-tide"
    first, second, third = prompts(client_sim, since)
    assert "## tool_search" in first and "## mcp__glossary.lookup" not in first  # deferred
    assert (
        "Loaded tools (now available): mcp__glossary (lookup)" in second
        and "## mcp__glossary.lookup" in second
    )
    assert "<tool_name>mcp__glossary.lookup</tool_name>" in third and "tide: found" in third
