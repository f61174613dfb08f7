"""`GROKGATE_STORE` -> an `AccountStore`. Each adapter is imported only when chosen.

sqlite:///path          the embedded SQLite file (relative; sqlite:////abs for absolute)
redis://host:port/db    Redis or Valkey over TCP        rediss://…   the same over TLS
upstash                 Upstash REST, from UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN
dynamodb://TABLE        DynamoDB; region from AWS_REGION / AWS_DEFAULT_REGION, endpoint from
                        AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL (moto, DynamoDB Local)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from core.ports import AccountStore, RecordStore, ResponseStore
from core.settings import Settings, SettingsError

STORE_TIMEOUT = 5.0  # seconds one store call may take before it is StoreUnavailable


def open_account_store(settings: Settings, environ: Mapping[str, str] | None = None) -> AccountStore:
    """The store `settings.store` names. Configuration errors raise `SettingsError` at once."""
    url = settings.store
    env = os.environ if environ is None else environ
    if url.startswith("sqlite:///"):
        from infra.state.sqlite import SQLiteAccountStore

        return SQLiteAccountStore.from_url(url)
    if url.startswith(("redis://", "rediss://")):
        from infra.state.redis import RedisAccountStore

        return RedisAccountStore.from_url(url, timeout=STORE_TIMEOUT)
    if url == "upstash":
        if not settings.upstash_redis_rest_url or not settings.upstash_redis_rest_token:
            raise SettingsError(
                "GROKGATE_STORE=upstash: set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN"
            )
        from infra.state.redis import RedisAccountStore

        return RedisAccountStore.upstash(
            settings.upstash_redis_rest_url.rstrip("/"),
            settings.upstash_redis_rest_token,
            timeout=STORE_TIMEOUT,
        )
    if url.startswith("dynamodb://"):
        if not url.removeprefix("dynamodb://").strip("/"):
            raise SettingsError("GROKGATE_STORE: expected dynamodb://TABLE (the table name is missing)")
        from infra.state.dynamodb import DynamoDBAccountStore

        return DynamoDBAccountStore.from_url(url, dict(env))
    raise SettingsError(f"GROKGATE_STORE: unknown store {url.split(':', 1)[0]!r}")


def records_for(store: AccountStore) -> RecordStore:
    """The `RecordStore` kept beside `store`: the same file, Redis prefix or DynamoDB table.
    Beside a sealed store, the secrets in its records (clearance cookies) are sealed too."""
    sealer = getattr(store, "sealer", None)
    records = _records_for(getattr(store, "inner", store))
    if sealer is None:
        return records
    from infra.state.sealed import SealedRecordStore

    return SealedRecordStore(records, sealer)


def _beside(store: AccountStore, sqlite: str, redis: str, dynamodb: str) -> Any:
    """The adapter named for `store`'s backend ("module:Class"), built on the same file, Redis
    transport and prefix, or DynamoDB store; only that adapter's module is imported."""
    from infra.state.sqlite import SQLiteAccountStore

    if isinstance(store, SQLiteAccountStore):
        return _adapter(sqlite)(store.path)
    from infra.state.redis import RedisAccountStore

    if isinstance(store, RedisAccountStore):
        return _adapter(redis)(store._t, store.prefix)
    from infra.state.dynamodb import DynamoDBAccountStore

    if isinstance(store, DynamoDBAccountStore):
        return _adapter(dynamodb)(store)
    raise TypeError(f"no {sqlite.rsplit(':', 1)[1]} beside {type(store).__name__}")


def _adapter(name: str) -> Any:
    module, _, cls = name.partition(":")
    return getattr(importlib.import_module(module), cls)


def _records_for(store: AccountStore) -> RecordStore:
    records: RecordStore = _beside(
        store,
        "infra.state.sqlite_records:SQLiteRecordStore",
        "infra.state.redis_records:RedisRecordStore",
        "infra.state.dynamodb_records:DynamoDBRecordStore",
    )
    return records


def responses_for(store: AccountStore) -> ResponseStore:
    """The `ResponseStore` kept beside `store`: the same file, Redis prefix or DynamoDB table."""
    responses: ResponseStore = _beside(
        getattr(store, "inner", store),
        "infra.state.sqlite_responses:SQLiteResponseStore",
        "infra.state.redis_responses:RedisResponseStore",
        "infra.state.dynamodb_responses:DynamoDBResponseStore",
    )
    return responses
