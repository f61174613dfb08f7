"""A chat completion whose answer is media: the chunks of a stream and the one object."""

from __future__ import annotations

from core.errors import UpstreamError
from core.transcode.openai_media_chat import MediaAnswer


def test_every_chunk_is_one_choice_of_the_same_completion():
    answer = MediaAnswer("grok-imagine-image")
    chunks = [
        answer.head(),
        answer.progress("Generating… 40%"),
        answer.content("![image 1](u)"),
        answer.stop(),
    ]
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        (answer.id, "chat.completion.chunk", answer.created, "grok-imagine-image")
    }
    assert answer.id.startswith("chatcmpl-")
    assert [c["choices"] for c in chunks] == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        [{"index": 0, "delta": {"reasoning_content": "Generating… 40%\n"}, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "![image 1](u)"}, "finish_reason": None}],
        [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    ]


def test_a_failure_is_the_openai_error_body():
    failure = UpstreamError("The video failed: blocked", code="content_policy_violation")
    assert MediaAnswer("m").error(failure) == {
        "error": {
            "message": "The video failed: blocked",
            "type": failure.openai_type,
            "param": None,
            "code": "content_policy_violation",
        }
    }


def test_the_object_carries_the_progress_as_reasoning_and_no_usage():
    answer = MediaAnswer("grok-imagine-video")
    assert "reasoning_content" not in answer.final("[video](u)")["choices"][0]["message"]
    answer.reasoning += ["Video job video_1 queued.", "Generating video… 50%"]
    body = answer.final("[video](u)")
    assert (body["id"], body["object"], body["model"]) == (answer.id, "chat.completion", "grok-imagine-video")
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "[video](u)",
                "reasoning_content": "Video job video_1 queued.\nGenerating video… 50%",
            },
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
