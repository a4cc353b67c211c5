"""The quota scripts' in-process twins, for the memory store.

The same arithmetic in the same order as the Lua bodies (``policies.quota.lua``),
on MemoryLike values: a float for a GCRA limit, a dict member -> score for a
sorted set. Each runs without awaiting, so it is atomic on the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from gateway.plugins import MemoryLike

MICROS = 1_000_000
RETRY_WITHOUT_ESTIMATE_US = 1_000_000  # a full concurrency limit frees "soon": ask for a retry after 1 s


def _clock(args: Sequence[Any]) -> float:
    override = float(args[0])
    return override if override > 0 else time.time() * MICROS


def _drain(store: MemoryLike, key: str, now: float) -> float:
    stored = store.get_value(key, now / MICROS)
    if stored is not None and stored > now:
        return float(stored - now)
    return 0.0


def _store_drain(store: MemoryLike, key: str, now: float, d: float) -> None:
    if d > 0:
        store.set_value(key, now + d, (math.ceil(d / 1000) + 1) / 1000, now / MICROS)
    else:
        store.set_value(key, None, 1e-6, now / MICROS)  # "DEL": absent and full are the same state


def _zset(store: MemoryLike, key: str, now: float) -> dict[str, float]:
    value = store.get_value(key, now / MICROS)
    return value if isinstance(value, dict) else {}


# A sorted set is a dict kept in score order (ties in insertion order), so that trimming stops at the first
# live member instead of scanning them all: a distinct-prompt set holds up to the daily limit (thousands).


def _zadd(members: dict[str, float], member: str, score: float) -> None:
    members.pop(member, None)
    if members and score < members[next(reversed(members))]:
        members[member] = score  # out of order (a clock step back, a shorter TTL): restore the order
        ordered = sorted(members.items(), key=lambda item: item[1])
        members.clear()
        members.update(ordered)
    else:
        members[member] = score


def _zremrange(members: dict[str, float], upto: float) -> None:
    expired = []
    for member, score in members.items():
        if score > upto:
            break
        expired.append(member)
    for member in expired:
        del members[member]


def decide_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = _clock(args)
    now_s = now / MICROS
    get_value = store.get_value  # the request path: names bound once, the arithmetic as in the Lua body
    floor, ceil = math.floor, math.ceil
    n = int(args[1])
    out = [1]
    writes: list[tuple[Any, ...]] = []
    for i in range(n):
        base = 2 + i * 5
        kind = args[base]
        key = keys[i]
        ok, remaining, reset, charged, retry = 1, 0, 0, 0, 0
        if kind == "g":
            window, limit, cost = float(args[base + 1]), float(args[base + 2]), float(args[base + 3])
            interval = window / limit
            slack = min(interval / 2, 1000.0)
            stored = get_value(key, now_s)
            d = float(stored - now) if stored is not None and stored > now else 0.0
            nd = d
            if args[base + 4] == "c":
                available = floor((window + slack - d) / interval)
                if available >= 1:
                    charged = int(min(cost, available))
                    nd = d + charged * interval
                else:
                    ok = 0
                    retry = max(1, ceil(d + interval - window))
            else:
                wanted = d + cost * interval
                if wanted <= window + slack:
                    charged = int(cost)
                    nd = wanted
                else:
                    ok = 0
                    retry = max(1, ceil(wanted - window))
            remaining = int(min(limit, max(0, floor((window + slack - nd) / interval))))
            reset = ceil(nd)
            writes.append((kind, key, nd))
        elif kind == "c":
            b = args[base + 2]
            limit_n, ttl = int(args[base + 1]), float(args[base + 3])
            members = _zset(store, key, now)
            _zremrange(members, now)
            count = len(members)
            if count < limit_n:
                charged = 1
                remaining = limit_n - count - 1
            else:
                ok = 0
                retry = RETRY_WITHOUT_ESTIMATE_US
            writes.append((kind, key, str(b), ttl, members))
        else:
            b = args[base + 2]
            limit_n, window = int(args[base + 1]), float(args[base + 3])
            members = _zset(store, key, now)
            _zremrange(members, now - window)
            count = len(members)
            if str(b) in members:
                remaining = max(0, limit_n - count)
            elif count < limit_n:
                charged = 1
                remaining = limit_n - count - 1
            else:
                ok = 0
                retry = max(1, ceil(next(iter(members.values())) + window - now))  # the oldest
            writes.append((kind, key, str(b), window, members))
        if not ok:
            out[0] = 0
        out += (ok, remaining, reset, charged, retry)
    if out[0] == 1:
        set_value = store.set_value
        for write in writes:
            if write[0] == "g":
                d = write[2]  # the drain after the charge: _store_drain, inline
                if d > 0:
                    set_value(write[1], now + d, (ceil(d / 1000) + 1) / 1000, now_s)
                else:
                    set_value(write[1], None, 1e-6, now_s)  # "DEL": absent and full are the same state
            else:
                _, key, member, span, members = write
                _zadd(members, member, now + span if write[0] == "c" else now)
                set_value(key, members, (ceil(span / 1000) + 1) / 1000, now_s)
    return out


def settle_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> int:
    now = _clock(args)
    n = int(args[1])
    for i in range(n):
        kind, a, b, c = args[2 + i * 4 : 6 + i * 4]
        if kind == "g":
            interval = float(a) / float(b)
            _store_drain(store, keys[i], now, _drain(store, keys[i], now) + float(c) * interval)
        else:
            members = _zset(store, keys[i], now)
            members.pop(str(a), None)
    return n
