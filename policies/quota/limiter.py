"""The quota decision and its settlement: two atomic scripts, each one round trip, Lua and Python twins.

Why GCRA
--------
Rates (requests and tokens per minute) and daily budgets use the Generic Cell
Rate Algorithm. It keeps ONE number per limit, the theoretical arrival time
``tat``, so a decision costs O(1) time and memory whatever the limit (a
sliding-window log would keep one entry per request or per token charge and
sum them on every decision), it admits bursts up to a bound, and it has no
window boundary at which it forgets (a fixed window admits ``2 x limit`` in
the instant around its reset).

The maths. A limit of ``L`` units per window ``W`` has the emission interval
``T = W / L`` (time one unit "occupies") and the burst tolerance ``tau = L x T
= W`` (the bucket holds ``L`` units). With ``d = max(tat - now, 0)`` the time
the bucket needs to drain, a request of cost ``c`` conforms iff::

    d + c x T <= tau            (strict: the whole cost fits now)

and then ``tat := now + d + c x T``. Otherwise it must wait
``d + c x T - tau``, which is Retry-After. What remains is
``floor((tau - d) / T)`` units, and the bucket is full again (OpenAI's
"reset") after ``d``. Equivalently it is a token bucket of capacity ``L``
refilled continuously at ``L / W``, without a timer. Guarantees: at most ``L``
units in any instant, at most ``L + t x L / W`` in any interval of length ``t``
(so at most ``2L`` in any window ``W``), and exactly ``L / W`` in the long run.

A request whose cost alone exceeds ``L`` can never conform; the policy refuses
it up front with a 400 naming the parameter (no pointless retries).

Reservations and reconciliation: the decision charges the estimate (input
estimate + ``max_tokens``); the settlement adds ``T x (actual - reserved)`` to
``d`` (a refund when negative, floored at an empty bucket; a debt when
positive, which later requests wait out). Reasoning budgets use a *capped*
charge: a request is admitted while at least one unit remains and reserves
``min(cost, remaining)``, so concurrent requests cannot all pass a nearly empty
budget and the overshoot is at most one request's reservation.

Floating point: ``tat`` is kept in microseconds since the epoch as an IEEE
double in both backends (Redis stores it as ``%.17g`` text, which round-trips
exactly), and the same operations run in the same order in Lua and Python,
so both backends return the same numbers. The strict test allows
``EPSILON = min(T / 2, 1 ms)`` so that rounding in repeated additions never
refuses the L-th request of a burst; a request can therefore be admitted at
most 1 ms early.

Concurrency is not a rate: each in-flight request holds a slot, an entry in a
sorted set scored by a deadline (``now + slot_ttl``). Expired entries are
swept at each decision, so the slots of a replica that died free themselves.

Distinct prompts per day: a sorted set of prompt hashes scored by when each
was last seen; entries older than the window are swept. A prompt already in
the set is always admitted (a retry costs nothing); a new one is admitted
while the set holds fewer than the limit, so the set never holds more than
``limit`` members and the count is exact (no HyperLogLog error).

Every window of a decision is checked first and written only if all pass, in
one script: no partial reservation is ever left behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.state.base import MemoryLike, Script

MICROS = 1_000_000
RETRY_WITHOUT_ESTIMATE_US = 1_000_000  # a full concurrency limit frees "soon": ask for a retry after 1 s


@dataclass(frozen=True, slots=True)
class GcraOp:
    """A rate or budget of ``limit`` units per ``window_us``; the request costs ``cost`` units."""

    limit: int
    window_us: float
    cost: int
    capped: bool = False


@dataclass(frozen=True, slots=True)
class SlotOp:
    """A concurrency slot ``slot_id`` among at most ``limit``, held until released or ``ttl_us`` pass."""

    limit: int
    slot_id: str
    ttl_us: float


@dataclass(frozen=True, slots=True)
class DistinctOp:
    """A member (a prompt hash) of a set holding at most ``limit`` members seen within ``window_us``."""

    limit: int
    member: str
    window_us: float


Op = GcraOp | SlotOp | DistinctOp


@dataclass(frozen=True, slots=True)
class OpResult:
    """One op's verdict. ``reset_us``: time until a GCRA limit is full again."""

    ok: bool
    remaining: int
    reset_us: int
    charged: int
    retry_us: int  # when not ok: how long until this op alone would pass


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    results: tuple[OpResult, ...]

    @property
    def retry_us(self) -> int:
        """How long until every failing op would pass (the longest wait)."""
        return max((r.retry_us for r in self.results if not r.ok), default=0)


