"""The decoder's fast path (core/protocol/token_lines.py): runs of token lines read by template.

Its promise is the line-by-line path's events, so the tests compare the two: the same frames behind
a `data:` prefix never take the fast path (a template is learned from bare lines only), and must
give the very same events in one read, and the same text and reasoning for any split of the bytes.
Which lines the fast path hands the decoder one by one is seen through its interface
(`TokenLines.read` and the decoder's `decode_line` / `emit_tokens`), with a recording decoder.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import Event, Fault, Finish, ImageOut, ReasoningDelta, ServerToolUse, TextDelta, VideoOut
from core.protocol.frames import EVENT_KEYS, FrameDecoder
from core.protocol.token_lines import Template, TokenLines
from infra.sim import frames as sim_frames
from infra.sim.chat import render
from infra.sim.script import build
from tests.core.test_frames import CONV, SOFT, TOKENS, USER, decode, merged, resp, text_of


def comparable(events: list[Event]) -> list[object]:
    return [
        (type(e).__name__, e.failure and e.failure.kind, e.error.message) if isinstance(e, Fault) else e
        for e in events
    ]


def coalesced(events: list[Event]) -> list[object]:
    """Text runs and reasoning runs of one rollout joined: how they are cut depends on the reads."""
    out: list[Event] = []
    for event in merged(events):
        last = out[-1] if out else None
        if (
            isinstance(event, ReasoningDelta)
            and isinstance(last, ReasoningDelta)
            and last.agent == event.agent
        ):
            out[-1] = ReasoningDelta(last.text + event.text, event.agent)
        else:
            out.append(event)
    return comparable(out)


def sse(lines: list[bytes]) -> bytes:
    """The same frames, each behind `data: `: decoded line by line, the reference."""
    return b"".join(b"data: " + item for item in lines)


def assert_fast_is_generic(lines: list[bytes], splits: list[int]) -> None:
    bare = b"".join(lines)
    generic, _ = decode(sse(lines))
    assert comparable(decode(bare)[0]) == comparable(generic)  # one read: the very same events
    split, _ = decode(bare, [s % (len(bare) + 1) for s in splits])
    assert coalesced(split) == coalesced(generic)


class Recording:
    """A FrameDecoder as the fast path sees it, noting the lines it is handed one by one."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.slow: list[bytes] = []

    @property
    def done(self) -> bool:
        return self.decoder.done

    @property
    def holding(self) -> bool:
        return self.decoder.holding

    def decode_line(self, line: bytes, out: list[Event]) -> dict[str, Any] | None:
        self.slow.append(line + b"\n")
        return self.decoder.decode_line(line, out)

    def emit_tokens(self, tokens: list[str], frame: Template, out: list[Event]) -> None:
        self.decoder.emit_tokens(tokens, frame, out)


def one_by_one(data: bytes) -> tuple[list[Event], list[bytes]]:
    """The events of one read through the fast path, and the lines it did not read by template."""
    recording, out = Recording(), []
    TokenLines(EVENT_KEYS).read(recording, data, 0, len(data), out)
    recording.decoder.close_runs(out)
    return out, recording.slow


# --- real streams: the simulator's answers -------------------------------------------------------

SIM = [
    ("Tell me about tides. #sim tokens=120", "fast"),
    ("#sim tokens=60 think=20", "expert"),
    ("#sim tokens=40 agents=3", "heavy"),
    ("#sim search cite=2 tokens=30", "expert"),
    ("#sim card tokens=30", "fast"),
    ("Drawing: a lighthouse #sim image=2 tokens=10", "fast"),
    ('#sim say="quote \\" back\\\\slash é 😀 <b>tag</b> \\u2028 tab\\t"', "fast"),
    ('#sim tool=get_weather args={"city": "Paris"} tokens=5', "fast"),
]


def sim_lines(message: str, mode: str) -> list[bytes]:
    script = build(message, mode)
    user_rid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    lines = [sim_frames.conversation("c-1", True), sim_frames.user_response(user_rid, message, [])]
    lines += render(script, rid)[0]
    lines += [
        sim_frames.soft_stop(rid),
        sim_frames.final_metadata(),
        sim_frames.model_response(rid, user_rid, script.answer),
    ]
    return b"".join(lines).splitlines(keepends=True)


@pytest.mark.parametrize(("message", "mode"), SIM)
@settings(max_examples=40, deadline=None)
@given(splits=st.lists(st.integers(min_value=0, max_value=100_000), max_size=30))
def test_simulated_streams_give_the_generic_events_for_any_split(
    message: str, mode: str, splits: list[int]
) -> None:
    assert_fast_is_generic(sim_lines(message, mode), splits)


