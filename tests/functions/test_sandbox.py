"""`grokgate serve --sandbox` as a newcomer runs it: a real process, the official SDK, no network."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sandbox")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROKGATE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "functions.cli", "serve", "--sandbox", "--port", str(port)],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner = []
    key = None
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner.append(line)
            if match := re.match(r"API key:\s+(\S+)", line):
                key = match.group(1)
            if "Prompt directives" in line:
                break
        assert key, "".join(banner)
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, key, "".join(banner), workdir
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def test_banner_gives_ready_to_paste_lines(sandbox):
    base, key, banner, workdir = sandbox
    assert f"curl -N {base}/v1/chat/completions" in banner
    assert f'OpenAI(base_url="{base}/v1", api_key="{key}")' in banner
    assert (workdir / "data" / "sandbox.db").exists()


def test_streamed_chat_with_reasoning_through_the_official_sdk(sandbox):
    base, key, _, _ = sandbox
    client = openai.OpenAI(base_url=base + "/v1", api_key=key)
    reasoning, answer = "", ""
    for chunk in client.chat.completions.create(
        model="grok-4.20-0309-reasoning",
        stream=True,
        messages=[{"role": "user", "content": "What is a tide?"}],
    ):
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning += getattr(delta, "reasoning_content", None) or ""
            answer += delta.content or ""
    assert reasoning.strip() and answer.strip()


def test_the_sandbox_key_is_required(sandbox):
    base, _, _, _ = sandbox
    client = openai.OpenAI(base_url=base + "/v1", api_key="wrong")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_an_image_generation_returns_a_url_that_downloads(sandbox):
    base, key, _, _ = sandbox
    client = openai.OpenAI(base_url=base + "/v1", api_key=key)
    image = client.images.generate(model="grok-imagine-image", prompt="a lighthouse at dusk", n=1)
    url = image.data[0].url
    assert url.startswith(base)
    download = httpx.get(url)  # a signed gateway link: no key needed
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("image/")
    assert download.content[:2] == b"\xff\xd8" or download.content[:4] == b"\x89PNG"
