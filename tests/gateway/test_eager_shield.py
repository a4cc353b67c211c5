"""``shielded``: ``asyncio.shield``'s guarantees, without a task for a coroutine that never waits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop

from gateway.eager_shield import shielded


def _counting_tasks(loop: asyncio.AbstractEventLoop) -> list[Any]:
    made: list[Any] = []
    factory = loop.get_task_factory()

    def count(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        if factory is not None:
            return factory(loop, coro, **kwargs)  # type: ignore[return-value]
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(count)  # type: ignore[arg-type]
    return made


async def test_a_coroutine_that_never_waits_runs_without_a_task() -> None:
    made = _counting_tasks(asyncio.get_running_loop())

    async def settle() -> int:
        return 42

    assert await shielded(settle()) == 42
    assert made == []  # asyncio.shield would have made one


async def test_results_and_errors_come_back_after_waits_of_every_kind() -> None:
    async def waits() -> str:
        await asyncio.sleep(0)  # a bare yield
        await asyncio.sleep(0.01)  # a future
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, future.set_result, "done")
        return await future

    async def fails_later() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("settlement failed")

    async def fails_at_once() -> None:
        raise KeyError("at once")

    assert await shielded(waits()) == "done"
    with pytest.raises(ValueError, match="settlement failed"):
        await shielded(fails_later())
    with pytest.raises(KeyError):
        await shielded(fails_at_once())


async def test_a_cancelled_caller_leaves_the_coroutine_running_to_its_end() -> None:
    steps: list[str] = []
    release = asyncio.Event()

    async def settle() -> None:
        steps.append("started")
        await release.wait()
        await asyncio.sleep(0.01)
        steps.append("settled")

    async def request() -> None:
        try:
            await shielded(settle())
        except asyncio.CancelledError:
            steps.append("caller cancelled")
            raise

    task = asyncio.create_task(request())
    await asyncio.sleep(0.01)
    assert steps == ["started"]
    task.cancel()  # a forced shutdown cancels the request's task during its after phase
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    for _ in range(100):
        if "settled" in steps:
            break
        await asyncio.sleep(0.01)
    assert steps == ["started", "caller cancelled", "settled"]


def test_the_same_under_uvloop() -> None:
    async def main() -> list[str]:
        steps: list[str] = []

        async def settle() -> None:
            await asyncio.sleep(0.01)
            steps.append("settled")

        task = asyncio.create_task(shielded(settle()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        return steps

    assert uvloop.run(main()) == ["settled"]
