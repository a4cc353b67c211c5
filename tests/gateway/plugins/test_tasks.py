"""stop_task ends a background loop even when one cancel is swallowed on the way."""

from __future__ import annotations

import asyncio

from gateway.plugins.tasks import stop_task


async def test_a_loop_that_swallows_a_cancel_is_still_stopped() -> None:
    swallowed = 0

    async def poll() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                # What Python 3.11's wait_for does when the cancel meets a completed read.
                swallowed += 1
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                if swallowed > 3:
                    raise

    task = asyncio.create_task(poll())
    await asyncio.sleep(0.02)
    assert await stop_task(task, seconds=2)
    assert task.done() and swallowed == 4


async def test_a_task_that_never_stops_is_given_up_on_after_the_deadline() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await stop_task(task, seconds=0.3)
    assert 0.25 < loop.time() - started < 2
    release.set()  # leave nothing running behind the test
    await task


async def test_finished_and_missing_tasks_are_stopped() -> None:
    assert await stop_task(None)
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    assert await stop_task(done)
