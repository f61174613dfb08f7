"""Vercel entry: the `images` deployable (see docs/deploy-vercel.md). The app lives in functions/images.py."""

from functions.images import app

__all__ = ["app"]
