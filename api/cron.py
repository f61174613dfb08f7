"""Vercel entry: the `cron` deployable (see docs/deploy-vercel.md). The app lives in functions/cron.py."""

from functions.cron import app

__all__ = ["app"]
