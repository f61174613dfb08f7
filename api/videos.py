"""Vercel entry: the `videos` deployable (see docs/deploy-vercel.md). The app lives in functions/videos.py."""

from functions.videos import app

__all__ = ["app"]
