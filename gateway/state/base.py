"""The state-store interface: where policies keep counters that must be shared.

A store is chosen in the YAML (``state.backend``): ``memory`` keeps state in
this process (one replica, one worker), ``redis`` shares it across replicas.
Policies reach the store only through their services (``services.store``) and
only through this interface, so they work unchanged on either backend.

Operations are deliberately few and each is atomic on its backend; a policy
that needs a multi-key decision in one round trip uses ``run_script`` with a
script that has both a Lua body (Redis) and a Python body (memory).

Redis Cluster runs a script only when all its keys live in one hash slot. The
keys of one decision therefore share a *hash tag* (:meth:`StateStore.tagged`:
``{tag}`` in the key, on a cluster only, so single-node key names stay as they
were), and a caller that batches several decisions into one script groups
them by :meth:`StateStore.slot` first.
"""

from __future__ import annotations

import hashlib
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
    clustered = False  # whether keys are spread over hash slots (Redis Cluster)

    def __init__(self, key_prefix: str) -> None:
        self.key_prefix = key_prefix

    def key(self, *parts: str) -> str:
        """A namespaced key: ``<prefix>:<part>:<part>``."""
        return ":".join((self.key_prefix, *parts))

    def tagged(self, tag: str, *parts: str) -> str:
        """A key in the hash slot of ``tag``: every key of one script call must share its tag.

        On a cluster: ``<prefix>:{<tag>}:<part>...``. On one node (and in memory) the tag is left
        out, ``key(*parts)``, so key names there are what they always were.
        """
        if not self.clustered:
            return self.key(*parts)
        return self.key("{" + hash_tag(tag) + "}", *parts)

    def slot(self, key: str) -> int:
        """The key's hash slot (0 off a cluster): a script's keys must all have the same."""
        return 0

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

    async def run_scripts(
        self, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Run ``script`` once per ``(keys, args)`` call: each call atomic, the calls independent.

        Returns each call's result, or the :class:`StoreUnavailableError` of a call that failed
        (the others still ran). A backend may send them together (Redis: one pipeline, one round
        trip per node); here they run one after the other.
        """
        out: list[Any] = []
        for keys, args in calls:
            try:
                out.append(await self.run_script(script, keys, args))
            except StoreUnavailableError as exc:
                out.append(exc)
        return out

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        """Add to an integer counter, setting its expiry when given; returns the new value."""

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...


def hash_tag(value: str) -> str:
    """``value`` usable inside ``{...}``: a value with a brace is replaced by its digest."""
    if "{" in value or "}" in value:
        return hashlib.blake2b(value.encode(), digest_size=16).hexdigest()
    return value


StoreFactory = Callable[[], Awaitable[StateStore]]
