"""Dependencies that fail, with real servers stopped and restarted (issue 18, deliverable 3).

* The store (a redis-server of the test's own): killed, a request is a prompt enveloped 503 in
  each dialect; restarted, the gateway serves again. Frozen (SIGSTOP) once the first byte is
  out, the stream ends with the dialect's terminal error. A release lost while it was frozen is
  recovered by the lease TTL once it is back (SIGCONT).
* The media folder (not a folder any more) and S3 (moto's server stopped): an enveloped 503,
  never a 500.
* The upstream (the simulator) sending its headers and then nothing (`delay_ms` per token): the read timeout, a 504 before
  the first byte and the terminal error after it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.accounts import NewAccount, account_id_for
from core.catalog import Tier
from core.errors import StoreUnavailable
from core.settings import Settings
from functions._wiring import Deps
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway
from tests.fixtures.stores import MotoServer, RedisServer, _wait_for_port

MODEL = "grok-4.20-0309-non-reasoning"
TOKEN = "sim-super-unlimited-df1"
BOUND = 60.0


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer().start()
    yield server
    server.stop()


class OwnRedis(RedisServer):
    """A redis-server this test may kill, freeze and restart on the same port."""

    def kill(self) -> None:
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(10)
        self._proc = None

    def restart(self) -> None:
        dir_ = self._dir
        self.start()
        self._dir = dir_

    def freeze(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)


@pytest.fixture
def redis() -> Iterator[OwnRedis]:
    server = OwnRedis().start()
    yield server
    if server._proc is not None:
        server.thaw()
    server.stop()


def redis_gateway(redis: OwnRedis, sim: SimServer, tmp_path: Path, **env: str) -> Gateway:
    from functions.local import create_app

    settings = Settings.from_env(
        {
            "GROKGATE_STORE": redis.url,
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ASSETS_URL": sim.url,
            "GROKGATE_MEDIA": str(tmp_path / "media"),
            "GROKGATE_RETRY_BUDGET": "0",
            **{f"GROKGATE_{k.upper()}": v for k, v in env.items()},
        }
    )
    deps = Deps(settings=settings)
    gateway = Gateway(create_app(deps), deps).start()
    gateway.call(deps.store.add([NewAccount(TOKEN, Tier.SUPER)], time.time()))
    return gateway


def chat(gw: Gateway, prompt: str = "Hi #sim tokens=3 think=0", stream: bool = False) -> httpx.Response:
    body = {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=BOUND)


def test_a_store_that_is_down_is_a_prompt_enveloped_503_and_serving_resumes_when_it_is_back(
    redis: OwnRedis, sim: SimServer, tmp_path: Path
) -> None:
    gw = redis_gateway(redis, sim, tmp_path)
    try:
        assert chat(gw).status_code == 200
        redis.kill()
        r = chat(gw)
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable", r.text
        m = httpx.post(
            gw.url + "/v1/messages",
            json={"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
            timeout=BOUND,
        )
        assert m.status_code == 503 and m.json()["error"]["type"] == "overloaded_error", m.text
        assert httpx.get(gw.url + "/health", timeout=BOUND).status_code == 503
        redis.restart()  # empty (no persistence): the pool is imported again
        _wait_for_port(redis.port)
        gw.call(gw.deps.store.add([NewAccount(TOKEN, Tier.SUPER)], time.time()))
        assert chat(gw).status_code == 200
    finally:
        gw.stop()


def test_a_store_that_freezes_after_the_first_byte_ends_the_stream_with_the_terminal_error(
    redis: OwnRedis, sim: SimServer, tmp_path: Path
) -> None:
    gw = redis_gateway(redis, sim, tmp_path, first_byte_seconds="0.2")
    try:
        redis.freeze()  # the lease waits for the store's deadline; the comment goes out meanwhile
        with httpx.stream(
            "POST",
            gw.url + "/v1/chat/completions",
            json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            timeout=BOUND,
        ) as r:
            assert r.status_code == 200
            raw = b"".join(r.iter_raw())
        assert raw.startswith(b": waiting")
        assert b"store_unavailable" in raw and raw.rstrip().endswith(b"data: [DONE]")
    finally:
        redis.thaw()
        gw.stop()


def test_a_release_lost_while_the_store_was_frozen_is_recovered_by_the_lease_ttl(
    redis: OwnRedis, sim: SimServer, tmp_path: Path
) -> None:
    gw = redis_gateway(redis, sim, tmp_path, lease_ttl="3")
    account = account_id_for(TOKEN)
    try:
        body = {
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi #sim tokens=20 delay_ms=50 think=0"}],
        }
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=BOUND) as r:
            lines = r.iter_lines()
            next(line for line in lines if line.startswith("data: "))
            redis.freeze()  # the release at the end of this answer cannot reach the store
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"  # the client got its whole answer all the same
        time.sleep(6)  # past the store's 5 s deadline: the release has failed (and been logged)
        redis.thaw()
        held = gw.call(gw.deps.store.get(account))
        assert held is not None and held.in_flight == 1  # the lost release
        deadline = time.monotonic() + BOUND
        while True:  # lease_ttl later, the next lease reclaims it
            assert chat(gw).status_code == 200
            account_now = gw.call(gw.deps.store.get(account))
            if account_now.in_flight == 0:
                break
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        gw.stop()


def test_a_media_folder_that_fails_is_an_enveloped_503(sim: SimServer, tmp_path: Path) -> None:
    broken = tmp_path / "media"
    broken.write_text("a file where the folder should be")
    gw = start_gateway(
        {
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ASSETS_URL": sim.url,
            "GROKGATE_MEDIA": str(broken),
            "GROKGATE_MEDIA_SECRET": "s" * 32,
            "GROKGATE_RETRY_BUDGET": "0",
        },
        tmp_path,
        [("sim-super-unlimited-df2", Tier.SUPER)],
    )
    try:
        r = httpx.post(
            gw.url + "/v1/images/generations",
            json={"model": "grok-imagine-image", "prompt": "a red square #sim image=1", "n": 1},
            timeout=BOUND,
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "media_unavailable"
    finally:
        gw.stop()


async def test_s3_stopped_is_store_unavailable_and_back_it_serves() -> None:
    import boto3
    from botocore.config import Config

    from infra.media.s3 import S3MediaStore

    moto = MotoServer().start()
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=moto.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}, connect_timeout=2),
    )
    client.create_bucket(Bucket="gg-failing")
    store = S3MediaStore("gg-failing", "x/", client=client)
    media_id = await store.put(b"\x89PNG....", "image/png")
    port = moto.port
    moto.stop()
    with pytest.raises(StoreUnavailable, match="media bucket is unavailable"):
        await store.put(b"\x89PNG....", "image/png")
    with pytest.raises(StoreUnavailable):
        await store.open(media_id)
    again = MotoServer()
    again.port, again.url = port, moto.url
    again.start()
    try:
        client.create_bucket(Bucket="gg-failing")  # moto keeps nothing across restarts
        assert await store.put(b"\x89PNG....", "image/png")
    finally:
        again.stop()


@pytest.fixture
def slow_gw(sim: SimServer, tmp_path: Path) -> Iterator[Any]:
    started: list[Gateway] = []

    def start(**env: str) -> Gateway:
        settings = {
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ASSETS_URL": sim.url,
            "GROKGATE_RETRY_BUDGET": "0",
            "GROKGATE_READ_TIMEOUT": "1",
            "GROKGATE_CONNECT_TIMEOUT": "1",  # curl's silence limit is connect + read: 2 s
            **{f"GROKGATE_{k.upper()}": v for k, v in env.items()},
        }
        gw = start_gateway(settings, tmp_path / str(len(started)), [("sim-super-unlimited-df3", Tier.SUPER)])
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def test_an_upstream_that_hangs_after_its_headers_is_a_504_before_the_first_byte(slow_gw: Any) -> None:
    gw = slow_gw(first_byte_seconds="0")
    r = chat(gw, "Hi #sim tokens=2 think=0 delay_ms=25000", stream=True)
    assert r.status_code == 504, r.text
    assert r.json()["error"]["type"] == "timeout"


def test_an_upstream_that_hangs_after_the_first_byte_ends_with_the_terminal_error(slow_gw: Any) -> None:
    gw = slow_gw(first_byte_seconds="0.2")
    with httpx.stream(
        "POST",
        gw.url + "/v1/messages",
        json={
            "model": MODEL,
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi #sim tokens=2 think=0 delay_ms=25000"}],
        },
        timeout=BOUND,
    ) as r:
        assert r.status_code == 200
        raw = b"".join(r.iter_raw())
    assert raw.startswith(b": waiting") and b"event: error" in raw
