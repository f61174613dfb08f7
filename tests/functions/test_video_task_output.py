"""What a video state-machine task returns (functions/video_tasks.py), read by the machine's
Choice and Wait states (infra/aws/video.asl.json)."""

from __future__ import annotations

from core.ports import JobStatus
from core.services.video_steps import StepResult
from functions.video_tasks import output


def test_a_step_that_waits_gives_whole_seconds_for_the_wait_state():
    assert output(StepResult("video_1", JobStatus.IN_PROGRESS, "poll", 2.0004)) == {
        "job_id": "video_1",
        "status": "in_progress",
        "stage": "poll",
        "wait": 2.0,
        "wait_seconds": 3,
    }
    assert output(StepResult("video_1", JobStatus.COMPLETED))["wait_seconds"] == 0


def test_a_job_another_runner_holds_is_busy_and_looked_at_again_after_a_second_at_least():
    out = output(StepResult("video_1", None, "store", 0.0))
    assert (out["status"], out["stage"], out["wait_seconds"]) == ("busy", "store", 1)
    assert output(StepResult("video_1", None, "submit", 41.5))["wait_seconds"] == 42
