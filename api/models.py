"""Vercel entry: the `models` deployable (see docs/deploy-vercel.md). The app lives in functions/models.py."""

from functions.models import app

__all__ = ["app"]