@dataclass(frozen=True, slots=True)
class GcraAdjust:
    """Settle a GCRA reservation: add ``delta`` units (negative = refund) to ``limit`` per ``window_us``."""

    limit: int
    window_us: float
    delta: int


@dataclass(frozen=True, slots=True)
class SlotRelease:
    slot_id: str


Settlement = GcraAdjust | SlotRelease


def _num(value: float) -> str:
    return repr(float(value))


def encode_decide(ops: Sequence[Op], now_us: float = 0) -> list[Any]:
    """ARGV of DECIDE: ``now`` (0 = the backend's clock), the op count, then 5 fields per op."""
    args: list[Any] = [_num(now_us), len(ops)]
    for op in ops:
        if isinstance(op, GcraOp):
            args += ["g", _num(op.window_us), op.limit, op.cost, "c" if op.capped else "s"]
        elif isinstance(op, SlotOp):
            args += ["c", op.limit, op.slot_id, _num(op.ttl_us), ""]
        else:
            args += ["d", op.limit, op.member, _num(op.window_us), ""]
    return args


def decode_decide(raw: Sequence[Any]) -> Decision:
    values = [int(v) for v in raw]
    results = tuple(
        OpResult(bool(values[i]), values[i + 1], values[i + 2], values[i + 3], values[i + 4])
        for i in range(1, len(values), 5)
    )
    return Decision(bool(values[0]), results)


def encode_settle(items: Sequence[Settlement], now_us: float = 0) -> list[Any]:
    """ARGV of SETTLE: ``now`` (0 = the backend's clock), the item count, then 4 fields per item."""
    args: list[Any] = [_num(now_us), len(items)]
    for item in items:
        if isinstance(item, GcraAdjust):
            args += ["g", _num(item.window_us), item.limit, item.delta]
        else:
            args += ["r", item.slot_id, "", ""]
    return args


# ---------------------------------------------------------------------------------------------
# Redis. Time comes from the Redis server (TIME), so replicas with skewed clocks agree.
# Integers returned to redis-py are floored or ceiled explicitly (Redis would truncate).

_LUA_PRELUDE = """
local function clock()
  local override = tonumber(ARGV[1])
  if override and override > 0 then return override end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(x) return string.format('%.17g', x) end
local function drain(key, now)
  local stored = tonumber(redis.call('GET', key))
  if stored and stored > now then return stored - now end
  return 0
end
local function store_drain(key, now, d)
  if d > 0 then
    redis.call('SET', key, fmt(now + d), 'PX', math.ceil(d / 1000) + 1)
  else
    redis.call('DEL', key)
  end
end
"""

_DECIDE_LUA = (
    _LUA_PRELUDE
    + """
local now = clock()
local n = tonumber(ARGV[2])
local out = {1}
local writes = {}
for i = 1, n do
  local base = 2 + (i - 1) * 5
  local kind, a, b, c, e = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local key = KEYS[i]
  local ok, remaining, reset, charged, retry = 1, 0, 0, 0, 0
  if kind == 'g' then
    local window, limit, cost = tonumber(a), tonumber(b), tonumber(c)
    local interval = window / limit
    local slack = math.min(interval / 2, 1000)
    local d = drain(key, now)
    local nd = d
    if e == 'c' then
      local available = math.floor((window + slack - d) / interval)
      if available >= 1 then
        charged = math.min(cost, available)
        nd = d + charged * interval
      else
        ok = 0
        retry = math.max(1, math.ceil(d + interval - window))
      end
    else
      local wanted = d + cost * interval
      if wanted <= window + slack then
        charged = cost
        nd = wanted
      else
        ok = 0
        retry = math.max(1, math.ceil(wanted - window))
      end
    end
    remaining = math.min(limit, math.max(0, math.floor((window + slack - nd) / interval)))
    reset = math.ceil(nd)
    writes[i] = {kind, key, nd}
  elseif kind == 'c' then
    local limit, ttl = tonumber(a), tonumber(c)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
    local count = redis.call('ZCARD', key)
    if count < limit then
      charged = 1
      remaining = limit - count - 1
    else
      ok = 0
      retry = 1000000
    end
    writes[i] = {kind, key, b, ttl}
  else
    local limit, window = tonumber(a), tonumber(c)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - window))
    local count = redis.call('ZCARD', key)
    if redis.call('ZSCORE', key, b) then
      remaining = math.max(0, limit - count)
    elseif count < limit then
      charged = 1
      remaining = limit - count - 1
    else
      ok = 0
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      retry = math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
    end
    writes[i] = {kind, key, b, window}
  end
  if ok == 0 then out[1] = 0 end
  local at = 2 + (i - 1) * 5
  out[at], out[at + 1], out[at + 2], out[at + 3], out[at + 4] = ok, remaining, reset, charged, retry
end
if out[1] == 1 then
  for i = 1, n do
    local w = writes[i]
    if w[1] == 'g' then
      store_drain(w[2], now, w[3])
    elseif w[1] == 'c' then
      redis.call('ZADD', w[2], fmt(now + w[4]), w[3])
      redis.call('PEXPIRE', w[2], math.ceil(w[4] / 1000) + 1)
    else
      redis.call('ZADD', w[2], fmt(now), w[3])
      redis.call('PEXPIRE', w[2], math.ceil(w[4] / 1000) + 1)
    end
  end
end
return out
"""
)

