"""Client requests -> one normalised chat request: one flattened upstream message plus attachments.

The upstream takes a single `message` per new conversation (docs/protocol.md#history), so history is
flattened into `[role]: text` blocks separated by blank lines; a lone user turn goes as it is.
Image and file parts become `Attachment`s: inline data (data URLs, base64 file data) is decoded
here; http(s) URLs are left for the fetcher, which reaches them without any account cookie and
through the SSRF guard; then every attachment is uploaded to the leased account (E5).

`Block`, `flatten`, `attachment_from_*` and `check_attachments` are dialect-neutral: the
Responses and Messages normalisers build the same `ChatRequest` with them.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from core.catalog import Model
from core.errors import InvalidRequest

if TYPE_CHECKING:
    from core.transcode.structured import OutputFormat
    from core.transcode.tools import ToolSpec

MAX_ATTACHMENTS = 8
MAX_ATTACHMENT_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
DOCUMENT_TYPES = {
    "application/pdf": "pdf",
    "application/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/csv": "csv",
    "text/markdown": "md",
    "text/html": "html",
    "text/plain": "txt",
}


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file for the upstream: inline `data`, or a client `url` the fetcher will get."""

    name: str
    mime: str
    data: bytes | None = None
    url: str | None = None
    param: str = ""  # where it came from in the request, for error messages


@dataclass(frozen=True, slots=True)
class Block:
    role: str
    text: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the chat service needs, whatever dialect the client spoke.

    `reasoning`: expose the upstream's thinking; `max_output_tokens` and `stop` are enforced by
    the service on the visible answer (finish `length` / `stop`).
    """

    model: Model
    message: str
    attachments: tuple[Attachment, ...] = ()
    reasoning: bool = True
    max_output_tokens: int | None = None
    stop: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    tools: ToolSpec | None = None  # offered tools: the service runs the answer through the detector
    output: OutputFormat | None = None  # structured output: the answer is checked JSON
    web_search: bool = False  # the client offered a web search tool: search on, results reported


def flatten(blocks: Sequence[Block]) -> str:
    """One upstream message: a lone user turn as it is, otherwise `[role]: text` blocks."""
    kept = [b for b in blocks if b.text.strip()]
    if len(kept) == 1 and kept[0].role == "user":
        return kept[0].text
    return "\n\n".join(f"[{b.role}]: {b.text}" for b in kept)


# --- attachments --------------------------------------------------------------------------------


def _extension(mime: str) -> str:
    if mime in DOCUMENT_TYPES:
        return DOCUMENT_TYPES[mime]
    return mime.rsplit("/", 1)[-1].split("+")[0] or "bin"


def attachment_from_data_url(url: str, param: str, name: str | None = None) -> Attachment:
    """`data:<mime>;base64,<data>` -> an inline attachment (400 naming `param` if malformed)."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise InvalidRequest(
            f"Invalid data URL in '{param}': expected data:<mime>;base64,<data>.", param=param
        )
    mime = header[5:-7].split(";")[0].strip().lower() or "application/octet-stream"
    data = _b64(payload, param)
    return Attachment(name or f"file.{_extension(mime)}", mime, data=data, param=param)


def attachment_from_base64(payload: str, filename: str | None, param: str) -> Attachment:
    """Raw base64 with a file name (OpenAI `file.file_data` may come either way)."""
    if payload.startswith("data:"):
        return attachment_from_data_url(payload, param, filename)
    if payload.startswith(("http://", "https://")):
        raise InvalidRequest(
            f"'{param}' holds a URL; file_data takes base64 or a data URL (send a URL as file_url).",
            param=param,
        )
    mime = (mimetypes.guess_type(filename or "")[0] or "").lower()
    if not mime:
        raise InvalidRequest(
            f"'{param}': raw base64 needs a filename with a known extension, or send a data URL.", param=param
        )
    return Attachment(filename or f"file.{_extension(mime)}", mime, data=_b64(payload, param), param=param)


def attachment_from_url(url: str, param: str) -> Attachment:
    """An http(s) URL, or a data URL, from an image or file part."""
    if url.startswith("data:"):
        return attachment_from_data_url(url, param)
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"'{param}' must be an http(s) URL or a data URL.", param=param)
    tail = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "file"
    return Attachment(tail[:100], "", url=url, param=param)


def _b64(payload: str, param: str) -> bytes:
    """Strict base64 (line breaks allowed): anything else is a 400, never a loose decode."""
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"'{param}' is not valid base64.", param=param) from None


_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


def sniff_image(data: bytes) -> str | None:
    for mime, magics in _MAGIC.items():
        if data.startswith(magics):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_attachment(att: Attachment) -> Attachment:
    """A fetched or decoded attachment, type-checked (images by magic bytes) and size-checked."""
    data = att.data or b""
    param = att.param or "messages"
    if not data:
        raise InvalidRequest(f"'{param}': the file is empty.", param=param)
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise InvalidRequest(
            f"'{param}': files are limited to {MAX_ATTACHMENT_BYTES // 2**20} MiB.", param=param
        )
    mime = att.mime.split(";")[0].strip().lower().replace("image/jpg", "image/jpeg")
    sniffed = sniff_image(data)
    if (
        mime.startswith("image/")
        or (not mime and sniffed)
        or (mime == "application/octet-stream" and sniffed)
    ):
        if sniffed is None or (mime.startswith("image/") and mime not in IMAGE_TYPES):
            raise InvalidRequest(
                f"'{param}': images must be JPEG, PNG, WebP or GIF (the bytes say otherwise).", param=param
            )
        if mime in IMAGE_TYPES and mime != sniffed:
            raise InvalidRequest(f"'{param}': declared {mime} but the bytes are {sniffed}.", param=param)
        mime = sniffed
    elif mime not in DOCUMENT_TYPES:
        raise InvalidRequest(
            f"'{param}': unsupported file type {mime or 'unknown'}; images (JPEG, PNG, WebP, GIF) and "
            "documents (pdf, txt, md, csv, json, xml, html, rtf, office) are accepted.",
            param=param,
        )
    name = att.name if "." in att.name else f"{att.name}.{_extension(mime)}"
    return Attachment(name, mime, data=data, param=att.param)


