"""What the media services hand back, in the domain's words; a dialect renders it.

    Picture / GeneratedImages   core/services/images.py -> core/transcode/openai_images.py
    Video / VideoPage           core/services/videos.py -> core/transcode/openai_videos.py

The services decide what is true (which images were delivered and how, when a video's media
expire, a failed job's reason); the dialect modules only decide how a client sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.ports import JobStatus


@dataclass(frozen=True, slots=True)
class Picture:
    """An image's bytes and type; `url` is its stored link once stored (None: it goes inline)."""

    data: bytes
    mime: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class GeneratedImages:
    """What one image request delivered; `created` is seconds since the epoch."""

    created: int
    images: tuple[Picture, ...]


@dataclass(frozen=True, slots=True)
class Video:
    """A video job as its owner sees it. Times are seconds since the epoch; `expires_at` is when
    a completed job's stored media expire (None when kept); the error fields are set when failed."""

    id: str
    model: str
    status: JobStatus
    progress: int
    created_at: float
    prompt: str | None
    seconds: int
    size: str
    completed_at: float | None = None
    expires_at: float | None = None
    remixed_from: str | None = None
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class VideoPage:
    """One page of an owner's videos, and whether more follow it."""

    videos: tuple[Video, ...]
    has_more: bool
