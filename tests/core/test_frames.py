"""The frame decoder: lines split anywhere, every frame kind and end rule of docs/protocol.md.

The fast path (runs of token lines read by template) is tested in test_token_lines.py."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import (
    Citation,
    Event,
    Fault,
    Finish,
    ImageOut,
    ReasoningDelta,
    SearchResults,
    ServerToolUse,
    TextDelta,
    VideoOut,
)
from core.protocol.classify import Kind
from core.protocol.frames import FrameDecoder


def line(obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


def resp(**fields: object) -> bytes:
    return line({"result": {"response": fields}})


CONV = line({"result": {"conversation": {"conversationId": "c-1", "temporary": True}}})
USER = resp(userResponse={"responseId": "u-1", "message": "hi", "sender": "human"})
THINK = resp(token="Looking up", isThinking=True, messageTag="header", rolloutId="Grok", messageStepId=1)
TOKENS = [
    resp(token=t, isThinking=False, messageTag="final", responseId="r-1")
    for t in ("A tide ", "is ", "water.")
]
SOFT = resp(isSoftStop=True, responseId="r-1")
FINAL = resp(finalMetadata={"followUpSuggestions": []})
MODEL = resp(modelResponse={"responseId": "r-1", "message": "A tide is water.", "streamErrors": []})
STREAM = CONV + USER + THINK + b"".join(TOKENS) + SOFT + FINAL + MODEL


def decode(data: bytes, splits: list[int] | None = None) -> tuple[list[Event], FrameDecoder]:
    decoder = FrameDecoder(assets_url="https://assets.test")
    events: list[Event] = []
    cuts = sorted(set(splits or []))
    start = 0
    for cut in [*cuts, len(data)]:
        events.extend(decoder.feed(data[start:cut]))
        start = cut
    events.extend(decoder.flush())
    return events, decoder


def merged(events: list[Event]) -> list[Event]:
    """Consecutive text deltas joined: how text is cut into deltas depends on the reads."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, TextDelta) and out and isinstance(out[-1], TextDelta):
            out[-1] = TextDelta(out[-1].text + event.text)
        else:
            out.append(event)
    return out


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_typical_stream() -> None:
    events, decoder = decode(STREAM)
    assert events[0] == ReasoningDelta("Looking up", "Grok")
    assert text_of(events) == "A tide is water."
    assert events[-1] == Finish()
    assert decoder.conversation_id == "c-1"
    assert decoder.done


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_chunk_split_gives_the_same_events(splits: list[int]) -> None:
    assert merged(decode(STREAM, splits)[0]) == merged(decode(STREAM)[0])


def test_one_line_per_read_gives_the_same_events_one_delta_a_token() -> None:
    """A spaced upstream: every frame its own read (the decoder's single-line path)."""
    lines = STREAM.splitlines(keepends=True)
    decoder = FrameDecoder()
    events = [e for line in lines for e in decoder.feed(line)] + decoder.flush()
    assert merged(events) == merged(decode(STREAM)[0])
    assert len([e for e in events if isinstance(e, TextDelta)]) == len(TOKENS)


def test_one_read_makes_one_text_delta() -> None:
    events, _ = decode(b"".join(TOKENS) + SOFT)
    assert events == [TextDelta("A tide is water."), Finish()]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=15),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
    st.sampled_from([b"\n", b"\r\n", b"\n\n"]),
    st.booleans(),
)
def test_split_prefix_and_newline_variants(
    tokens: list[str], splits: list[int], nl: bytes, sse: bool
) -> None:
    lines = [orjson.dumps({"result": {"response": {"token": t, "messageTag": "final"}}}) for t in tokens]
    lines.append(orjson.dumps({"result": {"response": {"isSoftStop": True}}}))
    prefix = b"data: " if sse else b""
    data = b"".join((b"event: message" + nl if sse else b"") + prefix + item + nl for item in lines)
    events, _ = decode(data, [s % (len(data) + 1) for s in splits])
    assert text_of(events) == "".join(tokens)
    assert events[-1] == Finish()


