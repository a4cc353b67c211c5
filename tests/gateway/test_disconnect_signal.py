"""A client that hangs up mid-request: the front door's signal cancels the work, with no task of its own.

A held stream used to cost a second task (a watcher waiting on ``receive``) for as long as it lasted; with
the front door's signal the request's own task is all there is, and a disconnect still cancels it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from gateway.asgi import DISCONNECT_SIGNAL, DisconnectSignal, DisconnectWatcher, read_body
from gateway.server import serve_async
from tests.support import free_port


class HoldingApp:
    """Reads the body, watches for a disconnect, then holds the request (as a quiet stream would)."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.signal: Any = None
        self.tasks_added = -1
        self.disconnected = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await read_body(receive, 1 << 20, None)
        self.signal = scope.get(DISCONNECT_SIGNAL)
        before = len(asyncio.all_tasks())
        watcher = DisconnectWatcher(receive, self.signal)
        self.tasks_added = len(asyncio.all_tasks()) - before
        self.holding.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.disconnected = watcher.disconnected
            self.cancelled.set()
            raise
        finally:
            watcher.stop()


async def test_a_hang_up_cancels_the_request_through_the_signal_with_no_watcher_task() -> None:
    app = HoldingApp()
    port = free_port()
    server = await serve_async(app, "127.0.0.1", port)
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}")
        await asyncio.wait_for(app.holding.wait(), 5)
        assert isinstance(app.signal, DisconnectSignal)
        assert app.tasks_added == 0
        writer.close()  # the client hangs up while the request is held
        await asyncio.wait_for(app.cancelled.wait(), 5)
        assert app.disconnected
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server._distillguard_task, 10)  # type: ignore[attr-defined]


async def test_without_the_signal_a_watcher_task_still_cancels_on_disconnect() -> None:
    # An app served by another server (no signal in the scope) falls back to waiting on receive.
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def request() -> bool:
        watcher = DisconnectWatcher(messages.get)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return watcher.disconnected
        return False

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    await messages.put({"type": "http.disconnect"})
    assert await asyncio.wait_for(task, 5)


def test_a_signal_fired_before_it_is_watched_calls_back_at_once() -> None:
    signal = DisconnectSignal()
    signal.fire()
    called: list[bool] = []
    signal.watch(lambda: called.append(True))
    assert called == [True]
    signal.fire()  # once only
    assert called == [True]
