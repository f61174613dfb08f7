"""GROKGATE_JOBS defaults to the account store's backend, so a deployment configures nothing more."""

from __future__ import annotations

import pytest

from core.settings import Settings, SettingsError
from infra.jobs.factory import job_store_url, open_job_store


@pytest.mark.parametrize(
    ("store", "jobs"),
    [
        ("sqlite:///./data/g.db", "sqlite:///./data/g.db"),
        ("redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"),
        ("rediss://h:6380/0", "rediss://h:6380/0"),
        ("upstash", "upstash"),
        ("dynamodb://grokgate-prod-state", "dynamodb://grokgate-prod-state-jobs"),
    ],
)
def test_the_job_store_follows_the_account_store(store, jobs):
    assert job_store_url(Settings.from_env({"GROKGATE_STORE": store})) == jobs


def test_an_explicit_job_store_wins_and_a_bad_one_is_refused():
    settings = Settings.from_env({"GROKGATE_STORE": "upstash", "GROKGATE_JOBS": "dynamodb://jobs"})
    assert job_store_url(settings) == "dynamodb://jobs"
    with pytest.raises(SettingsError, match="GROKGATE_JOBS"):
        Settings.from_env({"GROKGATE_JOBS": "postgres://x"})
    with pytest.raises(SettingsError, match="UPSTASH_REDIS_REST_URL"):
        open_job_store(Settings.from_env({"GROKGATE_STORE": "upstash"}))
