"""`osls package` runs offline and compiles serverless.yml into the CloudFormation we mean to deploy.

Runs the pinned osls from node_modules (`make node-deps`, a prerequisite of `make test`) with
dummy credentials and no network, then reads the compiled template.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.aws import bundle

ROOT = Path(__file__).resolve().parents[2]
OSLS = ROOT / "node_modules" / ".bin" / "osls"
STREAMING = {"chat": "functions.chat:app"}
# serverless.yml function name -> the module whose `handler` it runs (Mangum, or a plain handler).
BUFFERED = {"models": "models", "images": "images", "videos": "videos", "admin": "admin"}
SCHEDULED = {"videoWorker": "video_worker", "cron": "cron"}
# The video state machine's tasks: serverless.yml function name -> handler.
TASKS = {
    "videoSubmit": "functions/video_tasks.submit",
    "videoPoll": "functions/video_tasks.poll",
    "videoStore": "functions/video_tasks.store",
    "videoFail": "functions/video_tasks.fail",
}
FRONT_DOOR = {
    "/v1/chat/*": "chat",
    "/v1/responses*": "chat",
    "/v1/messages*": "chat",
    "/v1/images/*": "images",
    "/v1/files/*": "images",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("node") is None or not OSLS.exists():
        pytest.fail(
            "osls is not installed: run `make node-deps` (npm ci from package-lock.json); "
            "the AWS packaging test cannot run without it",
            pytrace=False,
        )
    if not bundle.ARTIFACT.exists():
        bundle.build_zip()
    out = tmp_path_factory.mktemp("sls")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(out),
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_REGION": "eu-west-1",
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        # Any AWS call would fail fast instead of hanging: nothing listens here.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    result = subprocess.run(
        [str(OSLS), "package", "--stage", "test", "--package", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"osls package failed:\n{result.stdout}\n{result.stderr}"
    data: dict[str, Any] = json.loads((out / "cloudformation-template-update-stack.json").read_text())
    return data


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def logical(name: str) -> str:
    return name[0].upper() + name[1:]


def function(template: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][f"{logical(name)}LambdaFunction"]["Properties"]
    return props


def walk(node: Any, key: str) -> list[Any]:
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found += walk(v, key)
    elif isinstance(node, list):
        for item in node:
            found += walk(item, key)
    return found


def test_every_function_is_python312_on_arm64(template):
    functions = resources(template, "AWS::Lambda::Function")
    names = {name.removesuffix("LambdaFunction") for name in functions}
    assert names == {logical(n) for n in (*STREAMING, *BUFFERED, *SCHEDULED, *TASKS)}
    for resource in functions.values():
        props = resource["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]


def test_streaming_functions_run_uvicorn_behind_lwa_on_a_streaming_function_url(template):
    urls = resources(template, "AWS::Lambda::Url")
    for name, app in STREAMING.items():
        props = function(template, name)
        assert props["Handler"] == "run.sh"
        env = props["Environment"]["Variables"]
        assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
        assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
        assert env["AWS_LWA_READINESS_CHECK_PROTOCOL"] == "tcp"  # no HTTP request during INIT
        assert env["ASGI_APP"] == app
        assert any(":layer:LambdaAdapterLayerArm64:" in layer for layer in props["Layers"])
        url = urls[f"{logical(name)}LambdaFunctionUrl"]["Properties"]
        assert url["InvokeMode"] == "RESPONSE_STREAM"
        assert url["TargetFunctionArn"] == {"Fn::GetAtt": [f"{logical(name)}LambdaFunction", "Arn"]}
    for name, resource in urls.items():
        if name.removesuffix("LambdaFunctionUrl").lower() not in STREAMING:
            assert resource["Properties"].get("InvokeMode", "BUFFERED") == "BUFFERED", name
        assert props["Timeout"] == 900


def test_buffered_functions_use_mangum_handlers_that_exist(template):
    import importlib

    for name, module_name in {**BUFFERED, **SCHEDULED}.items():
        handler = function(template, name)["Handler"]
        assert handler == f"functions/{module_name}.handler"
        assert "AWS_LWA_INVOKE_MODE" not in function(template, name)["Environment"]["Variables"]
        module = importlib.import_module(f"functions.{module_name}")
        assert callable(getattr(module, "handler", None)), f"functions/{module_name}.py has no Lambda handler"


def test_http_api_routes_go_to_the_buffered_functions(template):
    routes = {r["Properties"]["RouteKey"] for r in resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert {"GET /v1/models", "GET /v1/models/{model_id+}", "GET /health"} <= routes
    assert {"POST /v1/videos", "GET /v1/videos/{proxy+}"} <= routes
    assert not any("/v1/chat" in route or "/v1/messages" in route for route in routes)


def test_cron_runs_on_a_schedule(template):
    rules = resources(template, "AWS::Events::Rule")
    assert rules, "no schedule rule"
    targets = [t for rule in rules.values() for t in rule["Properties"]["Targets"]]
    for name in SCHEDULED:
        assert any(t["Arn"] == {"Fn::GetAtt": [f"{logical(name)}LambdaFunction", "Arn"]} for t in targets)
    for rule in rules.values():
        assert rule["Properties"]["ScheduleExpression"].startswith(("rate(", "cron("))
        assert rule["Properties"]["State"] == "ENABLED"


def test_no_wildcard_iam_actions_and_scoped_resources(template):
    statements = []
    for role in resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    assert statements
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"wildcard action {action}"
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert "*" not in targets, f"unscoped resource for {actions}"
    granted = {
        a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"dynamodb:UpdateItem", "s3:GetObject", "ssm:GetParameter"} <= granted


def test_environment_is_wired_to_the_stack_resources_and_holds_no_secret(template):
    table = resources(template, "AWS::DynamoDB::Table")["StateTable"]["Properties"]
    bucket = resources(template, "AWS::S3::Bucket")["MediaBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    for resource in resources(template, "AWS::Lambda::Function").values():
        props = resource["Properties"]
        env = props["Environment"]["Variables"]
        assert env["GROKGATE_STORE"] == f"dynamodb://{table['TableName']}"
        assert env["GROKGATE_MEDIA"].startswith(f"s3://{bucket['BucketName']}/")
        assert env["GROKGATE_ENV"] == "production"
        assert env["SSM_PARAMETER_PREFIX"] == "/grokgate/test/"
        assert {"GROKGATE_API_KEYS", "GROKGATE_ADMIN_KEY", "GROKGATE_SECRET_KEY"} <= set(
            env["SSM_PARAMETER_NAMES"].split(",")
        )
        assert not {"GROKGATE_API_KEYS", "GROKGATE_ADMIN_KEY", "CRON_SECRET"} & set(env)
        assert any("AWS-Parameters-and-Secrets-Lambda-Extension" in layer for layer in props["Layers"])


def test_one_front_door_sends_chat_paths_to_the_streaming_url(template):
    config = resources(template, "AWS::CloudFront::Distribution")["FrontDoor"]["Properties"]
    config = config["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert "ChatLambdaFunctionUrl" in json.dumps(origins["chat"]["DomainName"])
    assert "HttpApi" in json.dumps(origins["api"]["DomainName"])
    behaviours = {b["PathPattern"]: b["TargetOriginId"] for b in config["CacheBehaviors"]}
    assert behaviours == FRONT_DOOR
    assert "ImagesLambdaFunctionUrl" in json.dumps(origins["images"]["DomainName"])
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "api"


def test_artifact_holds_the_code_and_an_executable_start_script(tmp_path):
    artifact = bundle.build_zip(tmp_path / "code.zip", deps=tmp_path / "no-deps")
    with zipfile.ZipFile(artifact) as archive:
        names = set(archive.namelist())
        mode = archive.getinfo("run.sh").external_attr >> 16
    assert mode & stat.S_IXUSR
    assert {"functions/models.py", "functions/_lambda.py", "core/settings.py"} <= names
    assert {
        "functions/console/index.html",
        "functions/console/app.js",
        "functions/console/style.css",
    } <= names
    assert not any(
        n.startswith(("tests/", "infra/sim/", "node_modules/")) or "__pycache__" in n for n in names
    )
    again = bundle.build_zip(tmp_path / "again.zip", deps=tmp_path / "no-deps")
    assert again.read_bytes() == artifact.read_bytes()  # reproducible: same tree, same code hash


def test_artifact_imports_on_its_own(tmp_path):
    """The zip is self-sufficient: every deployable imports from it (deps from this venv)."""
    artifact = bundle.build_zip(tmp_path / "code.zip", deps=tmp_path / "no-deps")
    root = tmp_path / "task"
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(root)
    modules = [
        f"functions.{name}" for name in (*BUFFERED.values(), *SCHEDULED.values(), *STREAMING, "video_tasks")
    ]
    code = "import importlib, sys\n" + "".join(
        f"m = importlib.import_module({m!r}); assert m.__file__.startswith(sys.argv[1]), m.__file__\n"
        for m in modules
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(root)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_table_is_the_one_the_dynamodb_store_declares(template):
    from infra.state.dynamodb_codec import TIME_TO_LIVE, table_definition

    table = resources(template, "AWS::DynamoDB::Table")["StateTable"]["Properties"]
    expected = table_definition(table["TableName"])

    def by_name(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        return {item[key]: item for item in items}

    assert table["KeySchema"] == expected["KeySchema"]
    assert table["BillingMode"] == expected["BillingMode"]
    assert by_name(table["AttributeDefinitions"], "AttributeName") == by_name(
        expected["AttributeDefinitions"], "AttributeName"
    )
    assert by_name(table["GlobalSecondaryIndexes"], "IndexName") == by_name(
        expected["GlobalSecondaryIndexes"], "IndexName"
    )
    assert table["TimeToLiveSpecification"] == TIME_TO_LIVE


def test_the_video_state_machine_is_the_checked_in_asl_wired_to_its_task_functions(template):
    import importlib

    machines = resources(template, "AWS::StepFunctions::StateMachine")
    props = machines["VideoStateMachine"]["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    asl = json.loads((ROOT / "infra" / "aws" / "video.asl.json").read_text())
    assert props["Definition"] == asl
    assert props["DefinitionSubstitutions"] == {
        "VideoSubmitArn": {"Fn::GetAtt": ["VideoSubmitLambdaFunction", "Arn"]},
        "VideoPollArn": {"Fn::GetAtt": ["VideoPollLambdaFunction", "Arn"]},
        "VideoStoreArn": {"Fn::GetAtt": ["VideoStoreLambdaFunction", "Arn"]},
        "VideoFailArn": {"Fn::GetAtt": ["VideoFailLambdaFunction", "Arn"]},
    }
    for name, handler in TASKS.items():
        assert function(template, name)["Handler"] == handler
        module, attr = handler.replace("/", ".").rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), attr))
    role = resources(template, "AWS::IAM::Role")["VideoStateMachineRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [s["Action"] for s in statements] == [["lambda:InvokeFunction"]]
    assert sorted(r["Fn::GetAtt"][0] for r in statements[0]["Resource"]) == sorted(
        f"{logical(n)}LambdaFunction" for n in TASKS
    )


def test_functions_may_start_executions_of_the_video_machine_only(template):
    name = template["Resources"]["VideoStateMachine"]["Properties"]["StateMachineName"]
    starts = []
    for role in resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                if any(a.startswith("states:") for a in actions):
                    starts.append((actions, statement["Resource"]))
    assert len(starts) == 1
    actions, targets = starts[0]
    assert actions == ["states:StartExecution"]
    assert len(targets) == 1 and json.dumps(targets[0]).endswith(f':stateMachine:{name}"]]}}')
    env = function(template, "videos")["Environment"]["Variables"]
    assert env["GROKGATE_VIDEO_RUNNER"] == "stepfunctions"
    assert env["GROKGATE_VIDEO_STATE_MACHINE"] == targets[0]


def test_the_jobs_table_is_the_one_the_job_store_declares(template):
    from infra.jobs.dynamodb import jobs_table_definition

    table = resources(template, "AWS::DynamoDB::Table")["JobsTable"]["Properties"]
    expected = jobs_table_definition(table["TableName"])
    assert table["KeySchema"] == expected["KeySchema"]
    assert table["BillingMode"] == expected["BillingMode"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert sorted(table["GlobalSecondaryIndexes"], key=str) == sorted(
        expected["GlobalSecondaryIndexes"], key=str
    )
    env = function(template, "videos")["Environment"]["Variables"]
    assert env["GROKGATE_JOBS"] == f"dynamodb://{table['TableName']}"


def test_media_expire_in_the_bucket_when_the_gateway_stops_serving_them(template):
    bucket = resources(template, "AWS::S3::Bucket")["MediaBucket"]["Properties"]
    rules = bucket["LifecycleConfiguration"]["Rules"]
    env = function(template, "videos")["Environment"]["Variables"]
    (rule,) = [r for r in rules if r.get("Prefix") == "media/"]
    assert rule["Status"] == "Enabled"
    assert int(rule["ExpirationInDays"]) * 86400 == int(env["GROKGATE_MEDIA_RETENTION"])
