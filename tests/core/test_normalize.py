"""OpenAI messages -> one upstream message plus attachments; bad input is a 400 naming the field."""

from __future__ import annotations

import base64

import pytest

from core.errors import InvalidRequest
from core.transcode.normalize import Attachment, check_attachment, openai_messages

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_lone_user_message_goes_as_is() -> None:
    assert openai_messages([{"role": "user", "content": "What is a tide?"}]) == ("What is a tide?", [])


def test_history_is_flattened_with_roles() -> None:
    text, _ = openai_messages(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "No emoji."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}], "name": "ann"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "user", "content": "  "},
        ]
    )
    assert text == (
        "[system]: Be brief.\n\n[developer]: No emoji.\n\n[user (ann)]: Hi\n\n"
        '[assistant]: <tool_calls><tool_call><tool_name>f</tool_name><parameters>{"a":1}</parameters>'
        "</tool_call></tool_calls>\n\n[tool result for c1]: 42"
    )


def test_image_and_file_parts_become_attachments() -> None:
    pdf = base64.b64encode(b"%PDF-1.4 test").decode()
    text, atts = openai_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?x=1"}},
                    {"type": "file", "file": {"file_data": pdf, "filename": "a.pdf"}},
                    {
                        "type": "file",
                        "file": {"file_data": f"data:application/pdf;base64,{pdf}", "filename": "b.pdf"},
                    },
                ],
            }
        ]
    )
    assert text == "Describe"
    assert atts[0] == Attachment(
        "file.png", "image/png", data=PNG, param="messages[0].content[1].image_url.url"
    )
    assert atts[1].url == "https://example.com/cat.jpg?x=1" and atts[1].name == "cat.jpg"
    assert atts[2].mime == atts[3].mime == "application/pdf"
    assert atts[3].name == "b.pdf"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "robot", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "video", "x": 1}]}], "messages[0].content[0].type"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
            "messages[0].content[0].image_url.url",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
                }
            ],
            "messages[0].content[0].image_url.url",
        ),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}],
            "messages[0].content[0]",
        ),
        (
            [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
            "messages[0].content[0].file.file_id",
        ),
        ([{"role": "user", "content": ""}], "messages"),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "file", "file": {"file_data": "https://x/a.pdf", "filename": "a.pdf"}}
                    ],
                }
            ],
            "messages[0].content[0].file.file_data",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "file", "file": {"file_data": "not base64!", "filename": "a.pdf"}}],
                }
            ],
            "messages[0].content[0].file.file_data",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "file",
                            "file": {"file_data": "data:application/pdf;base64,%%%", "filename": "a.pdf"},
                        }
                    ],
                }
            ],
            "messages[0].content[0].file.file_data",
        ),
    ],
)
def test_bad_messages_name_the_field(messages: list[object], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        openai_messages(messages)
    assert info.value.param == param


def test_too_many_attachments() -> None:
    parts = [{"type": "image_url", "image_url": {"url": PNG_URL}}] * 9
    with pytest.raises(InvalidRequest, match="At most 8"):
        openai_messages([{"role": "user", "content": parts}])


def test_check_attachment_sniffs_images() -> None:
    assert check_attachment(Attachment("x", "", data=PNG, param="p")).mime == "image/png"
    assert (
        check_attachment(Attachment("x", "image/jpg", data=b"\xff\xd8\xff\xe0", param="p")).mime
        == "image/jpeg"
    )
    with pytest.raises(InvalidRequest, match="bytes are image/png"):
        check_attachment(Attachment("x", "image/jpeg", data=PNG, param="p"))
    with pytest.raises(InvalidRequest, match="JPEG, PNG"):
        check_attachment(Attachment("x", "image/png", data=b"not an image", param="p"))
    with pytest.raises(InvalidRequest, match="unsupported file type"):
        check_attachment(Attachment("x", "application/x-msdownload", data=b"MZ", param="p"))
    with pytest.raises(InvalidRequest, match="empty"):
        check_attachment(Attachment("x", "text/plain", data=b"", param="p"))
