"""The video state machine (infra/aws/video.asl.json): its structure, what moto's Step Functions
server makes of it (one execution per job name), and its task handlers run in the machine's order
against the simulator, with the job store on DynamoDB and the media in S3 (both moto's server).

moto can execute ASL, but its Lambda runs no code without Docker, so the tasks here are the real
handlers of functions/video_tasks.py called by a small walker of the machine's states: Task
(Parameters, ResultPath, Catch), Choice (StringEquals, And), Wait (SecondsPath), Succeed, Fail.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from core.accounts import NewAccount
from core.catalog import Tier
from core.services.videos import VideoRequest, VideoService, check_request
from functions import video_tasks
from infra.jobs.stepfunctions import start_sync

ASL = json.loads((Path(__file__).resolve().parents[2] / "infra" / "aws" / "video.asl.json").read_text())
TASKS = {
    "${VideoSubmitArn}": "submit",
    "${VideoPollArn}": "poll",
    "${VideoStoreArn}": "store",
    "${VideoFailArn}": "fail",
}
E1 = "/rest/app-chat/conversations/new"


def test_the_machine_is_well_formed():
    states = ASL["States"]
    assert ASL["StartAt"] == "Submit" and 0 < ASL["TimeoutSeconds"] <= 86400
    targets = {ASL["StartAt"]}
    for name, state in states.items():
        for key in ("Next", "Default"):
            if key in state:
                assert state[key] in states, (name, key)
                targets.add(state[key])
        for choice in state.get("Choices", []):
            assert choice["Next"] in states
            targets.add(choice["Next"])
        for catch in state.get("Catch", []):
            assert catch["Next"] in states
            targets.add(catch["Next"])
        if state["Type"] == "Task":
            assert state["Resource"] in TASKS, name
            if name != "MarkFailed":  # every working step fails into MarkFailed, then Failed
                assert [c["Next"] for c in state["Catch"]] == ["MarkFailed"]
                assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"]
                assert state["ResultPath"] == "$.step" and state["Parameters"] == {"job_id.$": "$.job_id"}
                assert state["Retry"] and state["TimeoutSeconds"] <= 900
        if state["Type"] not in ("Succeed", "Fail", "Choice"):
            assert "Next" in state, name
    assert targets == set(states), "unreachable states"
    assert states["Wait"]["SecondsPath"] == "$.step.wait_seconds"
    assert states["MarkFailed"]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"
    assert states["Done"]["Type"] == "Succeed"
    # The loop: Submit -> Route -> (Wait -> Poll -> Route)* -> Store -> Route -> Done.
    assert states["Poll"]["Next"] == states["Store"]["Next"] == states["Submit"]["Next"] == "Route"


@pytest.fixture
def aws(moto_server, monkeypatch):
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    return moto_server


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


def test_moto_accepts_the_machine_and_a_repeated_start_is_a_no_op(aws):
    sfn = _client("stepfunctions")
    definition = json.dumps(ASL)
    for placeholder in TASKS:
        definition = definition.replace(
            placeholder, f"arn:aws:lambda:us-east-1:123456789012:function:{TASKS[placeholder]}"
        )
    machine = sfn.create_state_machine(
        name=f"video-{uuid.uuid4().hex[:8]}",
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/video-machine",
        type="STANDARD",
    )["stateMachineArn"]
    job_id = "video_" + uuid.uuid4().hex
    first = start_sync(sfn, machine, job_id)
    assert first is not None and first.endswith(":" + job_id)
    assert start_sync(sfn, machine, job_id) == first  # the same name: the same execution, not a second
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [e["name"] for e in executions] == [job_id]
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"]) == {"job_id": job_id}


def _path(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.removeprefix("$.").split("."):
        node = node[part]
    return node


def _matches(rule: dict[str, Any], data: dict[str, Any]) -> bool:
    if "And" in rule:
        return all(_matches(r, data) for r in rule["And"])
    return _path(data, rule["Variable"]) == rule["StringEquals"]


def walk(job_id: str, *, repeat: str = "", max_states: int = 200) -> tuple[str, list[str]]:
    """Run the machine for one job; `repeat` names a task delivered twice (a Step Functions retry)."""
    data: dict[str, Any] = {"job_id": job_id}
    name, visited = ASL["StartAt"], []
    for _ in range(max_states):
        visited.append(name)
        state = ASL["States"][name]
        kind = state["Type"]
        if kind in ("Succeed", "Fail"):
            return name, visited
        if kind == "Task":
            params = {
                k.removesuffix(".$"): _path(data, v) if k.endswith(".$") else v
                for k, v in state["Parameters"].items()
            }
            handler = getattr(video_tasks, TASKS[state["Resource"]])
            try:
                result = handler(params, None)
                if name == repeat:
                    result = handler(params, None)
            except Exception as exc:  # what Step Functions would Catch after the retries
                data["error"] = {"Error": type(exc).__name__, "Cause": json.dumps({"errorMessage": str(exc)})}
                name = state["Catch"][0]["Next"]
                continue
            data[state["ResultPath"].removeprefix("$.")] = result
            name = state["Next"]
        elif kind == "Choice":
            name = next((c["Next"] for c in state["Choices"] if _matches(c, data)), state["Default"])
        elif kind == "Wait":
            time.sleep(min(float(_path(data, state["SecondsPath"])), 0.2))
            name = state["Next"]
    raise AssertionError(f"the machine did not end: {visited[-10:]}")


@pytest.fixture
def deployment(aws, sim, monkeypatch, tmp_path):
    """Environment as serverless.yml sets it: DynamoDB store and jobs, S3 media, runner stepfunctions."""
    suffix = uuid.uuid4().hex[:8]
    bucket = f"media-{suffix}"
    _client("s3").create_bucket(Bucket=bucket)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    env = {
        "GROKGATE_STORE": f"dynamodb://sfn-{suffix}",
        "GROKGATE_MEDIA": f"s3://{bucket}/media",
        "GROKGATE_VIDEO_RUNNER": "stepfunctions",
        "GROKGATE_VIDEO_STATE_MACHINE": "arn:aws:states:us-east-1:123456789012:stateMachine:video",
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_VIDEO_POLL_SECONDS": "0.05",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {"bucket": bucket, **env}


async def _create(prompt: str, token: str) -> str:
    from functions._wiring import Deps, load_settings

    deps = Deps(settings=load_settings())
    try:
        await deps.store.add([NewAccount(token, Tier.SUPER)], time.time())
        service: VideoService = deps.video_service
        request: VideoRequest = check_request(model=None, prompt=prompt, seconds=6, size="1280x720")
        return (await service.create(request, owner="o")).id
    finally:
        await deps.aclose()


async def _job(job_id: str) -> Any:
    from functions._wiring import Deps, load_settings

    deps = Deps(settings=load_settings())
    try:
        return await deps.job_store.get(job_id)
    finally:
        await deps.aclose()


def test_the_tasks_in_the_machines_order_make_the_video_and_store_it_in_s3(deployment, sim):
    import asyncio

    job_id = asyncio.run(_create("a heron at dawn", f"sim-super-sfn-{uuid.uuid4().hex[:6]}"))
    end, visited = walk(job_id)
    assert visited == ["Submit", "Route", "Store", "Route", "Done"], asyncio.run(_job(job_id))
    job = asyncio.run(_job(job_id))
    assert job.status.value == "completed" and job.progress == 100
    keys = [o["Key"] for o in _client("s3").list_objects_v2(Bucket=deployment["bucket"])["Contents"]]
    assert any(job.result["video"] in key for key in keys) and all(k.startswith("media/") for k in keys)
    body = _client("s3").get_object(
        Bucket=deployment["bucket"], Key=next(k for k in keys if job.result["video"] in k)
    )
    assert body["Body"].read()[4:8] == b"ftyp"
    assert sum(1 for r in sim.log if r.path == E1 and "a heron at dawn" in r.json["message"]) == 1
    # Submit delivered twice (a Step Functions retry): the second delivery takes the next step
    # (store) instead of generating again.
    again = asyncio.run(_create("a crane at noon", f"sim-super-sfn-{uuid.uuid4().hex[:6]}"))
    end, visited = walk(again, repeat="Submit")
    assert end == "Done" and "Store" not in visited
    assert sum(1 for r in sim.log if r.path == E1 and "a crane at noon" in r.json["message"]) == 1
    assert asyncio.run(_job(again)).status.value == "completed"


def test_a_submitted_job_is_never_resubmitted_and_fails_at_the_total_timeout(deployment, sim, monkeypatch):
    import asyncio

    from functions._wiring import Deps, load_settings

    monkeypatch.setenv("GROKGATE_VIDEO_TIMEOUT", "1.5")
    job_id = asyncio.run(_create("an owl at dusk", f"sim-super-sfn-{uuid.uuid4().hex[:6]}"))

    async def cut_off() -> None:
        # A Submit task recorded its E1 and died before the upstream answered: the job says
        # submitted, but no video will ever appear in the account's assets.
        deps = Deps(settings=load_settings())
        try:
            store = deps.job_store
            now = time.time()
            claim = await store.claim(job_id, now=now, ttl=60, max_attempts=3)
            account = (await deps.store.list()).items[0].id
            state = {
                "stage": "submit",
                "submitted": True,
                "submitted_at": now,
                "account_id": account,
                "video_id": "",
            }
            await store.advance(claim, state, progress=1, now=now, due_at=now)
        finally:
            await deps.aclose()

    asyncio.run(cut_off())
    end, visited = walk(job_id)
    assert end == "Failed" and visited[:4] == ["Submit", "Route", "Wait", "Poll"]
    assert "MarkFailed" not in visited  # the step itself failed the job; nothing was caught
    job = asyncio.run(_job(job_id))
    assert job.status.value == "failed" and job.error_code == "video_timeout"
    assert not any(r.path == E1 and "an owl at dusk" in r.json["message"] for r in sim.log)


def test_a_failing_job_ends_in_failed_with_the_upstreams_reason(deployment, sim):
    import asyncio

    failing = asyncio.run(_create("a bat #sim moderated", f"sim-super-sfn-{uuid.uuid4().hex[:6]}"))
    end, visited = walk(failing)
    assert end == "Failed" and visited == ["Submit", "Route", "Failed"]
    job = asyncio.run(_job(failing))
    assert job.status.value == "failed" and job.error_code == "content_policy_violation"


def test_the_catch_target_fails_the_job_with_the_machines_error(deployment, sim):
    import asyncio

    job_id = asyncio.run(_create("a lark", f"sim-super-sfn-{uuid.uuid4().hex[:6]}"))
    cause = json.dumps({"errorMessage": "Task timed out after 900.00 seconds"})
    out = video_tasks.fail({"job_id": job_id, "error": {"Error": "States.Timeout", "Cause": cause}})
    assert out["failed_now"] is True
    job = asyncio.run(_job(job_id))
    assert job.status.value == "failed" and "Task timed out" in job.error_message


def test_the_create_route_starts_one_execution_named_after_the_job(deployment, sim, tmp_path, monkeypatch):
    import httpx

    from tests.fixtures.gateway import start_gateway

    sfn = _client("stepfunctions")
    definition = json.dumps(ASL)
    for placeholder, task in TASKS.items():
        definition = definition.replace(placeholder, f"arn:aws:lambda:us-east-1:123456789012:function:{task}")
    machine = sfn.create_state_machine(
        name=f"video-{uuid.uuid4().hex[:8]}",
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/r",
    )["stateMachineArn"]
    env = {k: v for k, v in deployment.items() if k.startswith("GROKGATE_")}
    gw = start_gateway({**env, "GROKGATE_VIDEO_STATE_MACHINE": machine, "GROKGATE_API_KEYS": "k"}, tmp_path)
    try:
        headers = {"Authorization": "Bearer k", "Idempotency-Key": "one"}
        first = httpx.post(gw.url + "/v1/videos", headers=headers, json={"prompt": "a swan"}, timeout=30)
        again = httpx.post(gw.url + "/v1/videos", headers=headers, json={"prompt": "a swan"}, timeout=30)
        assert first.status_code == again.status_code == 200, first.text
        assert first.json()["id"] == again.json()["id"] and first.json()["status"] == "queued"
    finally:
        gw.stop()
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [e["name"] for e in executions] == [first.json()["id"]]
