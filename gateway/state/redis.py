"""Redis state store: shared by all replicas; every script is one round trip (EVALSHA)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from gateway.state.base import Script, StateStore, StoreUnavailableError


class RedisStore(StateStore):
    """A Redis-backed store. Connection loss raises StoreUnavailableError; the pool reconnects by itself."""

    backend = "redis"

    def __init__(self, url: str, key_prefix: str = "dg", timeout_seconds: float = 0.5) -> None:
        super().__init__(key_prefix)
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=15,
            max_connections=256,
        )
        self._scripts: dict[str, AsyncScript] = {}

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    async def close(self) -> None:
        await self._client.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        registered = self._scripts.get(script.name)
        if registered is None:
            registered = self._client.register_script(script.lua)
            self._scripts[script.name] = registered
        try:
            return await registered(keys=list(keys), args=list(args))
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        try:
            if ttl_seconds:
                pipe = self._client.pipeline(transaction=True)
                pipe.incrby(key, amount)
                pipe.pexpire(key, int(ttl_seconds * 1000))
                value, _ = await pipe.execute()
                return int(value)
            return int(await self._client.incrby(key, amount))
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        try:
            await self._client.set(key, value, px=int(ttl_seconds * 1000) if ttl_seconds else None)
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis: {exc}") from exc