_SETTLE_LUA = (
    _LUA_PRELUDE
    + """
local now = clock()
local n = tonumber(ARGV[2])
for i = 1, n do
  local base = 2 + (i - 1) * 4
  local kind = ARGV[base + 1]
  if kind == 'g' then
    local window, limit, delta = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
    local interval = window / limit
    store_drain(KEYS[i], now, drain(KEYS[i], now) + delta * interval)
  else
    redis.call('ZREM', KEYS[i], ARGV[base + 2])
  end
end
return n
"""
)


# ---------------------------------------------------------------------------------------------
# The in-process twins: the same arithmetic in the same order, on MemoryLike values
# (a float for a GCRA limit, a dict member -> score for a sorted set).


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


def _zremrange(members: dict[str, float], upto: float) -> None:
    for member in [m for m, score in members.items() if score <= upto]:
        del members[member]


def _decide_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
    now = _clock(args)
    n = int(args[1])
    out = [1]
    writes: list[tuple[Any, ...]] = []
    for i in range(n):
        kind, a, b, c, e = args[2 + i * 5 : 7 + i * 5]
        key = keys[i]
        ok, remaining, reset, charged, retry = 1, 0, 0, 0, 0
        if kind == "g":
            window, limit, cost = float(a), float(b), float(c)
            interval = window / limit
            slack = min(interval / 2, 1000.0)
            d = _drain(store, key, now)
            nd = d
            if e == "c":
                available = math.floor((window + slack - d) / interval)
                if available >= 1:
                    charged = int(min(cost, available))
                    nd = d + charged * interval
                else:
                    ok = 0
                    retry = max(1, math.ceil(d + interval - window))
            else:
                wanted = d + cost * interval
                if wanted <= window + slack:
                    charged = int(cost)
                    nd = wanted
                else:
                    ok = 0
                    retry = max(1, math.ceil(wanted - window))
            remaining = int(min(limit, max(0, math.floor((window + slack - nd) / interval))))
            reset = math.ceil(nd)
            writes.append((kind, key, nd))
        elif kind == "c":
            limit_n, ttl = int(a), float(c)
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
            limit_n, window = int(a), float(c)
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
                retry = max(1, math.ceil(min(members.values()) + window - now))
            writes.append((kind, key, str(b), window, members))
        if not ok:
            out[0] = 0
        out += [ok, remaining, reset, charged, retry]
    if out[0] == 1:
        for write in writes:
            if write[0] == "g":
                _store_drain(store, write[1], now, write[2])
            else:
                _, key, member, span, members = write
                members[member] = now + span if write[0] == "c" else now
                store.set_value(key, members, (math.ceil(span / 1000) + 1) / 1000, now / MICROS)
    return out


def _settle_local(store: MemoryLike, keys: Sequence[str], args: Sequence[Any]) -> int:
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


DECIDE = Script("distillguard.quota.decide.v1", _DECIDE_LUA, _decide_local)
SETTLE = Script("distillguard.quota.settle.v1", _SETTLE_LUA, _settle_local)
