"""The state-store interface: where policies keep counters that must be shared.

A store is chosen in the YAML (``state.backend``): ``memory`` keeps state in
this process (one replica, one worker), ``redis`` shares it across replicas.
Policies reach the store only through their services (``services.store``) and
only through this interface, so they work unchanged on either backend.

Operations are deliberately few and each is atomic on its backend; a policy
that needs a multi-key decision in one round trip uses ``run_script`` with a
script that has both a Lua body (Redis) and a Python body (memory).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any


class StoreUnavailableError(Exception):
    """The backend cannot be reached or timed out; the caller decides to fail open or closed."""


@dataclass(frozen=True, slots=True)
class Script:
    """An atomic multi-key operation with one implementation per backend.

    ``lua`` runs in Redis via EVALSHA (keys are passed prefixed). ``local`` is
    its in-process twin: ``local(store, keys, args)``, run without awaiting
    inside, so it is atomic on the event loop.
    """

    name: str
    lua: str
    local: Callable[[MemoryLike, Sequence[str], Sequence[Any]], Any]


class MemoryLike(ABC):
    """What a Script's local twin may use: a dict of values with expiry."""

    @abstractmethod
    def get_value(self, key: str, now: float) -> Any: ...

    @abstractmethod
    def set_value(self, key: str, value: Any, ttl_seconds: float, now: float) -> None: ...


class StateStore(ABC):
    """A shared, expiring key-value store with atomic scripts."""

    backend: str

    def __init__(self, key_prefix: str) -> None:
        self.key_prefix = key_prefix

    def key(self, *parts: str) -> str:
        """A namespaced key: ``<prefix>:<part>:<part>``."""
        return ":".join((self.key_prefix, *parts))

    async def start(self) -> None:
        """Open connections (idempotent)."""

    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the backend answers now (for /readyz)."""

    @abstractmethod
    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` atomically over ``keys`` (already namespaced with :meth:`key`)."""

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        """Add to an integer counter, setting its expiry when given; returns the new value."""

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...


StoreFactory = Callable[[], Awaitable[StateStore]]
