"""`GROKGATE_JOBS` (or, unset, the account store's backend) -> a `JobStore`, imported when chosen.

sqlite:///path      the embedded file (the account store's file by default: its own table)
redis://…  rediss://…  upstash    the account store's Redis (keys `job:*`, `jobs:*` beside its own)
dynamodb://TABLE    a table of its own; by default the account table's name + `-jobs`
"""

from __future__ import annotations

from collections.abc import Mapping

from core.ports import JobStore
from core.settings import Settings
from infra.state.factory import open_by_url

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
    store: JobStore = open_by_url(
        job_store_url(settings),
        settings,
        environ,
        setting="GROKGATE_JOBS",
        what="job store",
        sqlite="infra.jobs.sqlite:SQLiteJobStore",
        redis="infra.jobs.redis:RedisJobStore",
        dynamodb="infra.jobs.dynamodb:DynamoDBJobStore",
    )
    return store
