"""GROKGATE_LOG_FORMAT=json: one JSON object per line, a request line with its fields."""

from __future__ import annotations

import json
import logging

from functions._access import JsonFormatter


def test_a_request_line_is_one_json_object_with_its_fields() -> None:
    record = logging.LogRecord(
        "grokgate.request", logging.INFO, __file__, 1, "request %s", ("status=200",), None
    )
    record.fields = {"request_id": "req_1", "status": 200, "key_id": "key_a", "ttfb_ms": 1.5}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "request" and data["status"] == 200 and data["key_id"] == "key_a"
    assert data["level"] == "INFO" and data["logger"] == "grokgate.request"


def test_other_lines_keep_their_message_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "grokgate", logging.ERROR, __file__, 1, "it %s", ("failed",), sys.exc_info()
        )
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "it failed" and "ValueError: boom" in data["exception"]
