"""`grokgate serve --sandbox`: the gateway against the simulator, with seeded accounts, offline.

The simulator runs on a loopback port in a background thread of the same process; the three
upstream URLs point at it; accounts live in their own SQLite file (`data/sandbox.db`) so that a
sandbox never mixes with a real pool. The API key, the admin key and the cron secret come from
the environment when set (GROKGATE_API_KEYS, GROKGATE_ADMIN_KEY, CRON_SECRET), else from
`data/sandbox.env`, made on the first start and reused on every later one, so pasted lines keep
working. `grokgate accounts … --sandbox` works on the same pool (`sandbox_cli_settings`).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from core.accounts import NewAccount
from core.catalog import Tier
from core.settings import Settings
from infra.sim.server import SimServer
from infra.sim.state import SimConfig
from infra.state.sqlite import SQLiteAccountStore

SANDBOX_DIR = Path("data")
SANDBOX_STORE = SANDBOX_DIR / "sandbox.db"
# The names Claude Code and Codex ask for by default (and their small/background models), so both run
# against the sandbox with no `--model`; GROKGATE_MODEL_ALIASES replaces this table when set.
SANDBOX_ALIASES = (
    "claude-*=grok-4.20-0309-reasoning,claude-haiku-*=grok-4.20-0309-non-reasoning,"
    "claude-3-5-haiku-*=grok-4.20-0309-non-reasoning,gpt-*=grok-4.20-0309,o3*=grok-4.20-0309-reasoning,"
    "o4-mini*=grok-4.20-0309,codex-*=grok-4.20-0309"
)
SECRETS_FILE = "sandbox.env"
# Tokens in the simulator's `sim-` scheme: the tier word sets the account's tier there.
SANDBOX_ACCOUNTS = (
    NewAccount("sim-basic-sandbox-1", Tier.BASIC, note="sandbox"),
    NewAccount("sim-super-sandbox-1", Tier.SUPER, note="sandbox"),
    NewAccount("sim-super-sandbox-2", Tier.SUPER, note="sandbox"),
    NewAccount("sim-heavy-sandbox-1", Tier.HEAVY, note="sandbox"),
)
_LINE = re.compile(r"^export (KEY|ADMIN|CRON_SECRET)=(\S+)$")


@dataclass(frozen=True, slots=True)
class SandboxSecrets:
    """The sandbox's three secrets, as the README's examples name them."""

    api_key: str
    admin_key: str
    cron_secret: str

    def env_text(self) -> str:
        return (
            "# grokgate sandbox secrets: reused on every `make sandbox`; delete this file for new ones.\n"
            "# Load them into a shell with:  . data/sandbox.env\n"
            f"export KEY={self.api_key}\nexport ADMIN={self.admin_key}\nexport CRON_SECRET={self.cron_secret}\n"
        )


def load_secrets(folder: Path, settings: Settings) -> SandboxSecrets:
    """The environment's secrets where set, else those kept in `folder/sandbox.env` (made when missing)."""
    path = folder / SECRETS_FILE
    kept: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if match := _LINE.match(line.strip()):
                kept[match.group(1)] = match.group(2)
    made = SandboxSecrets(
        api_key=kept.get("KEY") or "sk-sandbox-" + secrets.token_urlsafe(18),
        admin_key=kept.get("ADMIN") or "sk-admin-" + secrets.token_urlsafe(18),
        cron_secret=kept.get("CRON_SECRET") or "cron-" + secrets.token_urlsafe(18),
    )
    if len(kept) < 3:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(made.env_text())
    return SandboxSecrets(
        api_key=settings.api_keys[0] if settings.api_keys else made.api_key,
        admin_key=settings.admin_key or made.admin_key,
        cron_secret=settings.cron_secret or made.cron_secret,
    )


