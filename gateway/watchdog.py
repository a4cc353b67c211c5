"""One timer for all the timeouts of one upstream exchange (see :class:`Watchdog`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import TypeVar

T = TypeVar("T")


class Watchdog:
    """The timeouts of one upstream exchange with a single timer, not one per read.

    ``asyncio.timeout`` around every body read costs a timer handle each time;
    a stream has hundreds of reads. Instead one timer per exchange checks
    whether the read in progress has waited past its limit (or the exchange
    past its total) and only then cancels the task, which ``wait`` turns
    into ``TimeoutError``. Time the gateway spends sending to a slow client
    does not count as the upstream being idle.

    The timer is due no later than the wait in progress: a wait with a shorter
    limit than the one the timer was set for (the first body read after the
    first-byte wait) moves it earlier, once per exchange; longer or equal
    limits leave it, and it re-arms itself when it fires early.
    """

    __slots__ = ("_deadline", "_limit", "_loop", "_started", "_task", "_timer", "_timer_at", "expired")

    def __init__(self, total: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + total
        self._task = asyncio.current_task()
        self._started: float | None = None
        self._limit = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.expired = False

    def _due(self) -> float:
        assert self._started is not None
        return min(self._started + self._limit, self._deadline)

    def _check(self) -> None:
        self._timer = None
        if self._started is None:
            return
        due = self._due()
        if self._loop.time() >= due:
            self.expired = True
            if self._task is not None:
                self._task.cancel()
        else:
            self._arm(due)

    def _arm(self, when: float) -> None:
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._check)

    def overdue(self) -> bool:
        """Whether the exchange has run past its total limit."""
        return self._loop.time() >= self._deadline

    async def wait(self, awaitable: Awaitable[T], limit: float) -> T:
        """Await ``awaitable`` as one wait on the upstream, limited to ``limit`` seconds (and the total)."""
        started = self._loop.time()
        if started >= self._deadline:
            if isinstance(awaitable, Coroutine):
                awaitable.close()
            raise TimeoutError
        self._started = started
        self._limit = limit
        due = min(started + limit, self._deadline)
        if self._timer is None:
            self._arm(due)
        elif due < self._timer_at:
            self._timer.cancel()
            self._arm(due)
        try:
            result = await awaitable
        except asyncio.CancelledError:
            if self.expired and self._task is not None:
                self._task.uncancel()
                self.expired = False
                raise TimeoutError from None
            raise
        finally:
            self._started = None
        if self.expired:
            # The timer fired just as the wait ended: absorb the cancellation it requested.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                if self._task is not None:
                    self._task.uncancel()
            self.expired = False
        return result

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
