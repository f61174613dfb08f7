"""Vercel entry: the `video_worker` deployable (see docs/deploy-vercel.md). The app lives in functions/video_worker.py."""

from functions.video_worker import app

__all__ = ["app"]
