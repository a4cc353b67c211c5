"""The watchdog's timeouts and the loop-wide clock that times all of a loop's watchdogs."""

from __future__ import annotations

import asyncio

import pytest

from gateway.watchdog import Watchdog, WatchdogClock, clock_of


async def test_a_wait_past_its_limit_times_out_and_the_others_do_not() -> None:
    async def waiter(limit: float, takes: float) -> str:
        watchdog = Watchdog(total=10)
        try:
            await watchdog.wait(asyncio.sleep(takes), limit)
            return "done"
        except TimeoutError:
            return "timeout"
        finally:
            watchdog.close()

    results = await asyncio.gather(waiter(0.05, 0.3), waiter(0.5, 0.1), waiter(0.02, 0.3), waiter(1, 0))
    assert results == ["timeout", "done", "timeout", "done"]


async def test_the_total_limit_holds_across_waits() -> None:
    watchdog = Watchdog(total=0.15)
    with pytest.raises(TimeoutError):
        for _ in range(10):  # each wait is within its own limit; together they pass the total
            await watchdog.wait(asyncio.sleep(0.04), 1.0)
    watchdog.close()


async def test_one_loop_timer_serves_every_watchdog() -> None:
    loop = asyncio.get_running_loop()  # asyncio's own loop in the tests: its timers are listed
    clock = clock_of(loop)
    assert clock_of(loop) is clock
    before = len(loop._scheduled)  # type: ignore[attr-defined]
    watchdogs = [Watchdog(total=60) for _ in range(50)]
    replies = [loop.create_future() for _ in watchdogs]
    pairs = enumerate(zip(watchdogs, replies, strict=True))
    waits = [asyncio.ensure_future(w.wait(f, 30 + n)) for n, (w, f) in pairs]
    await asyncio.sleep(0)
    assert len(clock) >= 50
    assert len(loop._scheduled) <= before + 1  # type: ignore[attr-defined]
    for reply in replies:
        reply.set_result(None)
    await asyncio.gather(*waits)
    for w in watchdogs:
        w.close()


async def test_cancelled_entries_do_not_pile_up() -> None:
    """A watchdog closed long before its timer is due leaves a marked entry; past COMPACT_AT of them,
    and more than half the heap, the heap is rebuilt without them."""
    clock = clock_of(asyncio.get_running_loop())
    live = [Watchdog(total=600) for _ in range(10)]
    for w in live:
        w._arm(asyncio.get_running_loop().time() + 300)
    for _ in range(3 * WatchdogClock.COMPACT_AT):
        w = Watchdog(total=600)
        w._arm(asyncio.get_running_loop().time() + 300)
        w.close()
    assert len(clock) < 2 * WatchdogClock.COMPACT_AT + 10
    for w in live:
        w.close()


async def test_a_timer_fired_early_rearms_for_the_rest() -> None:
    loop = asyncio.get_running_loop()
    clock = WatchdogClock(loop)
    fired: list[float] = []

    class Probe(Watchdog):
        __slots__ = ()

        def _check(self) -> None:
            fired.append(loop.time())

    probe = Probe(total=10)
    due = loop.time() + 0.05
    clock.add(due, probe)
    clock._fire()  # as if the loop ran the timer too early: nothing is due yet
    assert fired == [] and len(clock) == 1
    await asyncio.sleep(0.1)
    assert len(fired) == 1 and fired[0] >= due and len(clock) == 0
