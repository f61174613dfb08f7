"""`grokgate serve --sandbox` as a newcomer runs it: a real process, the official SDK, no network."""

import os
import subprocess
import sys

import httpx
import openai
import pytest

from tests.fixtures.sandbox import ROOT, start_sandbox, stop


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sandbox")
    proc, base, found, banner = start_sandbox(workdir)
    try:
        yield base, found["API key"], banner, workdir
    finally:
        stop(proc)


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


def test_a_restart_keeps_the_keys_and_admin_and_cron_lines_work(tmp_path):
    proc, base, first, _ = start_sandbox(tmp_path)
    stop(proc)
    kept = (tmp_path / "data" / "sandbox.env").read_text()
    assert f"export KEY={first['API key']}" in kept and f"export ADMIN={first['Admin key']}" in kept
    assert (tmp_path / "data" / "sandbox.env").stat().st_mode & 0o077 == 0  # secrets: owner only
    proc, base, second, banner = start_sandbox(tmp_path)
    try:
        assert second == first  # the lines pasted before the restart still work
        assert f'curl -H "Authorization: Bearer {first["Admin key"]}" {base}/admin/api/accounts' in banner
        admin = httpx.get(
            base + "/admin/api/accounts", headers={"authorization": f"Bearer {first['Admin key']}"}
        )
        assert admin.status_code == 200 and len(admin.json()["data"]) == 4
        cron = httpx.get(
            base + "/api/cron/quota", headers={"authorization": f"Bearer {first['Cron secret']}"}
        )
        assert cron.status_code == 200 and cron.json()["due"] == 4
        models = httpx.get(base + "/v1/models", headers={"authorization": f"Bearer {first['API key']}"})
        assert models.status_code == 200
    finally:
        stop(proc)


def test_the_environment_wins_over_the_kept_secrets(tmp_path):
    proc, _, found, _ = start_sandbox(
        tmp_path,
        {"GROKGATE_API_KEYS": "sk-mine", "GROKGATE_ADMIN_KEY": "adm-mine", "CRON_SECRET": "cron-mine"},
    )
    stop(proc)
    assert found == {"API key": "sk-mine", "Admin key": "adm-mine", "Cron secret": "cron-mine"}


def test_the_cli_sees_the_sandbox_pool_with_sandbox(sandbox):
    _, _, _, workdir = sandbox
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROKGATE_")}
    listing = subprocess.run(
        [sys.executable, "-m", "functions.cli", "accounts", "list", "--sandbox"],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "4 account(s)" in listing and "sandbox" in listing


def test_claude_and_codex_model_names_work_with_no_model_setting(sandbox):
    base, key, _, _ = sandbox
    listed = httpx.get(base + "/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    aliases = {m["id"]: m["alias_for"] for m in listed if "alias_for" in m}
    assert aliases["claude-*"] == "grok-4.20-0309-reasoning"
    assert aliases["claude-haiku-*"] == "grok-4.20-0309-non-reasoning" and "gpt-*" in aliases
    one = httpx.get(base + "/v1/models/claude-haiku-4-5", headers={"Authorization": f"Bearer {key}"}).json()
    assert one["id"] == "claude-haiku-4-5" and one["alias_for"] == "grok-4.20-0309-non-reasoning"
    answer = httpx.post(
        base + "/v1/messages",
        headers={"x-api-key": key},
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        timeout=30,
    ).json()
    assert answer["model"] == "grok-4.20-0309-reasoning" and answer["content"][-1]["text"]
    chat = openai.OpenAI(base_url=base + "/v1", api_key=key).chat.completions.create(
        model="gpt-5.1-codex", messages=[{"role": "user", "content": "Hi"}]
    )
    assert chat.model == "grok-4.20-0309" and chat.choices[0].message.content
