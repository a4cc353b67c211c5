"""Stopping background tasks for certain, on Python versions whose ``wait_for`` loses a cancel."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("distillguard.tasks")

STOP_SECONDS = 5.0


async def stop_task(task: asyncio.Task[object] | None, seconds: float = STOP_SECONDS) -> bool:
    """Cancel ``task`` until it ends (at most ``seconds``); whether it ended.

    One ``cancel()`` is not enough on Python 3.11: ``asyncio.wait_for`` (which redis-py and others
    use around each read) swallows a cancel that arrives as its inner await completes
    (python/cpython#86296), and a polling loop then carries on into its next sleep, so a plain
    ``task.cancel(); await task`` waits for ever. The cancel is repeated until the task is done.
    """
    if task is None or task.done():
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not task.done():
        task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.error("background task %s did not stop within %.1f s", task.get_name(), seconds)
            return False
        await asyncio.wait([task], timeout=min(0.05, remaining))
    if not task.cancelled() and task.exception() is not None:
        log.warning("background task %s ended with an error", task.get_name(), exc_info=task.exception())
    return True
