"""Vercel entry: the `admin` deployable (see docs/deploy-vercel.md). The app lives in functions/admin.py."""

from functions.admin import app

__all__ = ["app"]
