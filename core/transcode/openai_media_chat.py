"""A chat completion whose answer is media (an image or video model in chat completions), as
chunks or as one object. The content is the images' markdown (openai_images.py) or the video's
link (openai_videos.py); progress lines go out as `reasoning_content`.

    head()  progress(line)  content(text)  stop()   the chunks of a stream, in that order
    error(exc)                                      a failure after the first byte
    final(content)                                  the non-streamed object
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from core.errors import GatewayError


class MediaAnswer:
    __slots__ = ("created", "id", "model", "reasoning")

    def __init__(self, model: str) -> None:
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.model = model
        self.created = int(time.time())
        self.reasoning: list[str] = []  # the progress lines of a non-streamed answer

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def head(self) -> dict[str, Any]:
        return self.chunk({"role": "assistant", "content": ""})

    def progress(self, line: str) -> dict[str, Any]:
        return self.chunk({"reasoning_content": line + "\n"})

    def content(self, text: str) -> dict[str, Any]:
        return self.chunk({"content": text})

    def stop(self) -> dict[str, Any]:
        return self.chunk({}, "stop")

    @staticmethod
    def error(exc: GatewayError) -> dict[str, Any]:
        return exc.openai_body()

    def final(self, content: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.reasoning:
            message["reasoning_content"] = "\n".join(self.reasoning)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
