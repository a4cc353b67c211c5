"""Lighter stand-ins for the per-connection objects uvicorn's protocol creates, for held streams.

A connection held open by a quiet stream keeps uvicorn's objects for as long as it lasts. Two of them
are ``asyncio.Event`` (the flow control's "writable" and the request cycle's "message") and one a
``collections.deque`` (the pipelined-request queue): an empty deque allocates a 64-slot block, so each
of the three costs about 760 bytes, almost all of it for waiters or entries that an idle stream never
has. These keep the same interface and behaviour with a list created only when something waits or is
queued (about 60-100 bytes each).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal


class LeanEvent:
    """``asyncio.Event``'s interface (set, clear, is_set, wait) with no waiter list until one waits.

    Bound to the running loop by the futures its waiters create, as ``asyncio.Event`` is since
    Python 3.10.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        """Set the flag and wake every waiter (each wakes once, as with ``asyncio.Event``)."""
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> Literal[True]:
        """Return at once if the flag is set, else once ``set`` is called (cancellable)."""
        if self._value:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            # A cancelled waiter leaves the list; one woken by set() was in a list set() detached.
            waiters = self._waiters
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)


class LeanFlowControl:
    """uvicorn's ``FlowControl`` (read and write pausing of one connection) over a :class:`LeanEvent`."""

    __slots__ = ("_is_writable_event", "_transport", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._is_writable_event = LeanEvent()
        self._is_writable_event.set()

    async def drain(self) -> None:
        await self._is_writable_event.wait()

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused = True
            self._is_writable_event.clear()

    def resume_writing(self) -> None:
        if self.write_paused:
            self.write_paused = False
            self._is_writable_event.set()


class PipelineQueue(list[Any]):
    """The pipelined requests waiting on a connection: the two ``deque`` methods uvicorn calls.

    ``appendleft`` and ``pop`` (from the right) make it first in, first out, as uvicorn's deque is.
    A connection rarely has more than one request queued, so inserting at the front costs nothing.
    """

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)