def test_stops_at_first_soft_stop_and_reads_nothing_after() -> None:
    events, decoder = decode(TOKENS[0] + SOFT + TOKENS[1])
    assert text_of(events) == "A tide "
    assert decoder.feed(TOKENS[2]) == []


def test_final_metadata_ends_and_done_marker_ends() -> None:
    assert decode(TOKENS[0] + FINAL + TOKENS[1])[0][-1] == Finish()
    events, _ = decode(b"data: " + TOKENS[0] + b"data: [DONE]\n" + TOKENS[1])
    assert text_of(events) == "A tide " and events[-1] == Finish()


def test_soft_stop_on_an_answer_token_is_text() -> None:
    events, _ = decode(resp(token="I made a video", isSoftStop=True) + TOKENS[0] + SOFT)
    assert text_of(events) == "I made a videoA tide "


def test_long_line_split_in_many_chunks() -> None:
    big = "x" * (3 * 1024 * 1024)
    data = resp(token=big, messageTag="final") + SOFT
    events, _ = decode(data, list(range(0, len(data), 65536)))
    assert text_of(events) == big


def test_line_over_limit_is_a_fault() -> None:
    decoder = FrameDecoder(max_line=1000)
    events = decoder.feed(b'{"result": "' + b"x" * 2000)
    assert isinstance(events[-1], Fault) and decoder.done


def test_tool_card_and_raw_result() -> None:
    card = resp(
        token="<xai:tool_usage_card><xai:tool_name>web_search</xai:tool_name></xai:tool_usage_card>",
        isThinking=True,
        messageTag="tool_usage_card",
        toolUsageCardId="tuc-1",
        toolUsageCard={"toolUsageCardId": "tuc-1", "webSearch": {"args": {"query": "spring tide"}}},
    )
    xml_only = resp(
        token="<xai:tool_name><![CDATA[browse_page]]></xai:tool_name>", messageTag="tool_usage_card"
    )
    raw = resp(token="{raw}", isThinking=True, messageTag="raw_function_result")
    events, _ = decode(card + xml_only + raw + TOKENS[0] + SOFT)
    assert events[0] == ServerToolUse("web_search", {"query": "spring tide"})
    assert events[1] == ServerToolUse("browse_page", {})
    assert text_of(events) == "A tide "


def test_citation_card_renders_numbered_link() -> None:
    card = {
        "id": "k7f2",
        "type": "render_inline_citation",
        "cardType": "citation_card",
        "url": "https://w.org/Tide",
    }
    results = resp(webSearchResults={"results": [{"url": "https://w.org/Tide", "title": "Tide"}]})
    tag = '<grok:render card_id="k7f2" card_type="citation_card" type="render_inline_citation"></grok:render>'
    data = results + resp(messageTag="final", cardAttachment={"jsonData": orjson.dumps(card).decode()})
    data += resp(token="Tides rise." + tag[:20], messageTag="final") + resp(
        token=tag[20:] + " Again" + tag, messageTag="final"
    )
    events, _ = decode(data + SOFT)
    assert text_of(events) == "Tides rise.[[1]](https://w.org/Tide) Again[[1]](https://w.org/Tide)"
    # one event per mark (for annotations), numbered by the URL's first citation
    assert [e for e in events if isinstance(e, Citation)] == [Citation(1, "https://w.org/Tide", "Tide")] * 2
    assert [e for e in events if isinstance(e, SearchResults)] == [
        SearchResults((("https://w.org/Tide", "Tide"),))
    ]


