"""GROKGATE_STORE selects the adapter; an unreachable store is a quick StoreUnavailable, never a hang."""

from __future__ import annotations

import time

import pytest

from core.errors import StoreUnavailable
from core.settings import Settings, SettingsError
from infra.state.dynamodb import DynamoDBAccountStore
from infra.state.factory import open_account_store
from infra.state.redis import RedisAccountStore
from infra.state.sqlite import SQLiteAccountStore
from tests.fixtures.stores import free_port


@pytest.fixture
def aws(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)


async def test_each_url_opens_its_store(tmp_path, redis_server, upstash_shim, moto_server, aws):
    cases = [
        ({"GROKGATE_STORE": f"sqlite:///{tmp_path}/pool.db"}, {}, SQLiteAccountStore),
        ({"GROKGATE_STORE": redis_server.url}, {}, RedisAccountStore),
        (
            {
                "GROKGATE_STORE": "upstash",
                "UPSTASH_REDIS_REST_URL": upstash_shim.url + "/",
                "UPSTASH_REDIS_REST_TOKEN": upstash_shim.token,
            },
            {},
            RedisAccountStore,
        ),
        (
            {"GROKGATE_STORE": "dynamodb://factory-table"},
            {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_DYNAMODB": moto_server.url},
            DynamoDBAccountStore,
        ),
    ]
    for env, aws_env, kind in cases:
        store = open_account_store(Settings.from_env(env), aws_env)
        try:
            assert isinstance(store, kind)
            await store.ping()
            assert (await store.list()).items == []
        finally:
            await store.aclose()


def test_configuration_errors_name_the_variable():
    with pytest.raises(SettingsError, match="UPSTASH_REDIS_REST_URL"):
        open_account_store(Settings.from_env({"GROKGATE_STORE": "upstash"}), {})
    with pytest.raises(SettingsError, match="dynamodb://TABLE"):
        open_account_store(Settings.from_env({"GROKGATE_STORE": "dynamodb://"}), {})


async def test_an_unreachable_store_fails_fast(aws):
    dead = f"127.0.0.1:{free_port()}"
    settings = [
        (Settings.from_env({"GROKGATE_STORE": f"redis://{dead}/0"}), {}),
        (
            Settings.from_env(
                {
                    "GROKGATE_STORE": "upstash",
                    "UPSTASH_REDIS_REST_URL": f"http://{dead}",
                    "UPSTASH_REDIS_REST_TOKEN": "t",
                }
            ),
            {},
        ),
        (
            Settings.from_env({"GROKGATE_STORE": "dynamodb://t"}),
            {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{dead}"},
        ),
    ]
    for s, env in settings:
        store = open_account_store(s, env)
        started = time.monotonic()
        try:
            with pytest.raises(StoreUnavailable):
                await store.ping()
            with pytest.raises(StoreUnavailable):
                await store.get("acc_x")
        finally:
            await store.aclose()
        assert time.monotonic() - started < 15
