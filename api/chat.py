"""Vercel entry: the `chat` deployable (see docs/deploy-vercel.md). The app lives in functions/chat.py."""

from functions.chat import app

__all__ = ["app"]
