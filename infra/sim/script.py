"""What the simulated model "says": a pure, deterministic script derived from the prompt.

Both wire formats (NDJSON on E1/E2, events on the E3 WebSocket) render the same script, and tests call
`expected_answer()` to know the exact reasoning and answer text without running the server.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from infra.sim.directives import Directive, parse

# fmt: off
_VOCAB = (
    "tide", "moon", "ocean", "gravity", "orbit", "water", "shore", "current", "wave", "pull", "earth", "sun",
    "phase", "spring", "neap", "basin", "coast", "level", "rise", "fall", "cycle", "daily", "lunar", "solar",
    "force", "mass", "distance", "bulge", "rotation", "harbor", "channel", "estuary", "delta", "reef", "cliff", "sand",
    "pebble", "drift", "stream", "signal", "model", "answer", "reason", "check", "simple", "clear", "quiet", "bright",
    "early", "later", "modern", "ancient", "steady", "rapid", "gentle", "strong", "narrow", "broad", "local", "global",
)
# fmt: on
DEFAULT_TOKENS = 12
_DEFAULT_THINK = {"expert": 8, "heavy": 12, "grok-420-computer-use-sa": 8}
_STEP = 4  # thinking tokens per messageStepId
_ROLE_PREFIX = re.compile(r"^\[[A-Za-z_ -]+\]:?\s*")


@dataclass(frozen=True, slots=True)
class Think:
    text: str
    tag: str
    rollout: str
    step: int


@dataclass(frozen=True, slots=True)
class ToolCard:
    card_id: str
    query: str
    rollout: str
    step: int


@dataclass(frozen=True, slots=True)
class SearchResults:
    card_id: str
    results: tuple[dict[str, str], ...]


@dataclass(frozen=True, slots=True)
class Card:
    """One state of an F8 card attachment (the dict is JSON-encoded into `jsonData` on the wire)."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    text: str


Item = Think | ToolCard | SearchResults | Card | Answer


@dataclass(frozen=True, slots=True)
class Script:
    mode: str
    directive: Directive
    items: tuple[Item, ...]
    reasoning: str
    answer: str
    images: tuple[str, ...]  # final generated image paths, relative to the assets host
    results: tuple[dict[str, str], ...]
    cards: tuple[dict[str, Any], ...]  # final state of every card, for modelResponse.cardAttachmentsJson


def seed_text(message: str, directive: Directive) -> str:
    """The stable part of a prompt: the directive line, else the last non-blank line without `[role]:`."""
    if directive.line:
        return directive.line
    for line in reversed(message.splitlines()):
        if line.strip():
            return _ROLE_PREFIX.sub("", line.strip()) or line.strip()
    return ""


