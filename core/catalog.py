"""The public model catalog: public id -> upstream mode, tier, capability and limits.

The public id never goes upstream for chat: only the mode does (docs/protocol.md#chat-body). The tier
chooses which accounts may serve the model; a model may be served by its own tier or any
higher one, lowest sufficient tier first (docs/protocol.md#tiers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.errors import InvalidRequest, NotFound

# A fixed creation time keeps /v1/models stable across deploys (2026-03-09, the 0309 release).
CREATED = 1773014400
OWNER = "xai"


class Tier(StrEnum):
    BASIC = "basic"
    SUPER = "super"
    HEAVY = "heavy"

    @property
    def rank(self) -> int:
        return TIER_ORDER.index(self)


TIER_ORDER = (Tier.BASIC, Tier.SUPER, Tier.HEAVY)


class Capability(StrEnum):
    CHAT = "chat"
    IMAGE = "image"
    IMAGE_EDIT = "image-edit"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class Model:
    """One public model and how it is served."""

    id: str
    capability: Capability
    mode: str  # upstream modeId, and the quota window it spends
    tier: Tier  # the lowest tier that may serve it
    reasoning: bool = False  # upstream streams thinking tokens
    limits: dict[str, object] = field(default_factory=dict)

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """Candidate account tiers, lowest sufficient first."""
        return TIER_ORDER[self.tier.rank :]

    def to_openai(self) -> dict[str, object]:
        return {"id": self.id, "object": "model", "created": CREATED, "owned_by": OWNER}


def _chat(id: str, mode: str, tier: Tier) -> Model:
    return Model(id, Capability.CHAT, mode, tier, reasoning=mode in ("auto", "expert", "heavy"))


MODELS: tuple[Model, ...] = (
    _chat("grok-4.20-0309-non-reasoning", "fast", Tier.BASIC),
    _chat("grok-4.20-0309", "auto", Tier.BASIC),
    _chat("grok-4.20-0309-reasoning", "expert", Tier.BASIC),
    _chat("grok-4.20-0309-non-reasoning-super", "fast", Tier.SUPER),
    _chat("grok-4.20-0309-super", "auto", Tier.SUPER),
    _chat("grok-4.20-0309-reasoning-super", "expert", Tier.SUPER),
    _chat("grok-4.20-0309-non-reasoning-heavy", "fast", Tier.HEAVY),
    _chat("grok-4.20-0309-heavy", "auto", Tier.HEAVY),
    _chat("grok-4.20-0309-reasoning-heavy", "expert", Tier.HEAVY),
    _chat("grok-4.20-multi-agent-0309", "heavy", Tier.HEAVY),
    Model(
        "grok-imagine-image-lite",
        Capability.IMAGE,
        "fast",
        Tier.BASIC,
        limits={"n_min": 1, "n_max": 4, "sizes": None},
    ),
    Model(
        "grok-imagine-image",
        Capability.IMAGE,
        "auto",
        Tier.SUPER,
        limits={"n_min": 1, "n_max": 10, "pro": False},
    ),
    Model(
        "grok-imagine-image-pro",
        Capability.IMAGE,
        "auto",
        Tier.SUPER,
        limits={"n_min": 1, "n_max": 10, "pro": True},
    ),
    Model(
        "grok-imagine-image-edit",
        Capability.IMAGE_EDIT,
        "auto",
        Tier.SUPER,
        limits={"n_min": 1, "n_max": 2, "sizes": ("1024x1024",), "max_references": 5},
    ),
    Model(
        "grok-imagine-video",
        Capability.VIDEO,
        "auto",
        Tier.SUPER,
        limits={
            "seconds": (6, 10, 12, 16, 20),
            "sizes": ("720x1280", "1280x720", "1024x1024", "1024x1792", "1792x1024"),
            "resolutions": ("480p", "720p"),
            "presets": ("fun", "normal", "spicy", "custom"),
        },
    ),
)

_BY_ID = {model.id: model for model in MODELS}


def with_mode(model: Model, mode: str) -> Model:
    """The chat model of `model`'s tier served in upstream `mode` (`fast`, `auto`, `expert`), or
    `model` itself when the catalog has none."""
    for other in MODELS:
        if other.capability is model.capability and other.tier is model.tier and other.mode == mode:
            return other
    return model


def known_model(model_id: str) -> bool:
    """Whether `model_id` is a public id of the catalog."""
    return model_id in _BY_ID


def get_model(model_id: str) -> Model:
    """The model with this public id, or `NotFound` in the shape OpenAI uses."""
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise NotFound(
            f"The model `{model_id}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        ) from None


def require_capability(model_id: str, capability: Capability) -> Model:
    """The model, checked to serve `capability` (chat models cannot draw, and so on)."""
    model = get_model(model_id)
    if model.capability is not capability:
        raise InvalidRequest(
            f"The model `{model_id}` is a {model.capability.value} model and cannot serve {capability.value} "
            f"requests.",
            param="model",
            code="model_not_supported",
        )
    return model
