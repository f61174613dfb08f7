"""The local process's runner: each job runs as an asyncio task of the serving process.

`submit(id)` starts a created job at once; `kick()` sweeps jobs nobody runs (queued before a
restart, or abandoned by a crashed task) and is called when a client polls such a job. Tasks
are kept referenced until they end, and cancelled on shutdown (their claims then expire and
the next process picks the jobs up).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.services.videos import VideoService

log = logging.getLogger("grokgate.jobs")


class InlineRunner:
    def __init__(self, service: VideoService) -> None:
        self.service = service
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeping = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("video job task failed", exc_info=task.exception())

    def submit(self, job_id: str) -> None:
        self._spawn(self.service.run(job_id))

    def kick(self) -> None:
        """Run whatever is due, unless a sweep is already going."""
        if self._sweeping:
            return
        self._sweeping = True

        async def sweep() -> None:
            try:
                await self.service.run_due(limit=20)
            finally:
                self._sweeping = False

        self._spawn(sweep())

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