@pytest.mark.parametrize(("message", "mode"), SIM)
def test_simulated_streams_read_one_line_at_a_time_give_the_generic_events(message: str, mode: str) -> None:
    lines = sim_lines(message, mode)
    events, _ = decode(b"".join(lines), list(itertools.accumulate(map(len, lines))))
    assert coalesced(events) == coalesced(decode(sse(lines))[0])


# --- made-up streams: every kind of token, and lines that only look like a template's ------------

ANSWER_KEYS = ["token", "isThinking", "isSoftStop", "responseId", "messageTag"]
SPECIAL = [
    '"',
    "\\",
    '\\"',
    "é",
    "😀",
    "\n",
    "\t",
    "\x00",
    "\u2028",
    "",
    "<",
    '<grok:render card_id="k1" card_type="citation_card" type="render_inline_citation"></grok:render>',
    '<grok:render card_id="k1"',
    ' card_type="citation_card" type="render_inline_citation"></grok:render>',
]
CITATION = resp(
    messageTag="final",
    cardAttachment={
        "jsonData": orjson.dumps(
            {"id": "k1", "type": "render_inline_citation", "url": "https://w.org/T"}
        ).decode()
    },
)
OTHER_LINES = [
    CITATION,
    resp(webSearchResults={"results": [{"url": "https://w.org/T", "title": "Tide"}]}),
    resp(token="<xai:tool_name>web_search</xai:tool_name>", isThinking=True, messageTag="tool_usage_card"),
    resp(token="{raw}", isThinking=True, messageTag="raw_function_result"),
    resp(streamingImageGenerationResponse={"imageUrl": "u/i.jpg", "progress": 50}),
    resp(token="", isThinking=False, messageTag="final"),
    b"{broken\n",
    b"\n",
]
BAD_INSERTS = [b'a"b', b"x\\", b"\t", b"\xff", b"\xa9", b"\\q", b"\\\\\\", b'","x":"']


def bad_literal(data: bytes, insert: bytes) -> bytes:
    """The line with bytes put at the start of its token literal: `a"b`, a lone backslash..."""
    at = data.index(b'"token":"') + 9
    return data[:at] + insert + data[at:]


@st.composite
def token_streams(draw: st.DrawFn) -> list[bytes]:
    ascii = st.text(st.characters(max_codepoint=127), max_size=8)  # the one-parse path of plain runs
    tokens = st.one_of(st.text(max_size=8), ascii, st.sampled_from(SPECIAL))
    answer_order = draw(st.permutations(ANSWER_KEYS))
    tag = draw(st.sampled_from(["final", "", None]))
    lines: list[bytes] = []
    for _ in range(draw(st.integers(min_value=0, max_value=40))):
        kind = draw(st.integers(min_value=0, max_value=9))
        if kind <= 4:
            fields = {
                "token": draw(tokens),
                "isThinking": False,
                "isSoftStop": draw(st.booleans()) and draw(st.booleans()),
                "responseId": "r-1",
                "messageTag": tag,
            }
            if tag is None:
                del fields["messageTag"]
            lines.append(resp(**{key: fields[key] for key in answer_order if key in fields}))
        elif kind <= 7:
            fields = {
                "token": draw(tokens),
                "isThinking": True,
                "messageTag": draw(st.sampled_from(["header", "summary"])),
                "rolloutId": draw(st.sampled_from(["Grok", "Agent 1"])),
                "messageStepId": draw(st.sampled_from([1, 2])),
            }
            if draw(st.integers(min_value=0, max_value=9)) == 0:
                fields["isSoftStop"] = True
            lines.append(resp(**fields))
        elif kind == 8:
            lines.append(draw(st.sampled_from(OTHER_LINES)))
        elif lines and b'"token":"' in lines[-1]:
            lines.append(bad_literal(lines[-1], draw(st.sampled_from(BAD_INSERTS))))
    if draw(st.booleans()):
        lines.append(SOFT)
    return lines


@settings(max_examples=150, deadline=None)
@given(token_streams(), st.lists(st.integers(min_value=0, max_value=20000), max_size=12))
def test_template_path_gives_the_generic_events(lines: list[bytes], splits: list[int]) -> None:
    assert_fast_is_generic(lines, splits)


# --- which lines go by template -------------------------------------------------------------------


