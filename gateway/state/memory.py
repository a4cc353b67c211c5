"""In-process state store: the default, for a single replica with a single worker."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gateway.state.base import MemoryLike, Script, StateStore

_SWEEP_EVERY = 4096


class MemoryStore(StateStore, MemoryLike):
    """Expiring values in a dict. Every operation completes without awaiting, so it is atomic."""

    backend = "memory"

    def __init__(self, key_prefix: str = "dg") -> None:
        super().__init__(key_prefix)
        self._values: dict[str, tuple[Any, float]] = {}
        self._ops = 0

    def get_value(self, key: str, now: float) -> Any:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires = item
        if expires and expires <= now:
            del self._values[key]
            return None
        return value

    def set_value(self, key: str, value: Any, ttl_seconds: float, now: float) -> None:
        self._values[key] = (value, now + ttl_seconds if ttl_seconds else 0.0)
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        expired = [k for k, (_, exp) in self._values.items() if exp and exp <= now]
        for k in expired:
            del self._values[k]

    def __len__(self) -> int:
        return len(self._values)

    async def ping(self) -> bool:
        return True

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return script.local(self, keys, args)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        now = time.time()
        current = self.get_value(key, now) or 0
        value = int(current) + amount
        item = self._values.get(key)
        keep = item[1] - now if item and item[1] and ttl_seconds is None else (ttl_seconds or 0.0)
        self.set_value(key, value, keep, now)
        return value

    async def get(self, key: str) -> bytes | None:
        value = self.get_value(key, time.time())
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        self.set_value(key, value, ttl_seconds or 0.0, time.time())

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
