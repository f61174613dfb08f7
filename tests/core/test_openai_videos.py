"""Video jobs as clients see them: the service's view of a job (`video_of`) and the OpenAI
shapes of core/transcode/openai_videos.py."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest
from core.media import VideoPage
from core.ports import Job, JobStatus
from core.services.video_requests import check_page, check_variant
from core.services.videos import video_of
from core.transcode.openai_videos import video_deleted, video_link, video_list, video_object, video_pending

PARAMS = {"model": "grok-imagine-video", "prompt": "a fox", "seconds": 10, "size": "1280x720"}


def _job(status: JobStatus, **fields) -> Job:
    return Job(
        id="video_1",
        kind="video",
        status=status,
        params={**PARAMS, **fields.pop("params", {})},
        created_at=1000.9,
        updated_at=1000.9,
        **fields,
    )


def test_a_completed_video_object_names_when_its_media_expire():
    job = _job(JobStatus.COMPLETED, progress=100, completed_at=1100.5, result={"video": "m1"})
    assert video_object(video_of(job, retention=3600)) == {
        "id": "video_1",
        "object": "video",
        "model": "grok-imagine-video",
        "status": "completed",
        "progress": 100,
        "created_at": 1000,
        "completed_at": 1100,
        "expires_at": 4700,
        "prompt": "a fox",
        "seconds": "10",
        "size": "1280x720",
        "quality": "standard",
        "remixed_from_video_id": None,
        "error": None,
    }
    assert video_object(video_of(job, retention=None))["expires_at"] is None  # kept for ever


def test_a_queued_video_has_no_times_but_its_creation_and_defaults_for_what_it_lacks():
    job = Job(id="video_2", kind="video", status=JobStatus.QUEUED, params={}, created_at=5, updated_at=5)
    body = video_object(video_of(job, retention=3600))
    assert (body["completed_at"], body["expires_at"], body["error"]) == (None, None, None)
    assert (body["model"], body["seconds"], body["size"], body["prompt"]) == (
        "grok-imagine-video",
        "6",
        "720x1280",
        None,
    )


def test_a_failed_video_carries_its_reason_with_a_default_code():
    failed = _job(JobStatus.FAILED, completed_at=1200.0, error_message="blocked")
    body = video_object(video_of(failed, retention=3600))
    assert body["error"] == {"code": "video_generation_failed", "message": "blocked"}
    assert body["expires_at"] is None and body["completed_at"] == 1200
    coded = _job(JobStatus.FAILED, error_code="video_timeout", error_message="late")
    assert video_object(video_of(coded))["error"] == {"code": "video_timeout", "message": "late"}


def test_a_remix_names_its_source():
    job = _job(JobStatus.IN_PROGRESS, progress=40, params={"remixed_from_video_id": "video_0"})
    body = video_object(video_of(job))
    assert body["remixed_from_video_id"] == "video_0" and body["progress"] == 40


def test_the_list_names_its_first_and_last_ids():
    first = video_of(_job(JobStatus.QUEUED))
    second = video_of(
        Job(id="video_9", kind="video", status=JobStatus.QUEUED, params={}, created_at=1, updated_at=1)
    )
    page = video_list(VideoPage((first, second), has_more=True))
    assert [v["id"] for v in page["data"]] == ["video_1", "video_9"]
    assert (page["object"], page["first_id"], page["last_id"], page["has_more"]) == (
        "list",
        "video_1",
        "video_9",
        True,
    )
    assert video_list(VideoPage((), has_more=False)) == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_deleted_and_chat_links():
    assert video_deleted("video_1") == {"id": "video_1", "object": "video.deleted", "deleted": True}
    url = "https://gw/v1/files/m1/content?a=1&b=2"
    assert video_link(url, "markdown") == f"[video]({url})"
    assert (
        video_link(url, "html") == '<video controls src="https://gw/v1/files/m1/content?a=1&amp;b=2"></video>'
    )
    assert video_link(url, "url") == url


def test_a_chat_answer_of_a_running_video_says_where_to_follow_it():
    text = video_pending("video_1", "https://gw")
    assert "`video_1`" in text
    assert "https://gw/v1/videos/video_1 " in text and text.endswith("https://gw/v1/videos/video_1/content")


@pytest.mark.parametrize(
    ("limit", "order", "expected"),
    [(None, None, (20, "desc")), ("5", "asc", (5, "asc")), (100, "", (100, "desc"))],
)
def test_a_page_asks_for_1_to_100_videos_in_either_order(limit, order, expected):
    assert check_page(limit, order) == expected


@pytest.mark.parametrize(
    ("limit", "order", "param"), [(0, None, "limit"), ("x", None, "limit"), (5, "up", "order")]
)
def test_a_bad_page_names_its_parameter(limit, order, param):
    with pytest.raises(InvalidRequest) as refused:
        check_page(limit, order)
    assert refused.value.param == param


def test_content_is_the_video_or_its_thumbnail():
    assert check_variant("thumbnail") == "thumbnail"
    with pytest.raises(InvalidRequest):
        check_variant("poster")
