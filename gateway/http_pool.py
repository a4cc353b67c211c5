"""The upstream connection pool: keep-alive connections per origin under one total limit.

At most ``limit`` connections are open at once, idle ones included (a request past it waits its turn,
first come first served, or takes the place of an idle connection to another origin); idle
connections are closed after ``keepalive_seconds``; TLS uses the system's certificate store and checks
the host name. What aiohttp's pool did, for :mod:`gateway.http_client`'s lean connections.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from gateway.http_client import ConnectError, Connection


class ConnectionPool:
    """Connections per origin (scheme, host, port), at most ``limit`` open; idle ones kept for reuse."""

    def __init__(self, limit: int, keepalive_seconds: float = 30.0) -> None:
        self.limit = limit
        self.keepalive_seconds = keepalive_seconds
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._open = 0  # connections open or opening, idle ones included
        self._waiters: list[asyncio.Future[None]] = []
        self._ssl: ssl.SSLContext | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def acquire(self, key: tuple[str, str, int], connect_timeout: float) -> tuple[Connection, bool]:
        """A connection to ``key``: (connection, whether it was reused)."""
        while True:
            if self._closed:
                raise ConnectError("the upstream pool is closed")
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if conn.transport is not None and not conn.transport.is_closing():
                    conn.in_use = True
                    return conn, True
                self._open -= 1
            if self._open < self.limit:
                break
            if not self._evict_idle():
                await self._wait_turn()
        self._open += 1
        try:
            return await self._connect(key, connect_timeout), False
        except BaseException:
            self._open -= 1
            self._next_turn()
            raise

    async def _connect(self, key: tuple[str, str, int], seconds: float) -> Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, key),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context else None,
                )
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        return conn

    def _evict_idle(self) -> bool:
        """Close one idle connection (of any origin) to make room; False if there is none."""
        for idle in self._idle.values():
            if idle:
                conn = idle.pop(0)
                self._open -= 1
                conn.in_use = True  # so that its connection_lost does not count it again
                conn.pool = _DETACHED
                conn.close()
                return True
        return False

    async def _wait_turn(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._next_turn()  # woken and cancelled at once: pass the turn on
            raise

    def _next_turn(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def release(self, conn: Connection) -> None:
        """The exchange on ``conn`` is over: keep it for the next one if its response ended cleanly."""
        if not conn.in_use:
            return  # released already (it is idle in the pool)
        if conn.pool is not self:
            conn.close()
            return
        if conn.complete and conn.reusable and conn.transport is not None and not self._closed:
            conn.in_use = False
            conn.idle_since = time.monotonic()
            conn._body = []
            self._idle.setdefault(conn.key, []).append(conn)
            self._arm_sweeper()
        else:
            conn.pool = _DETACHED  # its connection_lost must not count it again
            conn.close()
            self._open -= 1
        self._next_turn()

    def discard(self, conn: Connection) -> None:
        """An idle connection closed (by the upstream, or for breaking the protocol)."""
        idle = self._idle.get(conn.key)
        if idle is not None and conn in idle:
            idle.remove(conn)
            self._open -= 1
            self._next_turn()

    def _arm_sweeper(self) -> None:
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self.keepalive_seconds / 2, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        cutoff = time.monotonic() - self.keepalive_seconds
        left = False
        for idle in self._idle.values():
            for conn in [c for c in idle if c.idle_since <= cutoff]:
                idle.remove(conn)
                self._open -= 1
                conn.in_use = True
                conn.pool = _DETACHED
                conn.close()
            left = left or bool(idle)
        if left:
            self._arm_sweeper()
        self._next_turn()

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for conn in idle:
                conn.pool = _DETACHED
                conn.in_use = True
                conn.close()
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # they find the pool closed
        self._waiters.clear()

    @property
    def closed(self) -> bool:
        return self._closed


class _Detached(ConnectionPool):
    """The pool of a connection taken out of its pool's accounting: its ending changes nothing."""

    def release(self, conn: Connection) -> None:
        conn.close()

    def discard(self, conn: Connection) -> None:
        pass


_DETACHED = _Detached(1)
