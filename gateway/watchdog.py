"""One timer for all the timeouts of one upstream exchange (see :class:`Watchdog`), and one loop timer
for all the watchdogs of a loop (see :class:`WatchdogClock`)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import weakref
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# A due time in the clock's heap: [when, sequence, watchdog]; the watchdog is None once cancelled.
Entry = list[Any]


class WatchdogClock:
    """The timers of a loop's watchdogs in one heap, with one loop timer for its earliest entry.

    A held stream keeps its watchdog's timer for as long as it waits: a loop timer handle and its
    copied context are about 0.5 KB each, a heap entry about 0.13 KB, so 10,000 idle streams hold
    ~4 MB less. Cancelled entries stay in the heap (marked) until they are due or until they are
    more than half of it, when it is rebuilt without them: the heap stays within twice the live
    timers, at O(1) per cancel.
    """

    __slots__ = ("__weakref__", "_armed_at", "_cancelled", "_handle", "_heap", "_loop", "_sequence")

    COMPACT_AT = 1024  # cancelled entries below this are left for their due time

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[Entry] = []
        self._sequence = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._cancelled = 0

    def __len__(self) -> int:
        """Entries in the heap, cancelled ones included (for tests)."""
        return len(self._heap)

    def add(self, when: float, watchdog: Watchdog) -> Entry:
        entry = [when, next(self._sequence), watchdog]
        heapq.heappush(self._heap, entry)
        if self._handle is None or when < self._armed_at:
            self._arm(when)
        return entry

    def cancel(self, entry: Entry) -> None:
        if entry[2] is None:
            return
        entry[2] = None
        self._cancelled += 1
        if self._cancelled >= self.COMPACT_AT and self._cancelled * 2 > len(self._heap):
            self._heap = [e for e in self._heap if e[2] is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        heap = self._heap
        now = self._loop.time()
        due: list[Watchdog] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            watchdog = entry[2]
            if watchdog is None:
                self._cancelled -= 1
            else:
                entry[2] = None
                due.append(watchdog)
        while heap and heap[0][2] is None:  # no wake-up for a cancelled head
            heapq.heappop(heap)
            self._cancelled -= 1
        if heap:
            self._arm(heap[0][0])
        for watchdog in due:
            watchdog._check()


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WatchdogClock] = weakref.WeakKeyDictionary()


def clock_of(loop: asyncio.AbstractEventLoop) -> WatchdogClock:
    """The loop's watchdog clock (one per loop)."""
    clock = _clocks.get(loop)
    if clock is None:
        clock = _clocks[loop] = WatchdogClock(loop)
    return clock


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

    __slots__ = (
        "_clock",
        "_deadline",
        "_limit",
        "_loop",
        "_started",
        "_task",
        "_timer",
        "_timer_at",
        "expired",
    )

    def __init__(self, total: float) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._clock = clock_of(loop)
        self._deadline = loop.time() + total
        self._task = asyncio.current_task()
        self._started: float | None = None
        self._limit = 0.0
        self._timer: Entry | None = None  # this watchdog's entry in the loop's clock
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
        self._timer = self._clock.add(when, self)

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
            self._clock.cancel(self._timer)
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
            self._clock.cancel(self._timer)
            self._timer = None
