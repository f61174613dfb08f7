"""`grokgate serve --sandbox`: the gateway against the simulator, with seeded accounts, offline.

The simulator runs on a loopback port in a background thread of the same process; the three
upstream URLs point at it; accounts live in their own SQLite file so that a sandbox never mixes
with a real pool. Uses GROKGATE_API_KEYS when set, otherwise makes a key and prints it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

from core.accounts import NewAccount
from core.catalog import Tier
from core.settings import Settings
from infra.sim.server import SimServer
from infra.state.sqlite import SQLiteAccountStore

SANDBOX_STORE = Path("data") / "sandbox.db"
# Tokens in the simulator's `sim-` scheme: the tier word sets the account's tier there.
SANDBOX_ACCOUNTS = (
    NewAccount("sim-basic-sandbox-1", Tier.BASIC, note="sandbox"),
    NewAccount("sim-super-sandbox-1", Tier.SUPER, note="sandbox"),
    NewAccount("sim-super-sandbox-2", Tier.SUPER, note="sandbox"),
    NewAccount("sim-heavy-sandbox-1", Tier.HEAVY, note="sandbox"),
)


def sandbox_settings(settings: Settings, sim_url: str, host: str, port: int, store_path: Path) -> Settings:
    """The settings, pointed at the simulator and the sandbox store, with a key."""
    keys = settings.api_keys or ("sk-sandbox-" + secrets.token_urlsafe(18),)
    return settings.model_copy(
        update={
            "upstream_url": sim_url,
            "assets_url": sim_url,
            "accounts_url": sim_url,
            "store": f"sqlite:///{store_path}",
            "api_keys": keys,
            "public_url": settings.public_url
            or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}",
        }
    )


async def seed(store_path: Path) -> int:
    store = SQLiteAccountStore(store_path)
    try:
        report = await store.add(SANDBOX_ACCOUNTS, time.time())
    finally:
        await store.close()
    return report.added


def banner(settings: Settings) -> str:
    base = settings.public_url
    key = settings.api_keys[0]
    return f"""
grokgate sandbox: the gateway at {base}, talking to the Grok web simulator at {settings.upstream_url}
accounts: {", ".join(a.token for a in SANDBOX_ACCOUNTS)} (store: {settings.store})
API key:  {key}

Streamed chat with reasoning:
  curl -N {base}/v1/chat/completions -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "grok-4.20-0309-reasoning", "stream": true, "messages": [{{"role": "user", "content": "What is a tide?"}}]}}'

An image:
  curl {base}/v1/images/generations -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "grok-imagine-image", "prompt": "a lighthouse at dusk", "n": 1}}'

A video job:
  curl {base}/v1/videos -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "grok-imagine-video", "prompt": "a cat surfing", "seconds": "6"}}'

OpenAI SDK:
  from openai import OpenAI
  client = OpenAI(base_url="{base}/v1", api_key="{key}")
  for chunk in client.chat.completions.create(model="grok-4.20-0309-reasoning", stream=True,
          messages=[{{"role": "user", "content": "What is a tide?"}}]):
      delta = chunk.choices[0].delta if chunk.choices else None
      print(getattr(delta, "reasoning_content", None) or (delta and delta.content) or "", end="", flush=True)

Prompt directives shape the simulated answer, e.g. "#sim tokens=200 think=20" (see docs/simulator.md).
"""


def prepare_sandbox(settings: Settings, host: str, port: int, store_path: Path = SANDBOX_STORE) -> Settings:
    """Start the simulator, seed the sandbox pool, print how to call it; return the settings to serve."""
    sim = SimServer().start()  # a daemon thread: it ends with the process
    store_path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(seed(store_path))
    sandboxed = sandbox_settings(settings, sim.url, host, port, store_path)
    print(banner(sandboxed), flush=True)
    return sandboxed
