"""Stored responses end to end with the official `openai` SDK: create (stored by default),
retrieve, delete, input items, `previous_response_id` chains, ownership by API key, expiry.
The gateway runs with two API keys over SQLite; the per-store behaviour is the contract suite's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

MODEL = "grok-4.20-0309"
KEY_A, KEY_B = "key-alpha-0123456789", "key-beta-0123456789"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, SimServer]]:
    sim = SimServer().start()
    env = {
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_RETRY_BUDGET": "0",
        "GROKGATE_API_KEYS": f"{KEY_A},{KEY_B}",
    }
    tmp: Path = tmp_path_factory.mktemp("stored")
    gateway = start_gateway(env, tmp, [("sim-super-unlimited-st1", Tier.SUPER)])
    yield gateway, sim
    gateway.stop()
    sim.stop()


def _client(gw: tuple[Gateway, SimServer], key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw[0].url + "/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def client(gw: tuple[Gateway, SimServer]) -> Iterator[openai.OpenAI]:
    with _client(gw, KEY_A) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def other(gw: tuple[Gateway, SimServer]) -> Iterator[openai.OpenAI]:
    with _client(gw, KEY_B) as sdk:
        yield sdk


def test_create_retrieve_delete(client: openai.OpenAI, other: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="Name a tide. #sim say=Spring", store=True)
    assert created.store is True and created.output_text == "Spring"
    got = client.responses.retrieve(created.id)
    assert got.id == created.id and got.output_text == "Spring" and got.status == "completed"
    assert got.model_dump()["output"] == created.model_dump()["output"]
    with pytest.raises(openai.NotFoundError):  # another key: as if it did not exist
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(created.id)
    deleted = client.with_raw_response.responses.delete(created.id)
    assert deleted.http_response.json() == {"id": created.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(created.id)
    body = info.value.body
    assert (
        isinstance(body, dict) and body["type"] == "invalid_request_error" and created.id in body["message"]
    )
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="Hi #sim tokens=3", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_a_streamed_response_is_stored_once_complete(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Hi #sim say=streamed-answer") as stream:
        final = stream.get_final_response()
    assert final.store is True
    got = client.responses.retrieve(final.id)
    assert got.output_text == "streamed-answer" and got.status == "completed"


def test_input_items_pages(client: openai.OpenAI) -> None:
    given: list[Any] = [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"role": "assistant", "content": "two"},
        {"type": "message", "role": "user", "content": "three #sim tokens=2"},
    ]
    created = client.responses.create(model=MODEL, input=given)
    items = list(client.responses.input_items.list(created.id, order="asc"))
    assert [i.type for i in items] == ["message"] * 4
    assert [i.role for i in items] == ["developer", "user", "assistant", "user"]  # type: ignore[union-attr]
    assert items[2].content[0].text == "two"  # type: ignore[union-attr]
    assert all(i.id for i in items) and len({i.id for i in items}) == 4
    newest_first = client.responses.input_items.list(created.id)  # desc by default
    assert [i.id for i in newest_first.data] == [i.id for i in reversed(items)]
    page = client.responses.input_items.list(created.id, order="asc", limit=3)
    assert page.has_more and [i.id for i in page.data] == [i.id for i in items[:3]]
    rest = page.get_next_page()  # the SDK follows `after` = the last id
    assert [i.id for i in rest.data] == [items[3].id] and not rest.has_more
    before = client.get(
        f"/responses/{created.id}/input_items",
        cast_to=httpx.Response,
        options={"params": {"order": "asc", "before": items[3].id, "limit": 2}},
    ).json()
    assert [i["id"] for i in before["data"]] == [items[1].id, items[2].id] and before["has_more"]
    assert before["first_id"] == items[1].id and before["last_id"] == items[2].id
    with pytest.raises(openai.BadRequestError):
        client.responses.input_items.list(created.id, limit=0)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_nope")


def _last_upstream_message(sim: SimServer) -> str:
    return sim.log.last_chat().message  # over REST or the gateway WebSocket


def test_previous_response_id_chains_three_turns(
    gw: tuple[Gateway, SimServer], client: openai.OpenAI
) -> None:
    sim = gw[1]
    first = client.responses.create(model=MODEL, input="My name is Ada. #sim say=Hello-Ada")
    second = client.responses.create(
        model=MODEL, input="What is my name? #sim say=You-are-Ada", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    third = client.responses.create(
        model=MODEL, input="And again? #sim say=Still-Ada", previous_response_id=second.id
    )
    assert third.output_text == "Still-Ada"
    last = _last_upstream_message(sim)
    for text in ("My name is Ada.", "Hello-Ada", "What is my name?", "You-are-Ada", "And again?"):
        assert text in last
    assert last.index("Hello-Ada") < last.index("What is my name?") < last.index("You-are-Ada")
    # the third's own input items are its own; the replayed chain is not listed again
    assert [i.content[0].text for i in client.responses.input_items.list(third.id).data] == [  # type: ignore[union-attr]
        "And again? #sim say=Still-Ada"
    ]


def test_a_chain_with_a_tool_call_in_the_middle(gw: tuple[Gateway, SimServer], client: openai.OpenAI) -> None:
    sim = gw[1]
    first = client.responses.create(
        model=MODEL,
        input='Weather in Paris? #sim tool=get_weather args={"city": "Paris"}',
        tools=TOOLS,
    )
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        tools=TOOLS,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}],  # type: ignore[union-attr]
    )
    assert second.status == "completed"
    third = client.responses.create(
        model=MODEL, previous_response_id=second.id, input="Thanks! #sim say=Welcome", tools=TOOLS
    )
    assert third.output_text == "Welcome"
    last = _last_upstream_message(sim)
    assert "get_weather" in last and "Paris" in last and "18C and sunny" in last and "Thanks!" in last
    assert last.index("Paris") < last.index("18C and sunny") < last.index("Thanks!")


def test_previous_response_id_of_another_key_or_unknown_is_404(
    client: openai.OpenAI, other: openai.OpenAI
) -> None:
    mine = client.responses.create(model=MODEL, input="Hi #sim tokens=2")
    for sdk, rid in ((other, mine.id), (client, "resp_unknown")):
        with pytest.raises(openai.NotFoundError) as info:
            sdk.responses.create(model=MODEL, input="next", previous_response_id=rid)
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == "previous_response_id"


def test_expired_responses_are_404(gw: tuple[Gateway, SimServer], client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="Hi #sim tokens=2")
    deps = gw[0].deps
    clock = deps.responses.clock
    deps.responses.clock = lambda: time.time() + deps.settings.responses_ttl + 1
    try:
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model=MODEL, input="next", previous_response_id=created.id)
    finally:
        deps.responses.clock = clock
    assert client.responses.retrieve(created.id).id == created.id


def test_item_references_name_stored_items(
    gw: tuple[Gateway, SimServer], client: openai.OpenAI, other: openai.OpenAI
) -> None:
    """The AI SDK (store on) sends earlier assistant items back as `item_reference`s."""
    first = client.responses.create(model=MODEL, input="Pick a colour. #sim say=Teal-it-is")
    given = client.responses.input_items.list(first.id).data[0]
    message = next(item for item in first.output if item.type == "message")
    second = client.responses.create(
        model=MODEL,
        input=[
            {"type": "item_reference", "id": given.id},
            {"type": "item_reference", "id": message.id},
            {"role": "user", "content": "Which one? #sim say=Teal"},
        ],
    )
    assert second.output_text == "Teal"
    last = _last_upstream_message(gw[1])
    assert last.index("Pick a colour.") < last.index("Teal-it-is") < last.index("Which one?")
    for sdk, ref in ((other, message.id), (client, "msg_unknown"), (client, message.id[:-4] + "7fff")):
        with pytest.raises(openai.NotFoundError) as info:
            sdk.responses.create(model=MODEL, input=[{"type": "item_reference", "id": ref}])
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == "input[0].id"