def _rng(text: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def _words(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(_VOCAB) for _ in range(n)]


def _answer_tokens(rng: random.Random, n: int) -> list[str]:
    tokens = []
    for i, word in enumerate(_words(rng, n)):
        text = word.capitalize() if i == 0 else " " + word
        tokens.append(text + "." if i == n - 1 else text)
    return tokens


def tool_markup(name: str, args: Any, fmt: str) -> str:
    """The text a prompted model writes to call a tool, in one of the formats gateways must detect."""
    payload = json.dumps(args, ensure_ascii=False)
    if fmt == "invoke":
        params = "".join(
            f'<parameter name="{k}">{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}</parameter>'
            for k, v in (args.items() if isinstance(args, dict) else [("input", args)])
        )
        return f'<function_calls><invoke name="{name}">{params}</invoke></function_calls>'
    if fmt == "function_call":
        body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
        return f"<function_call>{body}</function_call>"
    if fmt == "json_fence":
        body = json.dumps({"tool_calls": [{"name": name, "arguments": args}]}, ensure_ascii=False)
        return f"```json\n{body}\n```"
    return f"<tool_calls><tool_call><tool_name>{name}</tool_name><parameters>{payload}</parameters></tool_call></tool_calls>"


def _chunks(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def render_tag(card_id: str, card_type: str, kind: str, inner: str = "") -> str:
    return f'<grok:render card_id="{card_id}" card_type="{card_type}" type="{kind}">{inner}</grok:render>'


def _thinking(rng: random.Random, mode: str, directive: Directive) -> list[Think]:
    count = directive.think if directive.think is not None else _DEFAULT_THINK.get(mode, 0)
    agents = directive.agents if directive.agents is not None else 3
    rollouts = ["Grok"] + [f"Agent {i}" for i in range(1, agents + 1)] if mode == "heavy" else ["Grok"]
    out = []
    for j, word in enumerate(_words(rng, count)):
        step = j // _STEP
        rollout = rollouts[step % len(rollouts)]
        if j % _STEP == 0:
            out.append(Think(f"{word.capitalize()} {rng.choice(_VOCAB)}\n", "header", rollout, step + 1))
        else:
            end = ".\n" if j % _STEP == _STEP - 1 or j == count - 1 else ""
            out.append(Think(f" {word}{end}", "summary", rollout, step + 1))
    return out


def _image_items(rng: random.Random, n: int, user_id: str, moderated: bool) -> tuple[list[Item], list[str]]:
    items: list[Item] = []
    finals: list[str] = []
    for k in range(n):
        card_id = f"img{rng.randrange(16**6):06x}"
        uid = f"{rng.getrandbits(128):032x}"
        image_uuid = f"{uid[:8]}-{uid[8:12]}-4{uid[13:16]}-a{uid[17:20]}-{uid[20:32]}"
        base = {"id": card_id, "type": "render_generated_image", "cardType": "generated_image_card"}
        inner = f'<argument name="file_path">/home/workdir/artifacts/imagine_images/image_{k}.jpg</argument>'
        final = f"users/{user_id}/generated/{image_uuid}/image.jpg"
        blocked = moderated and k == 0
        items += [
            Card({**base, "image_chunk": None}),
            Answer(render_tag(card_id, "generated_image_card", "render_generated_image", inner)),
            Card(
                {
                    **base,
                    "image_chunk": {
                        "imageUuid": image_uuid,
                        "imageUrl": f"users/{user_id}/generated/{image_uuid}-part-0/image.jpg",
                        "progress": 50,
                    },
                }
            ),
            Card(
                {
                    **base,
                    "image_chunk": {
                        "imageUuid": image_uuid,
                        "imageUrl": final,
                        "progress": 100,
                        "moderated": blocked,
                    },
                }
            ),
        ]
        if not blocked:
            finals.append(final)
    return items, finals


@functools.lru_cache(maxsize=2048)
def build(
    message: str,
    mode: str,
    user_id: str = "sim-user",
    image_count: int | None = None,
    search_allowed: bool = True,
) -> Script:
    """The script for one chat turn. `image_count` is the body's imageGenerationCount (used for
    Drawing:); `search_allowed` is False when the body says `disableSearch` (then no search runs)."""
    directive = parse(message)
    rng = _rng(seed_text(message, directive) + "|" + mode)
    if directive.empty or directive.inband_error or directive.usage_limit:
        return Script(mode, directive, (), "", "", (), (), ())
    thinking = _thinking(rng, mode, directive)
    items: list[Item] = list(thinking)
    results: tuple[dict[str, str], ...] = ()
    if (directive.search or directive.cite) and search_allowed:
        query = " ".join(_words(rng, 3))
        results = tuple(
            {
                "url": f"https://en.wikipedia.org/wiki/{w.capitalize()}",
                "title": f"{w.capitalize()} - Wikipedia",
            }
            for w in _words(rng, max(2, directive.cite))
        )
        card_id = f"tuc-{rng.randrange(10**6)}"
        at = min(_STEP, len(items))
        items[at:at] = [
            ToolCard(card_id, query, "Grok" if mode != "heavy" else "Agent 1", at // _STEP + 1),
            SearchResults(card_id, results),
        ]
    cards: list[dict[str, Any]] = []
    if directive.say is not None:
        words = _chunks(directive.say)
    elif directive.tool:
        prose = _answer_tokens(rng, directive.tokens) if directive.tokens else []
        words = [
            *prose,
            *_chunks(
                ("\n\n" if prose else "") + tool_markup(directive.tool, directive.args, directive.tool_format)
            ),
        ]
    else:
        words = _answer_tokens(rng, directive.tokens if directive.tokens is not None else DEFAULT_TOKENS)
    answer: list[Item] = [Answer(w) for w in words]
    if directive.card:
        card = {
            "id": f"cit{rng.randrange(16**5):05x}",
            "type": "render_inline_citation",
            "cardType": "citation_card",
            "url": results[0]["url"] if results else "https://en.wikipedia.org/wiki/Tide",
        }
        cards.append(card)
        at = (len(answer) + 1) // 2
        answer[at:at] = [
            Card(card),
            Answer(render_tag(card["id"], "citation_card", "render_inline_citation")),
        ]
    for n, result in enumerate(results[: directive.cite]):
        # one sentence per cited result, its citation card then the token with the render tag
        card = {
            "id": f"cit{rng.randrange(16**5):05x}{n}",
            "type": "render_inline_citation",
            "cardType": "citation_card",
            "url": result["url"],
        }
        cards.append(card)
        sentence = f" {result['title'].split(' - ')[0]} is cited."
        answer += [
            Answer(sentence),
            Card(card),
            Answer(render_tag(card["id"], "citation_card", "render_inline_citation")),
        ]
    drawing = message.lstrip().startswith("Drawing:")
    n_images = directive.image if directive.image is not None else ((image_count or 2) if drawing else 0)
    image_items, finals = _image_items(rng, n_images, user_id, directive.moderated)
    cards += [
        i.data
        for i in image_items
        if isinstance(i, Card) and (i.data.get("image_chunk") or {}).get("progress") == 100
    ]
    items += answer + image_items
    return Script(
        mode=mode,
        directive=directive,
        items=tuple(items),
        reasoning="".join(i.text for i in thinking),
        answer="".join(i.text for i in items if isinstance(i, Answer)),
        images=tuple(finals),
        results=results,
        cards=tuple(cards),
    )


def expected_answer(prompt: str, mode: str = "fast", image_count: int | None = None) -> tuple[str, str]:
    """(reasoning, answer) exactly as the simulator streams them for `prompt` in `mode`.

    The answer is the raw upstream text, including any `<grok:render>` tags and tool-call markup.
    """
    script = build(prompt, mode, "sim-user", image_count)
    return script.reasoning, script.answer
