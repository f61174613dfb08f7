"""Pure parts: the directive grammar, the deterministic script, the request log, the image encoder."""

from __future__ import annotations

import struct
import zlib

import httpx

from infra.sim import pixels
from infra.sim.directives import parse
from infra.sim.script import build, expected_answer, seed_text
from infra.sim.server import SimServer
from tests.sim.helpers import chat, headers


def test_directive_grammar_takes_the_last_occurrence_to_end_of_line() -> None:
    message = '[system]: use "#sim tokens=1" to test\n\n[user]: hi #sim tokens=5 card tool=f args={"a b": [1, 2]} bogus\nmore text'
    d = parse(message)
    assert (d.tokens, d.card, d.tool, d.args) == (5, True, "f", {"a b": [1, 2]})
    assert d.unknown == ("bogus",) and d.line.startswith("#sim tokens=5")
    assert parse("no directive here").line == ""
    assert parse("#simulate tokens=3").tokens is None  # not a word boundary
    assert (
        parse("#sim tokens=x delay_ms=-4").unknown == ("tokens",) and parse("#sim delay_ms=-4").delay_ms == 0
    )


def test_answers_are_deterministic_and_stable_under_gateway_wrapping() -> None:
    assert expected_answer("hello", "fast") == expected_answer("hello", "fast")
    assert expected_answer("[user]: hello", "fast") == expected_answer("hello", "fast")
    assert expected_answer("[user]\nhello\n\n", "fast") == expected_answer("hello", "fast")
    assert expected_answer("hello", "fast") != expected_answer("goodbye", "fast")
    wrapped = "[system]: You can call tools...\n\n[user]: weather #sim tokens=7\n\n[assistant]:"
    assert expected_answer(wrapped, "fast") == expected_answer("#sim tokens=7", "fast")
    assert seed_text("[user]: hi", parse("[user]: hi")) == "hi"
    reasoning, answer = expected_answer("#sim tokens=3 think=5", "expert")
    assert len(answer.split()) == 3 and answer.endswith(".") and reasoning.count("\n") >= 2


def test_script_counts() -> None:
    s = build("#sim tokens=200 think=50", "expert")
    assert sum(1 for i in s.items if type(i).__name__ == "Answer") == 200
    assert sum(1 for i in s.items if type(i).__name__ == "Think") == 50
    assert build("x", "fast").reasoning == "" and build("x", "expert").reasoning


def test_request_log_records_what_was_sent(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url) as c:
        chat(c, "sim-super-log", "hello", "expert")
        c.get("/rest/assets?pageSize=5", headers={**headers("sim-super-log"), "X-Custom": "1"})
    first, second = sim.log[0], sim.log[1]
    assert first.method == "POST" and first.path == "/rest/app-chat/conversations/new" and first.status == 200
    assert first.json["modeId"] == "expert" and first.cookies == {
        "sso": "sim-super-log",
        "sso-rw": "sim-super-log",
    }
    assert first.headers["x-statsig-id"]
    assert second.query == "pageSize=5" and second.headers["x-custom"] == "1" and second.json is None
    assert [r.path for r in sim.log.find(method="GET")] == ["/rest/assets"]
    sim.reset()
    assert len(sim.log) == 0


def _png_pixels(data: bytes) -> bytes:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    return zlib.decompress(data[idat + 4 : idat + 4 + length])


def test_media_bytes_are_real_formats() -> None:
    jpeg = pixels.sample_jpeg(3)
    assert jpeg.startswith(b"\xff\xd8\xff\xe0") and jpeg.endswith(b"\xff\xd9")
    sof = jpeg.index(b"\xff\xc0")
    assert struct.unpack(">HH", jpeg[sof + 5 : sof + 9]) == (32, 32)
    assert len(_png_pixels(pixels.sample_png())) == 16 * (1 + 16 * 3)
    assert pixels.sniff_mime(pixels.sample_mp4()) == "video/mp4"


def test_say_scripts_the_answer_verbatim() -> None:
    assert expected_answer('Q #sim say={"a": [1, 2]}') == ("", '{"a": [1, 2]}')
    assert expected_answer("[tool result]: #sim say=sum-42") == ("", "sum-42")
    # an escaped directive inside the answer becomes the next turn's directive
    _, first = expected_answer('Q #sim say="not json \\u0023sim say=ok"')
    assert first == "not json #sim say=ok"
    assert expected_answer(f"Q\n\n[assistant]: {first}")[1] == "ok"
