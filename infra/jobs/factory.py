"""`GROKGATE_JOBS` (or, unset, the account store's backend) -> a `JobStore`, imported when chosen.

sqlite:///path      the embedded file (the account store's file by default: its own table)
redis://…  rediss://…  upstash    the account store's Redis (keys `job:*`, `jobs:*` beside its own)
dynamodb://TABLE    a table of its own; by default the account table's name + `-jobs`
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from core.ports import JobStore
from core.settings import Settings, SettingsError
from infra.state.factory import STORE_TIMEOUT

JOBS_TABLE_SUFFIX = "-jobs"


def job_store_url(settings: Settings) -> str:
    """The job store a deployment uses: `GROKGATE_JOBS`, else the one beside its account store."""
    if settings.jobs:
        return settings.jobs
    store = settings.store
    if store.startswith("dynamodb://"):
        return store.rstrip("/") + JOBS_TABLE_SUFFIX
    return store


def open_job_store(settings: Settings, environ: Mapping[str, str] | None = None) -> JobStore:
    url = job_store_url(settings)
    env = os.environ if environ is None else environ
    if url.startswith("sqlite:///"):
        from infra.jobs.sqlite import SQLiteJobStore

        return SQLiteJobStore.from_url(url)
    if url.startswith(("redis://", "rediss://")):
        from infra.jobs.redis import RedisJobStore

        return RedisJobStore.from_url(url, timeout=STORE_TIMEOUT)
    if url == "upstash":
        if not settings.upstash_redis_rest_url or not settings.upstash_redis_rest_token:
            raise SettingsError(
                "GROKGATE_JOBS=upstash: set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN"
            )
        from infra.jobs.redis import RedisJobStore

        return RedisJobStore.upstash(
            settings.upstash_redis_rest_url.rstrip("/"),
            settings.upstash_redis_rest_token,
            timeout=STORE_TIMEOUT,
        )
    if url.startswith("dynamodb://"):
        if not url.removeprefix("dynamodb://").strip("/"):
            raise SettingsError("GROKGATE_JOBS: expected dynamodb://TABLE (the table name is missing)")
        from infra.jobs.dynamodb import DynamoDBJobStore

        return DynamoDBJobStore.from_url(url, env)
    raise SettingsError(f"GROKGATE_JOBS: unknown job store {url.split(':', 1)[0]!r}")