def test_searched_image_and_generated_image_tags() -> None:
    img_card = {
        "id": "s1",
        "type": "render_searched_image",
        "image": {"title": "Moon", "thumbnail": "https://t/m.jpg", "link": "https://l"},
    }
    gen_card = {"id": "g1", "type": "render_file", "cardType": "generated_image_card", "image_chunk": None}
    data = resp(cardAttachments=[orjson.dumps(img_card).decode(), gen_card])
    data += resp(
        token='See <grok:render card_id="s1" card_type="x" type="render_searched_image"></grok:render>.',
        messageTag="final",
    )
    data += resp(
        token='<grok:render card_id="g1" card_type="generated_image_card" type="render_file"><argument name="file_path">/x.jpg</argument></grok:render>',
        messageTag="final",
    )
    for progress in (50, 100, 100):
        chunk = {
            "imageUuid": "i1",
            "imageUrl": f"users/u/generated/i1{'-part-0' if progress < 100 else ''}/image.jpg",
            "progress": progress,
        }
        data += resp(cardAttachment={"jsonData": orjson.dumps({**gen_card, "image_chunk": chunk}).decode()})
    events, _ = decode(data + SOFT)
    assert text_of(events) == "See [![Moon](https://t/m.jpg)](https://l)."
    images = [e for e in events if isinstance(e, ImageOut)]
    assert [i.final for i in images] == [False, True]  # the second final frame is not repeated
    assert images[-1].url == "https://assets.test/users/u/generated/i1/image.jpg"


def test_streaming_image_and_video_frames() -> None:
    data = resp(
        streamingImageGenerationResponse={
            "imageIndex": 0,
            "progress": 100,
            "imageUrl": "users/u/e.jpg",
            "moderated": True,
        }
    )
    data += resp(streamingVideoGenerationResponse={"videoId": "v", "videoPostId": "p1", "progress": 45})
    events, _ = decode(data + SOFT)
    assert events[0] == ImageOut(
        "https://assets.test/users/u/e.jpg", 100, True, True, "https://assets.test/users/u/e.jpg"
    )
    assert events[1] == VideoOut(45, post_id="p1", video_id="v")


def test_model_response_fills_what_was_not_streamed() -> None:
    events, _ = decode(TOKENS[0] + MODEL)
    assert text_of(events) == "A tide is water." and events[-1] == Finish()
    events, _ = decode(MODEL)
    assert text_of(events) == "A tide is water."


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (
            line({"error": {"message": "Request rejected by anti-bot rules.", "code": 7, "details": []}}),
            Kind.ANTI_BOT,
        ),
        (
            resp(error={"message": "You've reached your usage limit. Please try again later."}),
            Kind.USAGE_LIMIT,
        ),
        (
            resp(
                modelResponse={"message": "", "streamErrors": [{"message": "service overloaded", "code": 14}]}
            ),
            Kind.LOAD_SHED,
        ),
        (CONV + USER + SOFT, Kind.EMPTY),
        (CONV + USER, Kind.EMPTY),
        (b"", Kind.EMPTY),
        (b"<!DOCTYPE html><html>Just a moment...</html>\n", Kind.CHALLENGE),
        (TOKENS[0], Kind.TRUNCATED),
    ],
)
def test_failures_become_classified_faults(data: bytes, kind: Kind) -> None:
    events, decoder = decode(data)
    fault = events[-1]
    assert isinstance(fault, Fault) and fault.failure is not None
    assert fault.failure.kind is kind
    assert decoder.done


def test_garbage_lines_are_skipped() -> None:
    events, _ = decode(b"not json\n{broken\n: comment\nid: 3\n" + TOKENS[0] + SOFT)
    assert text_of(events) == "A tide "


def test_search_results_web_pages_and_x_posts_each_once() -> None:
    web = {"results": [{"url": "https://w.org/Tide", "title": "Tide"}]}
    posts = {"results": [{"postId": "179", "username": "NOAA", "text": "Spring  tides\nare here"}]}
    data = (
        resp(toolUsageCardId="t1", isThinking=True, messageTag="tool_usage_card_result", webSearchResults=web)
        + resp(
            toolUsageCardId="t2", isThinking=True, messageTag="tool_usage_card_result", xSearchResults=posts
        )
        + resp(token="Tides.", messageTag="final")
        + resp(modelResponse={"responseId": "r", "message": "Tides.", "webSearchResults": web["results"]})
        + SOFT
    )
    events, _ = decode(data)
    assert [e for e in events if isinstance(e, SearchResults)] == [
        SearchResults((("https://w.org/Tide", "Tide"),)),
        SearchResults((("https://x.com/NOAA/status/179", "@NOAA: Spring tides are here"),)),
    ]  # the model response repeats a page already reported: not again