def check_attachments(atts: Sequence[Attachment]) -> None:
    """Count and total size (before anything is fetched or uploaded)."""
    if len(atts) > MAX_ATTACHMENTS:
        raise InvalidRequest(f"At most {MAX_ATTACHMENTS} images or files per request.", param="messages")
    total = sum(len(a.data or b"") for a in atts)
    if total > MAX_TOTAL_BYTES:
        raise InvalidRequest(
            f"Attachments are limited to {MAX_TOTAL_BYTES // 2**20} MiB in total.", param="messages"
        )


# --- OpenAI chat messages -----------------------------------------------------------------------

ROLES = ("system", "developer", "user", "assistant", "tool")


def _tool_calls_text(calls: Any, param: str) -> str:
    if not isinstance(calls, list):
        raise InvalidRequest(f"'{param}' must be an array.", param=param)
    parts = []
    for call in calls:
        custom = call.get("custom") if isinstance(call, dict) else None
        if isinstance(custom, dict):  # a free-form tool's call: its input is text
            parts.append(
                f"<tool_call><tool_name>{custom.get('name', '')}</tool_name>"
                f"<parameters>{custom.get('input') or ''}</parameters></tool_call>"
            )
            continue
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise InvalidRequest(f"'{param}': each tool call needs a function.", param=param)
        args = function.get("arguments") or "{}"
        parts.append(
            f"<tool_call><tool_name>{function.get('name', '')}</tool_name>"
            f"<parameters>{args if isinstance(args, str) else orjson.dumps(args).decode()}</parameters></tool_call>"
        )
    return "<tool_calls>" + "".join(parts) + "</tool_calls>"


def _parts(content: list[Any], param: str, atts: list[Attachment]) -> str:
    texts: list[str] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"'{where}' must be an object.", param=where)
        kind = part.get("type")
        if kind == "text" or kind == "input_text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"'{where}.text' must be a string.", param=f"{where}.text")
            texts.append(text)
        elif kind == "refusal":
            texts.append(str(part.get("refusal") or ""))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise InvalidRequest(f"'{where}.image_url.url' is required.", param=f"{where}.image_url.url")
            atts.append(attachment_from_url(url, f"{where}.image_url.url"))
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, dict):
                raise InvalidRequest(f"'{where}.file' must be an object.", param=f"{where}.file")
            if file.get("file_id"):
                raise InvalidRequest(
                    f"'{where}.file.file_id': uploaded file ids are not supported; send file_data.",
                    param=f"{where}.file.file_id",
                )
            data = file.get("file_data")
            if not isinstance(data, str) or not data:
                raise InvalidRequest(
                    f"'{where}.file.file_data' is required.", param=f"{where}.file.file_data"
                )
            atts.append(attachment_from_base64(data, file.get("filename"), f"{where}.file.file_data"))
        elif kind == "input_audio":
            raise InvalidRequest(f"'{where}': audio input is not supported by the upstream.", param=where)
        else:
            raise InvalidRequest(f"'{where}.type' {kind!r} is not supported.", param=f"{where}.type")
    return "\n".join(t for t in texts if t)


def openai_messages(messages: Sequence[Any], *, tool_prompt: str = "") -> tuple[str, list[Attachment]]:
    """OpenAI chat `messages` -> (one upstream message, attachments), with 400s naming the field.

    `tool_prompt` (the offered tools) goes in as a system block after the leading system messages.
    """
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    blocks: list[Block] = []
    atts: list[Attachment] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"'{param}' must be an object.", param=param)
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(
                f"'{param}.role' must be one of {', '.join(ROLES)} (got {role!r}).", param=f"{param}.role"
            )
        content = message.get("content")
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = _parts(content, f"{param}.content", atts)
        else:
            raise InvalidRequest(f"'{param}.content' must be a string or an array.", param=f"{param}.content")
        if role == "assistant" and message.get("tool_calls"):
            calls = _tool_calls_text(message["tool_calls"], f"{param}.tool_calls")
            text = f"{text}\n{calls}" if text else calls
        if role == "tool":
            call_id = message.get("tool_call_id") or ""
            blocks.append(Block(f"tool result for {call_id}" if call_id else "tool", text))
            continue
        name = message.get("name")
        blocks.append(Block(f"{role} ({name})" if isinstance(name, str) and name else role, text))
    if tool_prompt:
        at = next((i for i, b in enumerate(blocks) if b.role not in ("system", "developer")), len(blocks))
        blocks.insert(at, Block("system", tool_prompt))
    text = flatten(blocks)
    if not text.strip() and not atts:
        raise InvalidRequest("'messages' hold no text and no attachments.", param="messages")
    check_attachments(atts)
    return text, atts
