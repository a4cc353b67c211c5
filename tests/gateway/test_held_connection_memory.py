"""What the front door keeps per held connection, and the lighter objects that keep it small.

A quiet stream holds its client connection's protocol for as long as it lasts; 10,000 of them per worker
is the performance issue's target. These hold real connections open over 127.0.0.1 and measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tracemalloc
from typing import Any

from gateway.asgi import read_body
from gateway.lean_async import LeanEvent, PipelineQueue
from gateway.server import serve_async
from tests.support import free_port


class HoldingApp:
    """Reads the body, then holds every request until ``release`` is set; answers ``ok``."""

    def __init__(self) -> None:
        self.held = 0
        self.all_held = asyncio.Event()
        self.expected = 0
        self.release = asyncio.Event()
        self.order: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = await read_body(receive, 1 << 20, None)
        self.order.append(body)
        self.held += 1
        if self.held >= self.expected:
            self.all_held.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def _stop(server: Any) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server._distillguard_task, 10)


async def _hold(port: int, count: int, app: HoldingApp) -> list[asyncio.StreamWriter]:
    app.expected, writers = count, []
    for _ in range(count):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}")
        writers.append(writer)
    await asyncio.wait_for(app.all_held.wait(), 30)
    return writers


async def test_a_held_connections_protocol_keeps_a_shared_key_dict() -> None:
    # Past 29 attributes the instance dict stops sharing keys: 1,584 bytes instead of 296 per connection.
    app = HoldingApp()
    port = free_port()
    server = await serve_async(app, "127.0.0.1", port)
    try:
        writers = await _hold(port, 1, app)
        (protocol,) = server.server_state.connections
        assert sys.getsizeof(vars(protocol)) < 600, sorted(vars(protocol))
        for writer in writers:
            writer.close()
    finally:
        app.release.set()
        await _stop(server)


async def test_the_front_door_keeps_under_5_kb_per_held_request() -> None:
    # uvicorn's protocol, its request cycle and flow control, and ours, measured while 200 requests are held
    # (7.6 KB before the lean events, queue and attribute count, 3.7 KB after; the task and its frames are
    # not counted).
    app = HoldingApp()
    port = free_port()
    server = await serve_async(app, "127.0.0.1", port)
    try:
        tracemalloc.start(1)
        try:
            before = tracemalloc.take_snapshot()
            writers = await _hold(port, 200, app)
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        sites = ("uvicorn/protocols/http/", "gateway/http_protocol.py", "asyncio/locks.py", "lean_async.py")
        grown = sum(
            stat.size_diff
            for stat in after.compare_to(before, "filename")
            if any(site in stat.traceback[0].filename for site in sites)
        )
        assert grown / 200 < 5000, f"{grown / 200:.0f} bytes per held request"
        for writer in writers:
            writer.close()
    finally:
        app.release.set()
        await _stop(server)


async def test_pipelined_requests_are_answered_in_order() -> None:
    app = HoldingApp()
    app.release.set()
    port = free_port()
    server = await serve_async(app, "127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\n\r\n"
        writer.write(b"".join(head + str(i).encode() for i in range(5)))
        answers = b""
        while answers.count(b"ok") < 5:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            assert chunk, answers
            answers += chunk
        assert app.order == [b"0", b"1", b"2", b"3", b"4"]
        writer.close()
    finally:
        await _stop(server)


async def test_lean_event_wakes_every_waiter_and_forgets_cancelled_ones() -> None:
    event = LeanEvent()
    assert not event.is_set()
    waiters = [asyncio.create_task(event.wait()) for _ in range(3)]
    cancelled = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled
    assert event._waiters is not None and len(event._waiters) == 3
    event.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    assert await event.wait() is True  # set: at once
    event.clear()
    late = asyncio.create_task(event.wait())
    await asyncio.sleep(0.01)
    assert not late.done()
    event.set()
    assert await asyncio.wait_for(late, 1) is True


def test_pipeline_queue_is_first_in_first_out() -> None:
    queue = PipelineQueue()
    assert not queue
    for item in ("a", "b", "c"):
        queue.appendleft(item)
    assert [queue.pop(), queue.pop(), queue.pop()] == ["a", "b", "c"]
    assert not queue