def test_a_run_of_token_lines_is_read_by_the_template_of_its_first() -> None:
    answer = [resp(token=f"w{i} ", isThinking=False, responseId="r-1", messageTag="final") for i in range(50)]
    lines = [CONV, USER, *answer, SOFT]
    events, slow = one_by_one(b"".join(lines))
    assert events == [TextDelta("".join(f"w{i} " for i in range(50))), Finish()]
    assert slow == [CONV, USER, answer[0], SOFT]  # the first token line taught the template
    assert_fast_is_generic(lines, [len(b"".join(lines)) // 3, len(b"".join(lines)) // 2])


def test_key_order_is_learned_not_assumed() -> None:
    order = [
        resp(responseId="r-1", isSoftStop=False, messageTag="final", isThinking=False, token=t)
        for t in ("A ", 'q"uote ', "back\\slash ", "é\n")
    ]
    events, slow = one_by_one(b"".join(order) + SOFT)
    assert events == [TextDelta('A q"uote back\\slash é\n'), Finish()]
    assert slow == [order[0], SOFT]


def test_a_whole_answer_in_one_read_is_two_runs() -> None:
    """The gateway's usual read: F1, F2, the whole answer and the end in one chunk."""
    words = [f" w{i}" for i in range(300)]
    answer = [resp(token=w, isThinking=False, responseId="r-1", messageTag="final") for w in words]
    thinking = [
        resp(token=w, isThinking=True, messageTag="summary", rolloutId="Grok", messageStepId=1) for w in words
    ]
    lines = [CONV, USER, *thinking, *answer, SOFT]
    events, slow = one_by_one(b"".join(lines))
    assert events == [ReasoningDelta("".join(words), "Grok"), TextDelta("".join(words)), Finish()]
    assert slow == [CONV, USER, thinking[0], answer[0], SOFT]
    assert comparable(decode(b"".join(lines))[0]) == comparable(decode(sse(lines))[0])


def test_a_bad_line_in_a_run_is_read_alone() -> None:
    run = [resp(token=t, isThinking=False, messageTag="final") for t in ("a", "b", "c", "d")]
    for insert in (b'x"y', b"x\\", b"\t", b"\xff", b'","isThinking":true,"z":'):
        bad = bad_literal(run[2], insert)
        events, slow = one_by_one(run[0] + run[1] + bad + run[3] + SOFT)
        assert events == [TextDelta("abd"), Finish()], insert
        assert slow == [run[0], bad, SOFT], insert


def test_an_empty_token_on_a_soft_stop_is_the_stop_even_in_a_run() -> None:
    lines = [resp(token=t, isSoftStop=True, messageTag="final") for t in ("a", "b", "", "c")]
    events, slow = one_by_one(b"".join(lines))
    assert events == [TextDelta("ab"), Finish()]
    assert slow == [lines[0], lines[2]]
    assert comparable(decode(b"".join(lines))[0]) == comparable(decode(sse(lines))[0])


def test_thinking_with_a_soft_stop_is_not_a_template() -> None:
    lines = [resp(token=t, isThinking=True, isSoftStop=True, rolloutId="Grok") for t in ("a", "b")]
    events, slow = one_by_one(TOKENS[0] + b"".join(lines))
    assert events == [TextDelta("A tide "), ReasoningDelta("a", "Grok"), Finish()]
    assert slow == [TOKENS[0], lines[0]]


def test_templates_that_are_not_reused_stop_the_learning() -> None:
    """A field that changes on every line: after a few templates that never pay, none is learned,
    not even for a run that would reuse it."""
    lines = [resp(token=f"{i} ", messageTag="final", messageStepId=i) for i in range(40)]
    run = [resp(token=f"r{i} ", messageTag="final") for i in range(10)]
    events, slow = one_by_one(b"".join(lines + run) + SOFT)
    assert text_of(events) == "".join(f"{i} " for i in range(40)) + "".join(f"r{i} " for i in range(10))
    assert slow == [*lines, *run, SOFT]
    assert_fast_is_generic([*lines, *run, SOFT], [1000, 2000])


def test_json_written_another_way_stops_the_learning() -> None:
    lines = [b'{"result": {"response": {"token": "%d ", "messageTag": "final"}}}\n' % i for i in range(20)]
    run = [resp(token=f"r{i} ", messageTag="final") for i in range(10)]
    events, slow = one_by_one(b"".join(lines + run) + SOFT)
    assert text_of(events) == "".join(f"{i} " for i in range(20)) + "".join(f"r{i} " for i in range(10))
    assert slow == [*lines, *run, SOFT]


# Every response key besides the token that makes events, with a value that does.
EVENTFUL = {
    "error": {"message": "You've reached your usage limit."},
    "userResponse": {"responseId": "u-1", "message": "hi", "sender": "human"},
    "webSearchResults": {"results": [{"url": "https://w.org/T", "title": "Tide"}]},
    "citedWebSearchResults": [{"url": "https://w.org/C", "title": "Cited"}],
    "xSearchResults": {"results": [{"postId": "1", "username": "u", "text": "a post"}]},
    "xposts": [{"postId": "2", "username": "v", "text": "another"}],
    "citedXposts": [{"postId": "3", "username": "w"}],
    "cardAttachment": {
        "jsonData": orjson.dumps({"id": "g", "image_chunk": {"imageUrl": "u/1.jpg"}}).decode()
    },
    "cardAttachments": [{"id": "h", "image_chunk": {"imageUrl": "u/2.jpg", "progress": 40}}],
    "streamingImageGenerationResponse": {"imageUrl": "u/i.jpg", "progress": 50},
    "streamingVideoGenerationResponse": {"videoId": "v", "videoPostId": "p", "progress": 30},
    "modelResponse": {"responseId": "r", "message": "", "streamErrors": []},
    "finalMetadata": {"followUpSuggestions": []},
}


def test_every_event_key_has_an_example() -> None:
    assert set(EVENTFUL) == EVENT_KEYS


@pytest.mark.parametrize("key", sorted(EVENTFUL))
def test_a_thinking_line_with_more_than_its_token_is_read_alone(key: str) -> None:
    """A thinking frame whose other fields make events (a search, an image, a video, the end...)
    is never a template: each such line reaches the decoder whole."""
    think = [
        resp(token=t, isThinking=True, messageTag="summary", rolloutId="Grok", **{key: EVENTFUL[key]})
        for t in ("a", "b", "c", "d")
    ]
    lines = [TOKENS[0], *think, TOKENS[1], SOFT]
    _, slow = one_by_one(b"".join(lines))
    alone = think[:1] if key in ("error", "finalMetadata") else think  # the first of these ends it
    assert slow[1 : 1 + len(alone)] == alone
    assert_fast_is_generic(lines, [len(TOKENS[0]) + 5, len(b"".join(lines)) - 9])


PREVIEW = {"imageUrl": "users/u/generated/p-part-0/image.jpg", "progress": 50, "imageUuid": "p"}
CARD = {"jsonData": {"id": "c-1", "image_chunk": PREVIEW}}
# What a thinking token frame may carry that makes an event every time it comes.
PROGRESS = {
    "cardAttachment": (CARD, ImageOut),
    "cardAttachments": ([CARD], ImageOut),
    "streamingImageGenerationResponse": (PREVIEW, ImageOut),
    "streamingVideoGenerationResponse": ({"videoId": "v-1", "progress": 50, "videoPostId": "p-1"}, VideoOut),
}


@pytest.mark.parametrize("key", sorted(PROGRESS))
def test_progress_riding_on_repeated_thinking_frames_is_reported_for_every_frame(key: str) -> None:
    """Lines alike but for their token would take the decoder's fast path; the progress each
    carries must still come out once per line, beside the whole reasoning."""
    value, kind = PROGRESS[key]
    lines = [
        resp(token=f"t{i} ", isThinking=True, messageTag="header", rolloutId="Grok", **{key: value})
        for i in range(24)
    ]
    data = CONV + b"".join(lines) + b"".join(TOKENS) + SOFT
    for splits in ([], [len(CONV) + len(lines[0]) * 3 + 5]):  # in one read, or cut mid-line
        events, _ = decode(data, splits)
        assert sum(isinstance(e, kind) for e in events) == len(lines)
        reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
        assert reasoning == "".join(f"t{i} " for i in range(24))


def test_reasoning_of_one_rollout_in_one_read_is_one_delta() -> None:
    def think(token: str, agent: str) -> bytes:
        return resp(token=token, isThinking=True, messageTag="summary", rolloutId=agent, messageStepId=1)

    data = think("a", "Grok") + think("b", "Grok") + think("c", "Agent 1") + think("d", "Grok")
    card = resp(
        token="<xai:tool_name>web_search</xai:tool_name>", isThinking=True, messageTag="tool_usage_card"
    )
    events, _ = decode(data + card + think("e", "Grok") + think("f", "Grok") + TOKENS[0] + SOFT)
    assert events == [
        ReasoningDelta("ab", "Grok"),
        ReasoningDelta("c", "Agent 1"),
        ReasoningDelta("d", "Grok"),
        ServerToolUse("web_search", {}),
        ReasoningDelta("ef", "Grok"),
        TextDelta("A tide "),
        Finish(),
    ]


def test_a_character_cut_between_two_literals_is_two_bad_lines() -> None:
    """Concatenated, the two halves of é would be valid UTF-8: each line alone is not."""
    run = [resp(token=t, isThinking=False, messageTag="final") for t in ("a", "b", "c", "d", "e")]
    at = run[1].index(b'"token":"b') + 10
    cut = [run[0], run[1][:at] + b"\xc3" + run[1][at:], bad_literal(run[2], b"\xa9"), run[3], run[4]]
    for data in (b"".join(cut) + SOFT, sse(cut) + SOFT):
        events, _ = decode(data)
        assert events == [TextDelta("ade"), Finish()]