def sandbox_settings(
    settings: Settings,
    sim_url: str,
    host: str,
    port: int,
    store_path: Path,
    keys: SandboxSecrets | None = None,
) -> Settings:
    """The settings, pointed at the simulator and the sandbox store, with the sandbox's secrets."""
    keys = keys or load_secrets(store_path.parent, settings)
    return settings.model_copy(
        update={
            "upstream_url": sim_url,
            "assets_url": sim_url,
            "accounts_url": sim_url,
            # The simulator's FlareSolverr endpoint solves its own challenges.
            "flaresolverr_url": settings.flaresolverr_url or sim_url,
            "store": f"sqlite:///{store_path}",
            "api_keys": settings.api_keys or (keys.api_key,),
            "admin_key": keys.admin_key,
            "cron_secret": keys.cron_secret,
            "model_aliases": settings.model_aliases or SANDBOX_ALIASES,
            "public_url": settings.public_url
            or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}",
        }
    )


async def seed(store_path: Path) -> int:
    store = SQLiteAccountStore(store_path)
    try:
        report = await store.add(SANDBOX_ACCOUNTS, time.time())
    finally:
        await store.aclose()
    return report.added


def banner(settings: Settings) -> str:
    base = settings.public_url
    key = settings.api_keys[0]
    admin, cron = settings.admin_key, settings.cron_secret
    return f"""
grokgate sandbox: the gateway at {base}, talking to the Grok web simulator at {settings.upstream_url}
accounts: {", ".join(a.token for a in SANDBOX_ACCOUNTS)} (store: {settings.store})
API key:     {key}
Admin key:   {admin}
Cron secret: {cron}
Console:     {base}/admin  (log in with the admin key)
These are kept in data/sandbox.env and reused on the next start. In a shell:
  . data/sandbox.env        # sets KEY, ADMIN and CRON_SECRET for the README's examples

Streamed chat with reasoning:
  curl -N {base}/v1/chat/completions -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "grok-4.20-0309-reasoning", "stream": true, "messages": [{{"role": "user", "content": "What is a tide?"}}]}}'

An image:
  curl {base}/v1/images/generations -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "grok-imagine-image", "prompt": "a lighthouse at dusk", "n": 1}}'

A video job:
  curl {base}/v1/videos -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "grok-imagine-video", "prompt": "a cat surfing", "seconds": "6"}}'

The pool, through the admin API:
  curl -H "Authorization: Bearer {admin}" {base}/admin/api/accounts

Quota upkeep, as a scheduler calls it:
  curl -H "Authorization: Bearer {cron}" {base}/api/cron/quota

The same pool from the CLI:
  .venv/bin/grokgate accounts list --sandbox

OpenAI SDK:
  from openai import OpenAI
  client = OpenAI(base_url="{base}/v1", api_key="{key}")
  for chunk in client.chat.completions.create(model="grok-4.20-0309-reasoning", stream=True,
          messages=[{{"role": "user", "content": "What is a tide?"}}]):
      delta = chunk.choices[0].delta if chunk.choices else None
      print(getattr(delta, "reasoning_content", None) or (delta and delta.content) or "", end="", flush=True)

Model aliases ({settings.model_aliases}):
  Claude Code: ANTHROPIC_BASE_URL={base} ANTHROPIC_API_KEY={key} claude   (see docs/clients.md)

Prompt directives shape the simulated answer, e.g. "#sim tokens=200 think=20" (see docs/simulator.md).
"""


def prepare_sandbox(settings: Settings, host: str, port: int, store_path: Path = SANDBOX_STORE) -> Settings:
    """Start the simulator, seed the sandbox pool, print how to call it; return the settings to serve."""
    # grok.com's defences on, as upstream: a value signed for the sim's build on the REST calls, and
    # a Cloudflare clearance (solved by the sim's own FlareSolverr endpoint) on every call.
    sim = SimServer(config=SimConfig(statsig="signed", challenge_all=True)).start()  # a daemon thread
    store_path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(seed(store_path))
    sandboxed = sandbox_settings(settings, sim.url, host, port, store_path)
    print(banner(sandboxed), flush=True)
    return sandboxed


def sandbox_cli_settings(settings: Settings, store_path: Path = SANDBOX_STORE) -> Settings:
    """Settings for `grokgate accounts … --sandbox`: the sandbox's store, and a simulator of its own
    (started here, for this command) so that import and refresh can ask it for rate limits."""
    sim = SimServer().start()
    return sandbox_settings(settings, sim.url, "127.0.0.1", settings.port, store_path)
