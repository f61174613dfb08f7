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
    store: AccountStore = open_by_url(
        settings.store,
        settings,
        environ,
        setting="GROKGATE_STORE",
        what="store",
        sqlite="infra.state.sqlite:SQLiteAccountStore",
        redis="infra.state.redis:RedisAccountStore",
        dynamodb="infra.state.dynamodb:DynamoDBAccountStore",
    )
    return store


def open_by_url(
    url: str,
    settings: Settings,
    environ: Mapping[str, str] | None,
    *,
    setting: str,
    what: str,
    sqlite: str,
    redis: str,
    dynamodb: str,
) -> Any:
    """The adapter ("module:Class") that `url`'s scheme names, built from the URL (see the
    module's docstring); only that adapter's module is imported. `setting` and `what` name the
    setting and the kind of store in a `SettingsError`."""
    if url.startswith("sqlite:///"):
        return _adapter(sqlite).from_url(url)
    if url.startswith(("redis://", "rediss://")):
        return _adapter(redis).from_url(url, timeout=STORE_TIMEOUT)
    if url == "upstash":
        if not settings.upstash_redis_rest_url or not settings.upstash_redis_rest_token:
            raise SettingsError(f"{setting}=upstash: set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN")
        return _adapter(redis).upstash(
            settings.upstash_redis_rest_url.rstrip("/"),
            settings.upstash_redis_rest_token,
            timeout=STORE_TIMEOUT,
        )
    if url.startswith("dynamodb://"):
        if not url.removeprefix("dynamodb://").strip("/"):
            raise SettingsError(f"{setting}: expected dynamodb://TABLE (the table name is missing)")
        return _adapter(dynamodb).from_url(url, os.environ if environ is None else environ)
    raise SettingsError(f"{setting}: unknown {what} {url.split(':', 1)[0]!r}")


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
