"""Redis state store: shared by all replicas; every script is one round trip (EVALSHA).

Three topologies, one class (``state.mode``):

* ``standalone``: one node (``redis.asyncio.Redis``).
* ``cluster``: Redis Cluster (``redis.asyncio.RedisCluster``): commands go to the node that
  owns the key's slot, MOVED/ASK redirects and topology changes are followed by the client.
  A script's keys must share a slot: callers build them with :meth:`StateStore.tagged`.
* ``sentinel``: the master of a Sentinel-monitored group (``redis.asyncio.sentinel``); after a
  failover the connection pool asks the sentinels again and reconnects to the new master.

Whatever the topology, a failure to reach the data raises :class:`StoreUnavailableError` and the
caller decides to fail open or closed; the clients reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from gateway.state.base import Script, StateStore, StoreUnavailableError

# What "the store is unreachable" looks like: connection and timeout errors, a cluster with a
# slot that no live node serves, a sentinel group with no master (all RedisError or OSError).
_UNAVAILABLE = (RedisError, RedisClusterException, OSError)
_CLUSTER_CONCURRENCY = 16  # script calls of one batch in flight at once on a cluster


def standalone_client(url: str, timeout_seconds: float) -> aioredis.Redis:
    """A client of one node."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=15,
        max_connections=256,
    )


def cluster_client(url: str, timeout_seconds: float) -> RedisCluster:
    """A cluster client seeded by one node's URL (the others are discovered).

    ``require_full_coverage=False``: with a master down and no replica to promote, the slots the
    other masters own keep working (their accounts are served) and only the lost slots fail.
    Retries are few and short: the caller's fail-open/fail-closed decision must come in time.
    """
    return RedisCluster.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        require_full_coverage=False,
        retry=Retry(NoBackoff(), 1),
        max_connections=256,
    )


def sentinel_client(
    sentinels: Sequence[str],
    service_name: str,
    timeout_seconds: float,
    db: int = 0,
    password: str | None = None,
) -> aioredis.Redis:
    """A client of ``service_name``'s current master, as the sentinels report it."""
    addresses = []
    for address in sentinels:
        host, _, port = address.rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    sentinel = Sentinel(
        addresses,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        sentinel_kwargs={"socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds},
    )
    client: aioredis.Redis = sentinel.master_for(
        service_name,
        db=db,
        password=password,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=15,
        max_connections=256,
    )
    return client


class RedisStore(StateStore):
    """A Redis-backed store. Connection loss raises StoreUnavailableError; the pool reconnects by itself.

    ``RedisStore(url)`` is a standalone node; pass ``client`` (and ``mode``) for the other
    topologies (see :mod:`gateway.state.factory`).
    """

    backend = "redis"

    def __init__(
        self,
        url: str | None = None,
        key_prefix: str = "dg",
        timeout_seconds: float = 0.5,
        *,
        client: Any = None,
        mode: str = "standalone",
    ) -> None:
        super().__init__(key_prefix)
        if client is None:
            if url is None:
                raise ValueError("RedisStore needs a url or a client")
            client = standalone_client(url, timeout_seconds)
        self._client = client
        self.mode = mode
        self.clustered = mode == "cluster"
        self._shas: dict[str, str] = {}

    @property
    def client(self) -> Any:
        """The redis-py client (``Redis`` or ``RedisCluster``)."""
        return self._client

    def slot(self, key: str) -> int:
        return key_slot(key.encode()) if self.clustered else 0

    async def close(self) -> None:
        await self._client.aclose()

    async def ping(self) -> bool:
        """Whether the store answers. On a cluster: whether any master does. With one master lost,
        the accounts whose slots it owned get each policy's store-unavailable behaviour, and the
        others are served; a readiness check failing for all of them would turn that into an outage."""
        try:
            if not self.clustered:
                return bool(await self._client.ping())
            primaries = self._client.get_primaries()
            if not primaries:
                await self._client.initialize()
                primaries = self._client.get_primaries()
        except _UNAVAILABLE:
            return False
        answers = await asyncio.gather(
            *(self._client.ping(target_nodes=node) for node in primaries), return_exceptions=True
        )
        return any(answer is True for answer in answers)

    def _sha(self, script: Script) -> str:
        sha = self._shas.get(script.name)
        if sha is None:
            sha = self._shas[script.name] = hashlib.sha1(script.lua.encode()).hexdigest()  # the script id
        return sha

    async def run_scripts(
        self, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """One node: one pipeline (not a transaction), one round trip. A cluster: the calls
        concurrently, each to its keys' node, so each succeeds or fails on its own (a pipeline
        that meets a lost master cannot say which of its calls ran, and these are not idempotent)."""
        if len(calls) <= 1:
            return await super().run_scripts(script, calls)
        if self.clustered:
            limit = asyncio.Semaphore(_CLUSTER_CONCURRENCY)

            async def one(keys: Sequence[str], args: Sequence[Any]) -> Any:
                async with limit:
                    try:
                        return await self.run_script(script, keys, args)
                    except StoreUnavailableError as exc:
                        return exc

            return list(await asyncio.gather(*(one(keys, args) for keys, args in calls)))
        sha = self._sha(script)
        try:
            pipe = self._client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
        except _UNAVAILABLE as exc:
            # Whether some calls ran before the connection broke is unknown: the caller retries
            # them all (its deltas are then counted at least once, not at most once).
            return [StoreUnavailableError(f"redis: {exc}")] * len(calls)
        out: list[Any] = []
        for (keys, args), result in zip(calls, results, strict=True):
            if isinstance(result, NoScriptError):
                try:
                    result = await self._client.eval(script.lua, len(keys), *keys, *args)
                except _UNAVAILABLE as exc:
                    result = exc
            if isinstance(result, _UNAVAILABLE):
                result = StoreUnavailableError(f"redis: {result}")
            out.append(result)
        return out

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        sha = self._sha(script)
        try:
            try:
                return await self._client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                # Not cached on the node that owns these keys (new, restarted or promoted): EVAL
                # runs it there and caches it. Unlike SCRIPT LOAD, which a cluster client sends to
                # every master, it never touches another node (one of which may be down).
                return await self._client.eval(script.lua, len(keys), *keys, *args)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        try:
            if ttl_seconds:
                # One key: a transaction is fine on a cluster too (one slot).
                pipe = self._client.pipeline(transaction=True)
                pipe.incrby(key, amount)
                pipe.pexpire(key, int(ttl_seconds * 1000))
                value, _ = await pipe.execute()
                return int(value)
            return int(await self._client.incrby(key, amount))
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(key)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        try:
            await self._client.set(key, value, px=int(ttl_seconds * 1000) if ttl_seconds else None)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(key)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
