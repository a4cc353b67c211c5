"""The upstream side: one long-lived connection pool, timeouts, and the one place upstream errors are mapped.

The HTTP/1.1 client is :mod:`gateway.http_client` (keep-alive connections of one small object each).
Timeouts per upstream (seconds): ``connect`` to open a connection,
``first_byte`` until the response headers arrive, ``idle`` between two body
reads, ``total`` for the whole exchange. Every client or socket error becomes
an :class:`~gateway.errors.UpstreamError` or
:class:`~gateway.errors.UpstreamTimeoutError` in :func:`upstream_failure`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway.config.schema import UpstreamConfig
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway.headers import (
    ANTHROPIC_BETA,
    RESERVED_CLIENT_HEADERS,
)
from gateway.http_client import ConnectError, Connection, ResponseError, ResponseHeaders, request_head
from gateway.http_pool import ConnectionPool
from gateway.metrics import GatewayMetrics
from gateway.protocols import ADAPTERS
from gateway.watchdog import Watchdog

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# Never forwarded in either direction (RFC 9110 hop-by-hop, plus what we recompute).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
    }
)
# Upstream response headers the client must not see: the upstream's own session and identity, and what it
# says about the provider's account with it (its organisation, its rate limits: the quota policy writes the
# client's own), which would leak the provider's capacity and contradict the client's limits.
UPSTREAM_ONLY = frozenset(
    {
        "set-cookie",
        "server",
        "date",
        "x-request-id",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
    }
)
UPSTREAM_ONLY_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")

MAX_UPSTREAM_BODY = 64 * 1024 * 1024
log = logging.getLogger("distillguard.upstream")


@dataclass(frozen=True, slots=True)
class Upstream:
    config: UpstreamConfig
    auth_headers: Mapping[str, str]
    # The client headers this upstream receives besides FORWARDED_CLIENT_HEADERS: its protocol's and
    # the operator's (exact names, then prefixes of 'prefix-*' entries).
    forward_names: frozenset[str] = frozenset()
    forward_prefixes: tuple[str, ...] = ()
    allowed_betas: frozenset[str] = frozenset()
    # Where requests go: the pool's key (scheme, host, port), the Host header and the URL's path prefix.
    origin: tuple[str, str, int] = ("http", "", 0)
    host_header: str = ""
    base_path: str = ""
    extra_headers: Mapping[str, str] = field(default_factory=dict)  # the config's headers, then the auth

    @classmethod
    def of(cls, config: UpstreamConfig, auth_headers: Mapping[str, str]) -> Upstream:
        declared = config.forward_headers
        url = urlsplit(config.url)
        scheme = url.scheme.lower()
        host = url.hostname or ""
        # The operator's own Host header, if set, replaces the URL's (as aiohttp did), never adds one.
        host_header = next(
            (v for k, v in config.headers.items() if k.lower() == "host"), url.netloc.rpartition("@")[2]
        )
        return cls(
            config,
            auth_headers,
            ADAPTERS[config.protocol].client_headers | {n for n in declared if not n.endswith("*")},
            tuple(n[:-1] for n in declared if n.endswith("*")),
            frozenset(config.allowed_betas),
            (scheme, host, url.port or (443 if scheme == "https" else 80)),
            host_header,
            url.path.rstrip("/"),
            {**{k: v for k, v in config.headers.items() if k.lower() != "host"}, **auth_headers},
        )

    @property
    def name(self) -> str:
        return self.config.name

    def client_headers(self, client_headers: Mapping[str, str]) -> dict[str, str]:
        """The client headers for this upstream beyond the common allow-list: its protocol's version
        header (a default when the client sent none), the operator's ``forward_headers`` and the allowed
        ``anthropic-beta`` values.

        A beta the operator did not allow is refused (400 naming it) rather than dropped: a client
        that asked for a feature learns it is not offered instead of getting a different answer.
        """
        out: dict[str, str] = {}
        names, prefixes = self.forward_names, self.forward_prefixes
        if prefixes:
            for name, value in client_headers.items():
                if (name in names or name.startswith(prefixes)) and name not in RESERVED_CLIENT_HEADERS:
                    out[name] = value
        else:
            for name in names:
                found = client_headers.get(name)
                if found is not None:
                    out[name] = found
        betas = client_headers.get(ANTHROPIC_BETA)
        if betas is not None and self.config.protocol == "anthropic":
            out[ANTHROPIC_BETA] = self._checked_betas(betas)
        for name, value in ADAPTERS[self.config.protocol].default_headers.items():
            out.setdefault(name, value)
        return out

    def _checked_betas(self, header: str) -> str:
        requested = [beta.strip() for beta in header.split(",") if beta.strip()]
        refused = sorted({beta for beta in requested if beta not in self.allowed_betas})
        if refused:
            offered = ", ".join(sorted(self.allowed_betas)) or "none"
            raise InvalidRequestError(
                f"The anthropic-beta value(s) {', '.join(refused)} are not offered here "
                f"(offered: {offered}).",
                param=ANTHROPIC_BETA,
                code="beta_not_allowed",
            )
        return ",".join(dict.fromkeys(requested))

    def serves(self, model: str | None) -> bool:
        if not self.config.models or model is None:
            return True
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.config.models)


def upstream_failure(
    exc: BaseException, upstream: Upstream, metrics: GatewayMetrics, phase: str
) -> GatewayError:
    """The gateway error for whatever the network raised (the one place upstream errors are mapped)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, TimeoutError):
        metrics.upstream_errors.labels(upstream.name, f"timeout_{phase}").inc()
        return UpstreamTimeoutError(
            f"The upstream did not answer in time ({phase.replace('_', ' ')} timeout)."
        )
    if isinstance(exc, ConnectError):
        metrics.upstream_errors.labels(upstream.name, "connect").inc()
        return UpstreamError("The upstream model server cannot be reached.")
    metrics.upstream_errors.labels(upstream.name, "connection_lost").inc()
    return UpstreamError(f"The connection to the upstream failed: {type(exc).__name__}.")


