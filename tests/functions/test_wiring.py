"""The composition root: each adapter and service is built once, on first use; what was built
follows the console's overrides and is closed by `Deps.aclose`, users before what they use."""

from __future__ import annotations

from core.settings import Settings
from functions._wiring import Deps


def _deps(tmp_path) -> Deps:
    return Deps(
        settings=Settings.from_env(
            {"GROKGATE_STORE": f"sqlite:///{tmp_path}/pool.db", "GROKGATE_MEDIA": str(tmp_path / "media")}
        )
    )


async def test_a_service_is_built_once_with_what_it_uses_before_it(tmp_path):
    deps = _deps(tmp_path)
    assert deps.built() == []
    service = deps.video_service
    assert deps.video_service is service
    built = deps.built()
    assert built[-1] is service
    assert deps.media_store in built and deps.job_store in built and deps.upstream in built
    assert built.index(deps.upstream) < built.index(service)
    await deps.aclose()


async def test_what_was_built_follows_the_overrides(tmp_path):
    deps = _deps(tmp_path)
    chat, images = deps.chat_service, deps.image_service
    deps.apply_overrides({"retry_budget": 5})
    assert deps.settings.retry_budget == 5
    assert chat.settings is deps.settings and images.settings is deps.settings
    assert deps.upstream.settings is deps.settings  # type: ignore[attr-defined]
    await deps.aclose()


async def test_aclose_closes_users_first_and_a_closed_deps_builds_afresh(tmp_path):
    deps = _deps(tmp_path)
    closed: list[str] = []

    class Closing:
        def __init__(self, name: str) -> None:
            self.name = name

        async def aclose(self) -> None:
            closed.append(self.name)

    deps.media_store = Closing("media")  # type: ignore[assignment]
    deps.job_store = Closing("jobs")  # type: ignore[assignment]
    deps.video_service = Closing("videos")  # type: ignore[assignment]
    await deps.aclose()
    assert closed == ["videos", "jobs", "media"]
    assert deps.built() == []
    assert not isinstance(deps.media_store, Closing)
    await deps.aclose()


def test_the_inline_runner_exists_only_for_the_inline_runner_setting(tmp_path):
    deps = _deps(tmp_path)
    assert deps.settings.video_runner == "inline"
    assert deps.inline_runner is not None and deps.inline_runner is deps.inline_runner
    cron = Deps(settings=deps.settings.model_copy(update={"video_runner": "cron"}))
    assert cron.inline_runner is None and cron.built() == []
