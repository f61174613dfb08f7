"""Every shell block of the README runs, as written, against the sandbox: the docs cannot drift.

How it runs: one `grokgate serve --sandbox` in a scratch folder (with `.venv` linked in), and each
```sh / ```bash / ```shell block of README.md as one bash script there, with `set -euo pipefail`,
`curl` failing on HTTP errors (`--fail-with-body`), and the secrets loaded the way the README says
(`. data/sandbox.env`). `localhost:8000` is rewritten to the sandbox's own port (tests never use a
fixed one). What the blocks may use, set up before each block:

    $KEY $ADMIN $CRON_SECRET   from data/sandbox.env
    $ID                        an account present in the pool (re-added before every block)
    $RESPONSE_ID               a stored response, made before the block
    $VIDEO_ID                  a completed video job
    $BATCH_ID                  an admin batch (a refresh of $ID)
    tokens.txt                 two simulator tokens;   photo.png  a small PNG
    GROKGATE_STORE, GROKGATE_UPSTREAM_URL, …  point the CLI at the sandbox's pool and simulator

A block that cannot run here says why on the line before its fence:
`<!-- readme-test: skip: REASON -->`. Any other block must pass. A new README line that needs
more than the list above extends `prepare()` below.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.accounts import NewAccount, account_id_for
from core.catalog import Tier
from tests.fixtures.sandbox import ROOT, start_sandbox, stop

README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
SHELLS = {"sh", "bash", "shell", "console"}
ID_TOKEN = "sim-super-readme-id"
TOKENS = "sim-super-readme-1\nsim-basic-readme-2\n"


@dataclass(frozen=True)
class Block:
    line: int  # where the fence opens, 1-based
    text: str
    skip: str | None  # the reason given by a skip marker

    @property
    def name(self) -> str:
        first = next((ln.strip() for ln in self.text.splitlines() if ln.strip()), "")
        return f"README.md:{self.line} {first[:60]}"


def shell_blocks(markdown: str) -> list[Block]:
    """The shell blocks of a Markdown text, with the skip marker (if any) just above each."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, lang = i, fence.group(1)
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang in SHELLS:
            above = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
            marker = SKIP.search(above)
            blocks.append(Block(start + 1, "\n".join(body), marker.group(1) if marker else None))
    return blocks


BLOCKS = shell_blocks(README.read_text())


def test_the_readme_has_shell_blocks_and_every_skip_says_why():
    assert len([b for b in BLOCKS if b.skip is None]) >= 5
    for block in BLOCKS:
        assert block.skip is None or len(block.skip) > 10, f"{block.name}: say why it cannot run"


def test_the_block_parser_reads_markers_and_languages():
    text = "x\n<!-- readme-test: skip: it runs forever -->\n```sh\nmake serve\n```\n```\nnot shell\n```\n```bash\necho hi\n```\n"
    blocks = shell_blocks(text)
    assert [(b.text, b.skip) for b in blocks] == [("make serve", "it runs forever"), ("echo hi", None)]


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    raw = b"".join(b"\x00" + b"\x80\x90\xa0" * 8 for _ in range(8))
    header = (8).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclass
class Sandbox:
    workdir: Path
    base: str
    sim_url: str
    secrets: dict[str, str]
    video_id: str


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    workdir = tmp_path_factory.mktemp("readme")
    (workdir / ".venv").symlink_to(Path(sys.prefix))
    (workdir / "tokens.txt").write_text(TOKENS)
    (workdir / "photo.png").write_bytes(png())
    proc, base, found, banner = start_sandbox(workdir)
    try:
        sim_url = re.search(r"Grok web simulator at (\S+)", banner).group(1)
        auth = {"authorization": f"Bearer {found['API key']}"}
        job = httpx.post(f"{base}/v1/videos", headers=auth, data={"prompt": "a cat surfing", "seconds": "6"})
        assert job.status_code == 200, job.text
        video_id = job.json()["id"]
        deadline = time.monotonic() + 90
        while httpx.get(f"{base}/v1/videos/{video_id}", headers=auth).json()["status"] != "completed":
            assert time.monotonic() < deadline, "the sandbox's video job did not complete"
            time.sleep(0.3)
        yield Sandbox(workdir, base, sim_url, found, video_id)
    finally:
        stop(proc)


def prepare(sandbox: Sandbox) -> dict[str, str]:
    """The state and variables a block may rely on (see the module docstring)."""
    from infra.state.sqlite import SQLiteAccountStore

    async def ensure_id_account() -> None:
        store = SQLiteAccountStore(sandbox.workdir / "data" / "sandbox.db")
        try:
            await store.add([NewAccount(ID_TOKEN, Tier.SUPER, note="readme")], time.time())
        finally:
            await store.aclose()

    asyncio.run(ensure_id_account())
    auth = {"authorization": f"Bearer {sandbox.secrets['API key']}"}
    response = httpx.post(
        f"{sandbox.base}/v1/responses",
        headers=auth,
        json={"model": "grok-4.20-0309", "input": "hi"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    batch = httpx.post(
        f"{sandbox.base}/admin/api/batches",
        headers={"authorization": f"Bearer {sandbox.secrets['Admin key']}"},
        json={"action": "refresh", "ids": [account_id_for(ID_TOKEN)]},
    )
    assert batch.status_code == 201, batch.text
    return {
        "BATCH_ID": batch.json()["id"],
        "ID": account_id_for(ID_TOKEN),
        "RESPONSE_ID": response.json()["id"],
        "VIDEO_ID": sandbox.video_id,
        "GROKGATE_STORE": "sqlite:///data/sandbox.db",
        "GROKGATE_UPSTREAM_URL": sandbox.sim_url,
        "GROKGATE_ASSETS_URL": sandbox.sim_url,
        "GROKGATE_ACCOUNTS_URL": sandbox.sim_url,
    }


PRELUDE = """set -euo pipefail
. data/sandbox.env
curl() { command curl --fail-with-body -sS --max-time 60 "$@"; echo; }
"""


RUNNABLE = [b for b in BLOCKS if b.skip is None]  # the marked ones are checked for a reason above


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.name for b in RUNNABLE])
def test_the_block_runs_against_the_sandbox(sandbox, block):
    port = sandbox.base.rsplit(":", 1)[1]
    script = PRELUDE + block.text.replace("localhost:8000", f"127.0.0.1:{port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROKGATE_") and k != "CRON_SECRET"}
    env.update(prepare(sandbox))
    done = subprocess.run(
        ["bash", "-c", script], cwd=sandbox.workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (
        f"{block.name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
