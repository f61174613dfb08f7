import pytest

from core.catalog import MODELS, Capability, Tier, get_model, require_capability
from core.errors import InvalidRequest, NotFound


def test_the_fifteen_public_models():
    assert len(MODELS) == 15
    assert len({m.id for m in MODELS}) == 15
    by_capability = {c: [m.id for m in MODELS if m.capability is c] for c in Capability}
    assert len(by_capability[Capability.CHAT]) == 10
    assert by_capability[Capability.IMAGE] == [
        "grok-imagine-image-lite",
        "grok-imagine-image",
        "grok-imagine-image-pro",
    ]
    assert by_capability[Capability.IMAGE_EDIT] == ["grok-imagine-image-edit"]
    assert by_capability[Capability.VIDEO] == ["grok-imagine-video"]


@pytest.mark.parametrize(
    ("model_id", "mode", "tiers"),
    [
        ("grok-4.20-0309-non-reasoning", "fast", (Tier.BASIC, Tier.SUPER, Tier.HEAVY)),
        ("grok-4.20-0309", "auto", (Tier.BASIC, Tier.SUPER, Tier.HEAVY)),
        ("grok-4.20-0309-reasoning-super", "expert", (Tier.SUPER, Tier.HEAVY)),
        ("grok-4.20-0309-heavy", "auto", (Tier.HEAVY,)),
        ("grok-4.20-multi-agent-0309", "heavy", (Tier.HEAVY,)),
        ("grok-imagine-image-lite", "fast", (Tier.BASIC, Tier.SUPER, Tier.HEAVY)),
    ],
)
def test_mode_and_candidate_tiers_lowest_first(model_id, mode, tiers):
    model = get_model(model_id)
    assert model.mode == mode
    assert model.tiers == tiers


def test_openai_shape():
    assert get_model("grok-4.20-0309").to_openai() == {
        "id": "grok-4.20-0309",
        "object": "model",
        "created": 1773014400,
        "owned_by": "xai",
    }


def test_unknown_model_is_a_404_naming_the_param():
    with pytest.raises(NotFound) as info:
        get_model("gpt-4")
    assert info.value.param == "model"
    assert info.value.code == "model_not_found"


def test_capability_mismatch_is_a_400():
    with pytest.raises(InvalidRequest, match="image"):
        require_capability("grok-imagine-image", Capability.CHAT)
    assert require_capability("grok-4.20-0309", Capability.CHAT).id == "grok-4.20-0309"
