"""Operator pins, shared by every worker and replica through the state store.

A pin set through the admin API of any process is written to the store (one hash of
account -> level and reason, and a version counter bumped by every change) and applied to
that process's :class:`~gateway.risk.RiskBoard` at once. Every process polls the version
every ``interval`` seconds in one background task and, when it moved, reads the hash and
makes its board's pins equal to it. The request path never touches the store: it reads
the board, as before.

Consistency: a pin is in force everywhere within one interval plus one store round trip.
If the store is unreachable, setting a pin fails (the operator is told; a pin that only
one worker knows is the bug this module exists to prevent) and polling keeps the pins it
last read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from gateway.plugins.base import RISK_LEVELS, RiskLevel
from gateway.plugins.tasks import stop_task
from gateway.risk import RiskBoard
from gateway.state.base import MemoryLike, Script, StateStore, StoreUnavailableError

log = logging.getLogger("distillguard.pins")

POLL_SECONDS = 0.5
_SEPARATOR = "\t"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _set_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> Any:
    now = time.time()
    pins = dict(store.get_value(keys[0], now) or {})  # copied: a reader may hold the old dict
    account, value = str(args[0]), str(args[1])
    if value:
        pins[account] = value
    else:
        pins.pop(account, None)
    store.set_value(keys[0], pins, 0, now)
    version = int(store.get_value(keys[1], now) or 0) + 1
    store.set_value(keys[1], version, 0, now)
    return version


def _read_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> Any:
    now = time.time()
    version = str(store.get_value(keys[1], now) or 0)
    if version == str(args[0]):
        return [version]
    pins: dict[str, str] = store.get_value(keys[0], now) or {}
    return [version, *(x for item in pins.items() for x in item)]


SET_PIN = Script(
    name="pins_set",
    lua="""
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return redis.call('INCR', KEYS[2])
""",
    local=_set_local,
)

READ_PINS = Script(
    name="pins_read",
    lua="""
local version = redis.call('GET', KEYS[2]) or '0'
if version == ARGV[1] then
  return {version}
end
local out = {version}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do
  out[#out + 1] = all[i]
end
return out
""",
    local=_read_local,
)


class SharedPins:
    """Sets pins in the store and keeps ``board``'s pins equal to the store's (see the module docstring)."""

    def __init__(
        self, board: RiskBoard, store: Callable[[], StateStore], interval: float = POLL_SECONDS
    ) -> None:
        self.board = board
        self._store = store
        self.interval = interval
        self._version = ""
        self._read_from: StateStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _keys(self, store: StateStore) -> list[str]:
        # One hash tag: both keys in one Redis Cluster slot (the names are unchanged on one node).
        return [store.tagged("pins", "pins"), store.tagged("pins", "pins", "version")]

    async def set(self, account: str, level: RiskLevel | None, *, reason: str) -> None:
        """Pin ``account`` at ``level`` (None removes the pin) for every process sharing the store.

        Raises StoreUnavailableError when the store cannot take it: then nothing changed.
        """
        store = self._store()
        value = f"{level}{_SEPARATOR}{reason}" if level is not None else ""
        await store.run_script(SET_PIN, self._keys(store), [account, value])
        self.board.pin(account, level, reason=reason, source="operator")
        await self.refresh()

    async def refresh(self) -> bool:
        """Read the store's pins if their version moved and apply them; whether anything was read."""
        async with self._lock:
            store = self._store()
            if store is not self._read_from:
                self._read_from, self._version = store, ""  # a new store (reload): read it whole
            result = await store.run_script(READ_PINS, self._keys(store), [self._version])
            version = _text(result[0])
            if version == self._version:
                return False
            shared: dict[str, tuple[str, str]] = {}
            for position in range(1, len(result) - 1, 2):
                level, _, reason = _text(result[position + 1]).partition(_SEPARATOR)
                if level in RISK_LEVELS:
                    shared[_text(result[position])] = (level, reason)
            self._apply(shared)
            self._version = version
            return True

    def _apply(self, shared: dict[str, tuple[str, str]]) -> None:
        for account, (level, reason) in shared.items():
            if self.board.pinned(account) != level:
                self.board.pin(account, level, reason=reason or "pinned by an operator", source="sync")  # type: ignore[arg-type]
        for account in self.board.pins():
            if account not in shared:
                self.board.pin(account, None, reason="pin removed by an operator", source="sync")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _poll(self) -> None:
        failing = False
        while True:
            try:
                await self.refresh()
                if failing:
                    log.info("pins: the state store answers again")
                failing = False
            except StoreUnavailableError as exc:
                if not failing:  # once per outage, not twice a second
                    log.warning("pins: state store unavailable, keeping the pins last read: %s", exc)
                failing = True
            except Exception:
                log.exception("pins: refresh failed")
            await asyncio.sleep(self.interval)