NETWORK_ERRORS = (TimeoutError, ResponseError, OSError)


class UpstreamPool:
    """One connection pool for all upstreams of a config."""

    def __init__(self, configs: list[UpstreamConfig], metrics: GatewayMetrics) -> None:
        self.configs = configs
        self.metrics = metrics
        self.upstreams: list[Upstream] = []
        for cfg in configs:
            headers: dict[str, str] = {}
            if cfg.credential_env:
                credential = os.environ.get(cfg.credential_env, "")
                if credential:
                    headers.update(ADAPTERS[cfg.protocol].upstream_auth_headers(credential))
            self.upstreams.append(Upstream.of(cfg, headers))
        self._pool: ConnectionPool | None = None

    def _pool_or_open(self) -> ConnectionPool:
        if self._pool is None or self._pool.closed:
            self._pool = ConnectionPool(sum(c.max_connections for c in self.configs), keepalive_seconds=30)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    def select(self, protocol: str, model: str | None) -> Upstream:
        for upstream in self.upstreams:
            if upstream.config.protocol == protocol and upstream.serves(model):
                return upstream
        if model is not None:
            raise NotFoundError(
                f"The model '{model}' is not served here.", param="model", code="model_not_found"
            )
        raise NotFoundError(f"No upstream serves the {protocol} API here.")

    async def open(
        self,
        upstream: Upstream,
        method: str,
        path_qs: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> UpstreamResponse:
        """Send the request; return once the response headers are in (``first_byte`` timeout)."""
        timeouts = upstream.config.timeouts
        pool = self._pool_or_open()
        headers.update(upstream.extra_headers)
        head = request_head(method, upstream.base_path + path_qs, upstream.host_header, headers, body)
        watchdog = Watchdog(timeouts.total)
        try:
            conn = await watchdog.wait(
                _exchange(pool, upstream, method, head, body), timeouts.first_byte + timeouts.connect
            )
        except NETWORK_ERRORS as exc:
            watchdog.close()
            raise upstream_failure(exc, upstream, self.metrics, "first_byte") from None
        return UpstreamResponse(upstream, conn, watchdog, self.metrics)


async def _exchange(
    pool: ConnectionPool, upstream: Upstream, method: str, head: bytes, body: bytes | None
) -> Connection:
    """Send one request and wait for its response head; the connection carries the response."""
    connect = upstream.config.timeouts.connect
    conn, reused = await pool.acquire(upstream.origin, connect)
    try:
        conn.send(head, body, head_only=method == "HEAD")
        await conn.response()
    except ResponseError:
        pool.release(conn)
        if not (reused and not conn.received and method in IDEMPOTENT):
            raise
        # A kept-alive connection the upstream had closed: one more try, on a new connection.
        conn, _ = await pool.acquire(upstream.origin, connect)
        try:
            conn.send(head, body, head_only=method == "HEAD")
            await conn.response()
        except BaseException:
            pool.release(conn)
            raise
    except BaseException:
        pool.release(conn)
        raise
    return conn


class UpstreamResponse:
    """An upstream response whose body is read with the idle and total timeouts."""

    __slots__ = ("_conn", "_idle", "_pool", "metrics", "upstream", "watchdog")

    def __init__(
        self,
        upstream: Upstream,
        conn: Connection,
        watchdog: Watchdog,
        metrics: GatewayMetrics,
    ) -> None:
        self.upstream = upstream
        self._conn = conn
        self._pool = conn.pool
        self.watchdog = watchdog
        self.metrics = metrics
        self._idle = upstream.config.timeouts.idle

    @property
    def status(self) -> int:
        return self._conn.status

    @property
    def headers(self) -> ResponseHeaders:
        headers = self._conn.headers
        assert headers is not None  # set before the response is handed out
        return headers

    @property
    def is_event_stream(self) -> bool:
        value = self.headers.get("content-type", "")
        return value.partition(";")[0].strip().lower() == "text/event-stream"

    def forget_headers(self) -> None:
        """The head is forwarded: drop the upstream's header lines (``headers`` is empty after this)."""
        self._conn.forget_headers()

    async def read_chunk(self) -> bytes:
        """The next piece of body as it arrives; b'' at the end."""
        # Connection.read's loop, inline: an idle stream waits on the connection's future itself, with
        # no coroutine frame of the connection's between this one and the watchdog's.
        conn, watchdog = self._conn, self.watchdog
        try:
            while True:
                if watchdog.overdue():  # the total limit holds even for a body that never makes it wait
                    raise TimeoutError
                data = conn.take()
                if data is not None:
                    return data
                await watchdog.wait(conn.readable(), self._idle)
        except NETWORK_ERRORS as exc:
            raise upstream_failure(exc, self.upstream, self.metrics, "idle") from None

    async def read_all(self, limit: int = MAX_UPSTREAM_BODY) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = await self.read_chunk()
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > limit:
                self.metrics.upstream_errors.labels(self.upstream.name, "oversized").inc()
                raise UpstreamError("The upstream response is larger than the gateway accepts.")
            parts.append(chunk)

    def close(self) -> None:
        """Release the connection: kept for reuse if its response ended cleanly, else closed (which the
        upstream sees as a cancel)."""
        self.watchdog.close()
        self._pool.release(self._conn)

    def account_error(self) -> GatewayError | None:
        """The error to answer instead of an upstream error about the gateway's own account, if it is one.

        A refused credential (401, 403, 407) is the operator's to fix, not the client's: a 502, logged.
        The upstream's rate limit (429) is the provider's capacity: a 429 of the gateway's own with
        the upstream's Retry-After. Their bodies would name the provider's key or organisation.
        """
        status = self.status
        if status not in (401, 403, 407, 429):
            return None
        self.metrics.upstream_errors.labels(self.upstream.name, f"http_{status}").inc()
        if status == 429:
            return RateLimitError(
                "The model server is over capacity; please retry shortly.",
                retry_after=self.retry_after(default=1.0),
                code="upstream_over_capacity",
            )
        log.error(
            "upstream %s refused the gateway's credential (HTTP %d): check its credential_env and its access",
            self.upstream.name,
            status,
        )
        return UpstreamError("The model server refused the gateway's credentials.", code="upstream_auth")

    def retry_after(self, default: float) -> float:
        """The upstream's Retry-After in seconds (a number; an HTTP date counts as ``default``)."""
        try:
            value = float(self.headers.get("retry-after", ""))
        except ValueError:
            return default
        return value if 0 <= value <= 3600 else default

    def forwarded_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (name.encode("latin-1"), v.encode("latin-1"))
            for name, v in self.headers.items()
            if name not in HOP_BY_HOP
            and name not in UPSTREAM_ONLY
            and name != "content-type"
            and not name.startswith(UPSTREAM_ONLY_PREFIXES)
        ]
