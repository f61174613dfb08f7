"""multipart/form-data bodies (image edits, video creation), parsed from bytes already read
within `max_body_bytes`: fields as text, files as (filename, content type, bytes).

Small on purpose (no python-multipart dependency): RFC 7578 bodies as HTTP clients send them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.errors import InvalidRequest

_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
MAX_PARTS = 64


@dataclass(frozen=True, slots=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def files_named(self, *names: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field in names]


def _params(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for match in _PARAM.finditer(header):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        out[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return out


def boundary_of(content_type: str) -> str | None:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        return None
    return _params(";" + content_type.split(";", 1)[1] if ";" in content_type else "").get("boundary")


def parse_form(body: bytes, content_type: str) -> Form:
    """The form, or a 400 if the body is not well-formed multipart/form-data."""
    boundary = boundary_of(content_type)
    if not boundary:
        raise InvalidRequest("Expected a multipart/form-data body with a boundary.")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise InvalidRequest("The multipart/form-data body is malformed (no closing boundary).")
    form = Form()
    for chunk in chunks[1:-1]:
        if len(form.files) + len(form.fields) >= MAX_PARTS:
            raise InvalidRequest(f"Too many form parts (at most {MAX_PARTS}).")
        if not chunk.startswith(b"\r\n"):
            raise InvalidRequest("The multipart/form-data body is malformed.")
        head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            raise InvalidRequest("The multipart/form-data body is malformed (a part has no headers).")
        data = data.removesuffix(b"\r\n")
        disposition, part_type = "", ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
            elif name.strip().lower() == "content-type":
                part_type = value.strip()
        params = _params(disposition)
        name = params.get("name")
        if not name:
            continue
        if "filename" in params:
            form.files.append(UploadedFile(name, params["filename"], part_type, data))
        else:
            form.fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return form
