"""The tool-call detector, argument repair, schema checks and the prompt, with random token splits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import Finish, ReasoningDelta, TextDelta, ToolCall
from core.transcode.openai_tools import openai_tool_spec
from core.transcode.tool_args import check, loads_lenient, parse_arguments, repair_json
from core.transcode.tool_markup import RawCall
from core.transcode.tools import (
    RETRY,
    Tool,
    ToolChoice,
    ToolFilter,
    ToolSpec,
    new_call_id,
    render_calls,
    result_role,
)

WEATHER = Tool(
    "get_weather",
    "Weather for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "units": {"type": "string", "enum": ["c", "f"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["city"],
    },
)
WRITE = Tool(
    "write_file",
    "",
    {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}},
)


def spec(**kw: Any) -> ToolSpec:
    return ToolSpec(tools=(WEATHER, WRITE), new_id=lambda prefix: prefix + "x", **kw)


def run(text_pieces: list[str], s: ToolSpec | None = None) -> list[tuple[str, ...]]:
    """Feed pieces; merge adjacent text; calls as (name, parsed-args JSON)."""
    detector = (s or spec()).detector()
    out: list[TextDelta | ToolCall] = []
    for piece in text_pieces:
        out += detector.feed(piece)
    out += detector.flush()
    merged: list[tuple[str, ...]] = []
    for event in out:
        if isinstance(event, TextDelta):
            if merged and merged[-1][0] == "text":
                merged[-1] = ("text", merged[-1][1] + event.text)
            elif event.text:
                merged.append(("text", event.text))
        else:
            merged.append(("call", event.name, json.dumps(json.loads(event.arguments), sort_keys=True)))
    return merged


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(text[last:p])
        last = p
    pieces.append(text[last:])
    return pieces


def _raw(value: Any) -> str:
    """A parameter value as a model lays it out: one newline on each side is layout, so a value
    that starts or ends with a newline is written between layout newlines to survive."""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"\n{text}\n" if text.startswith("\n") or text.endswith("\n") else text


def markup(name: str, args: dict[str, Any], fmt: str) -> str:
    payload = json.dumps(args)
    if fmt == "invoke":
        params = "".join(f'<parameter name="{k}">{_raw(v)}</parameter>' for k, v in args.items())
        return f'<function_calls><invoke name="{name}">{params}</invoke></function_calls>'
    if fmt == "function_call":
        return "<function_call>" + json.dumps({"name": name, "arguments": args}) + "</function_call>"
    if fmt == "json_fence":
        return "```json\n" + json.dumps({"tool_calls": [{"name": name, "arguments": args}]}) + "\n```"
    if fmt == "fence_single":
        return "```\n" + json.dumps({"name": name, "arguments": args}, indent=2) + "\n```"
    if fmt == "hermes":
        return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"
    if fmt == "multiline":
        return (
            "<tool_calls>\n  <tool_call>\n    <tool_name>"
            + name
            + "</tool_name>\n    <parameters>\n"
            + json.dumps(args, indent=4)
            + "\n    </parameters>\n  </tool_call>\n</tool_calls>"
        )
    return f"<tool_calls><tool_call><tool_name>{name}</tool_name><parameters>{payload}</parameters></tool_call></tool_calls>"


FORMATS = ["xml", "invoke", "function_call", "json_fence", "fence_single", "hermes", "multiline"]
prose = st.text(alphabet=st.characters(blacklist_characters="<`", blacklist_categories=("Cs",)), max_size=60)
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=25)
city = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<>"), min_size=1, max_size=20
)


@given(text=prose, cut=cuts)
def test_plain_text_passes_through_unchanged(text: str, cut: list[int]) -> None:
    assert run(split(text, cut)) == ([("text", text)] if text else [])


@given(before=prose, fmt=st.sampled_from(FORMATS), city=city, days=st.integers(0, 99), cut=cuts)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_every_format_is_found_across_any_split(
    before: str, fmt: str, city: str, days: int, cut: list[int]
) -> None:
    args = {"city": city, "days": days}
    text = before + markup("get_weather", args, fmt)
    expected: list[tuple[str, ...]] = [("text", before.rstrip())] if before.rstrip() else []
    expected.append(("call", "get_weather", json.dumps(args, sort_keys=True)))
    assert run(split(text, cut)) == expected


FRAGMENTS = [
    "a",
    " ",
    "\n",
    "<",
    ">",
    "/",
    "`",
    "```",
    "{",
    "}",
    '"',
    "x",
    "tool_call",
    "<tool_call>",
    "</tool_call>",
    "<tool_calls>",
    "</tool_calls>",
    "<invoke",
    ' name="get_weather"',
    "</invoke>",
    "json\n",
    "<tool_name>",
    "get_weather",
    "</tool_name>",
    "<parameters>",
    "</parameters>",
    '{"city": "Oslo"}',
    "```json\n",
    "<function_call>",
]


@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=30), cut=cuts)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_output_does_not_depend_on_the_split_and_loses_no_text(parts: list[str], cut: list[int]) -> None:
    text = "".join(parts)
    whole = run([text])
    assert run(split(text, cut)) == whole
    if not any(item[0] == "call" for item in whole):
        assert "".join(item[1] for item in whole) == text


def test_text_before_a_call_is_kept_and_text_after_is_dropped() -> None:
    text = (
        "I'll look.\n" + markup("get_weather", {"city": "Rome"}, "xml") + "\nThe weather is sunny (made up)."
    )
    assert run([text]) == [("text", "I'll look."), ("call", "get_weather", '{"city": "Rome"}')]


def test_several_calls_in_one_block_and_in_separate_blocks() -> None:
    block = (
        '<tool_calls><tool_call><tool_name>get_weather</tool_name><parameters>{"city":"A"}</parameters></tool_call>'
        '<tool_call><tool_name>get_weather</tool_name><parameters>{"city":"B"}</parameters></tool_call></tool_calls>'
    )
    second = "\n" + markup("write_file", {"path": "p", "content": "c"}, "hermes")
    out = run(split(block + second, [7, 50, 51, 200]))
    assert [o[1] for o in out] == ["get_weather", "get_weather", "write_file"]
    single = spec(parallel=False)
    assert [o[1] for o in run([block + second], single)] == ["get_weather"]


def test_multiline_arguments_raw_newlines_and_a_closing_tag_inside_a_string() -> None:
    content = 'line one\nline "two"\n</parameters></tool_call></tool_calls> still inside'
    raw_json = '{"path": "a.xml", "content": "' + content.replace('"', '\\"') + '"}'
    text = (
        "<tool_calls><tool_call><tool_name>write_file</tool_name><parameters>"
        + raw_json
        + "</parameters></tool_call></tool_calls>"
    )
    out = run(split(text, list(range(0, len(text), 3))))
    assert out == [("call", "write_file", json.dumps({"content": content, "path": "a.xml"}, sort_keys=True))]


@pytest.mark.parametrize(
    "args",
    [
        "{'city': 'Paris', 'days': 2,}",  # single quotes, trailing comma
        '{city: "Paris", days: 2}',  # unquoted keys
        '```json\n{"city": "Paris", "days": 2}\n```',  # fenced
        json.dumps(json.dumps({"city": "Paris", "days": 2})),  # an object given as a JSON string
        '{"city": "Paris", "days": "2"}',  # a number written as a string
    ],
)
def test_common_slips_in_arguments_are_repaired(args: str) -> None:
    text = f"<tool_calls><tool_call><tool_name>get_weather</tool_name><parameters>{args}</parameters></tool_call></tool_calls>"
    assert run([text]) == [("call", "get_weather", '{"city": "Paris", "days": 2}')]


def test_invoke_parameters_are_typed_by_the_schema() -> None:
    text = (
        '<invoke name="get_weather"><parameter name="city">New York</parameter>'
        '<parameter name="days">3</parameter><parameter name="tags">["a", "b"]</parameter></invoke>'
    )
    assert run([text]) == [
        (
            "call",
            "get_weather",
            json.dumps({"city": "New York", "days": 3, "tags": ["a", "b"]}, sort_keys=True),
        )
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Use the <tool_call> tag like this.",
        "<tool_calls><tool_call><tool_name>unknown</tool_name><parameters>{}</parameters></tool_call></tool_calls>",
        '```json\n{"name": "Alice", "age": 3}\n```',
        "```python\nprint('<invoke name=\"x\">')\n```",
        "a <b> c <tool_c",
        "<tool_calls><tool_call><tool_name>get_weather</tool_name><parameters>[1, 2]</parameters>",
    ],
)
def test_markup_that_is_not_a_call_is_released_as_text(text: str) -> None:
    assert run([text]) == [("text", text)]
    assert run(list(text)) == [("text", text)]


def test_only_a_possible_opener_is_held_back() -> None:
    detector = spec().detector()
    assert detector.feed("x < y and <too") == [TextDelta("x < y and")]
    assert detector.feed("k") == [TextDelta(" <took")]
    assert detector.feed("``") == []
    assert detector.feed("a") == [TextDelta("``a")]


def test_an_unterminated_block_at_the_end_is_still_a_call() -> None:
    text = '<tool_calls><tool_call><tool_name>get_weather</tool_name><parameters>{"city": "Oslo"}'
    assert run([text]) == [("call", "get_weather", '{"city": "Oslo"}')]


def test_schema_problems_are_reported_and_strict_tools_reject() -> None:
    _, problems = check({"city": 3, "units": "k"}, WEATHER.parameters)
    assert problems == ["$.city: expected string, got integer", '$.units: must be one of ["c", "f"]']
    _, missing = check({}, WEATHER.parameters)
    assert missing == ["$: missing required property 'city'"]
    fixed, ok = check({"city": "x", "days": "4", "tags": '["a"]'}, WEATHER.parameters)
    assert ok == [] and fixed == {"city": "x", "days": 4, "tags": ["a"]}
    text = markup("get_weather", {"days": 1}, "xml")
    assert run([text])[0][0] == "call"  # reported, still a call: the client's validator answers the model
    strict = ToolSpec(tools=(Tool("get_weather", "", WEATHER.parameters, strict=True),))
    assert run([text], strict) == [("text", text)]


def test_repair_helpers() -> None:
    assert loads_lenient("{a: True, 'b': None, c: [1, 2,],}") == {"a": True, "b": None, "c": [1, 2]}
    assert json.loads(repair_json('{"s": "x\ny"}')) == {"s": "x\ny"}
    assert parse_arguments("") == {}
    assert parse_arguments(None) == {}
    assert parse_arguments("[1]") is None
    assert parse_arguments('"{\\"a\\": 1}"') == {"a": 1}


def test_tool_choice_forms() -> None:
    assert not spec(choice=ToolChoice("none")).active
    assert spec(choice=ToolChoice("none")).prompt() == ""
    forced = spec(choice=ToolChoice("forced", "write_file"))
    assert "MUST call the tool `write_file`" in forced.prompt()
    text = markup("get_weather", {"city": "x"}, "xml")
    assert run([text], forced)[0][0] == "text"  # another tool is not the forced one
    assert "MUST call at least one tool" in spec(choice=ToolChoice("required")).prompt()
    auto = spec().prompt()
    assert "<tool_calls>" in auto and "## get_weather" in auto and '"required":["city"]' in auto


def test_required_holds_text_until_a_call_then_releases_it() -> None:
    detector = spec(choice=ToolChoice("required")).detector()
    assert detector.feed("Thinking about it. ") == []
    out = detector.feed(markup("get_weather", {"city": "Oslo"}, "xml"))
    assert isinstance(out[0], TextDelta) and out[0].text == "Thinking about it."
    assert isinstance(out[1], ToolCall)


def test_filter_finishes_with_tool_calls_and_asks_for_one_retry() -> None:
    f = ToolFilter(spec())
    events = [
        ReasoningDelta("r"),
        TextDelta("Hi "),
        TextDelta(markup("get_weather", {"city": "x"}, "xml")),
        Finish(),
    ]
    out = [e for ev in events for e in f.handle(ev)]
    assert [type(e).__name__ for e in out] == ["ReasoningDelta", "TextDelta", "ToolCall", "Finish"]
    assert out[-1] == Finish("tool_calls")

    required = spec(choice=ToolChoice("required"), retry=True)
    first = ToolFilter(required)
    assert first.handle(TextDelta("no call")) == []
    assert first.handle(Finish()) == [Finish(RETRY)]
    second = ToolFilter(spec(choice=ToolChoice("required")))
    assert second.handle(TextDelta("still none")) == []
    assert second.handle(Finish()) == [TextDelta("still none"), Finish()]
    assert ToolFilter(spec(max_calls=2)).apply(
        [TextDelta(markup("get_weather", {"city": "x"}, "xml") * 3), Finish()]
    ) == [ToolCall("call_x", "get_weather", '{"city":"x"}')] * 2 + [Finish("tool_calls")]


def test_history_rendering_and_ids() -> None:
    assert render_calls([("f", '{"a": 1}'), ("g", "")]) == (
        '<tool_calls><tool_call><tool_name>f</tool_name><parameters>{"a":1}</parameters></tool_call>'
        "<tool_call><tool_name>g</tool_name><parameters>{}</parameters></tool_call></tool_calls>"
    )
    assert result_role("call_1", "f") == "tool result for call_1 (f)"
    assert result_role("toolu_1", is_error=True) == "tool error for toolu_1"
    assert new_call_id().startswith("call_") and len(new_call_id()) == 29
    assert new_call_id("toolu_").startswith("toolu_01")
    # what we render for history is what we detect
    assert run([render_calls([("get_weather", '{"city":"Oslo"}')])]) == [
        ("call", "get_weather", '{"city": "Oslo"}')
    ]


@given(fmt=st.sampled_from(FORMATS), before=prose, cut=st.integers(min_value=1, max_value=10_000))
def test_a_fault_mid_call_never_releases_the_markup_as_text(fmt: str, before: str, cut: int) -> None:
    """Issue 18 row 7: the stream breaks inside a call; the text before it goes, the markup does not."""
    from core.errors import UpstreamError
    from core.events import Fault

    whole = markup("get_weather", {"city": "Paris"}, fmt)
    partial = whole[: 1 + cut % (len(whole) - 1)]  # at least the opener's first character, never all
    f = ToolFilter(spec())
    fault = Fault(UpstreamError("dropped"))
    out = f.apply([TextDelta(before + " " + partial)]) + f.handle(fault)
    text = "".join(e.text for e in out if isinstance(e, TextDelta))
    assert out[-1] is fault
    assert not any(isinstance(e, ToolCall) for e in out)
    assert text.strip() == before.strip() or text.startswith(before.rstrip())
    assert partial not in text or not partial.strip()


def test_a_fault_keeps_the_answer_held_for_a_required_call() -> None:
    from core.errors import UpstreamError
    from core.events import Fault

    f = ToolFilter(spec(choice=ToolChoice("required")))
    out = f.apply([TextDelta("Let me check. <tool_calls><tool_call><tool_na")])
    out += f.handle(Fault(UpstreamError("dropped")))
    assert [e.text for e in out if isinstance(e, TextDelta)] == ["Let me check."]


def test_namespaced_and_free_form_tools_resolve() -> None:
    ignored: list[str] = []
    spec = openai_tool_spec(
        [
            {"type": "function", "name": "exec", "parameters": {"type": "object", "properties": {}}},
            {
                "type": "namespace",
                "name": "functions",
                "description": "",
                "tools": [{"type": "custom", "name": "exec", "format": {"type": "text"}}],
            },
            {
                "type": "namespace",
                "name": "agents",
                "description": "",
                "tools": [{"type": "function", "name": "close"}],
            },
            {"type": "web_search"},
            {"type": "tool_search"},
        ],
        "auto",
        True,
        ignored,
    )
    assert spec is not None and ignored == ["tools.4.type=tool_search"]
    custom = spec.resolve(RawCall("functions.exec", '"await tools.x()"'))
    assert custom is not None and custom.custom and custom.namespace == "functions"
    assert custom.name == "exec" and custom.arguments == "await tools.x()"
    plain = spec.resolve(RawCall("exec", {}))
    assert plain is not None and not plain.custom and plain.namespace == ""
    bare = spec.resolve(RawCall("close", {}))  # a unique member name resolves without its namespace
    assert bare is not None and bare.namespace == "agents"
    wrapped = spec.resolve(RawCall("functions.exec", {"input": "text()"}))
    assert wrapped is not None and wrapped.arguments == "text()"
    prompt = spec.prompt()
    assert "## functions.exec" in prompt and "## agents.close" in prompt and "FREE-FORM" in prompt
