"""The quota decision and its settlement: two atomic scripts, each one round trip.

This module defines the ops, their argument encoding and the two ``Script``
objects; the Redis bodies are in ``policies.quota.lua`` and their in-process
twins in ``policies.quota.twin``.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.plugins import Script
from policies.quota.lua import DECIDE_LUA, SETTLE_LUA
from policies.quota.twin import decide_local, settle_local

# The value objects here and in ``plan`` are made anew for every request (a few dozen per decision) and
# never changed after construction. They are plain slotted dataclasses, not frozen ones: a frozen
# dataclass's __init__ goes through object.__setattr__ for each field and costs four times as much.


@dataclass(slots=True)
class GcraOp:
    """A rate or budget of ``limit`` units per ``window_us``; the request costs ``cost`` units."""

    limit: int
    window_us: float
    cost: int
    capped: bool = False


@dataclass(slots=True)
class SlotOp:
    """A concurrency slot ``slot_id`` among at most ``limit``, held until released or ``ttl_us`` pass."""

    limit: int
    slot_id: str
    ttl_us: float


@dataclass(slots=True)
class DistinctOp:
    """A member (a prompt hash) of a set holding at most ``limit`` members seen within ``window_us``."""

    limit: int
    member: str
    window_us: float


Op = GcraOp | SlotOp | DistinctOp


@dataclass(slots=True)
class OpResult:
    """One op's verdict. ``reset_us``: time until a GCRA limit is full again."""

    ok: bool
    remaining: int
    reset_us: int
    charged: int
    retry_us: int  # when not ok: how long until this op alone would pass


@dataclass(slots=True)
class Decision:
    admitted: bool
    results: tuple[OpResult, ...]

    @property
    def retry_us(self) -> int:
        """How long until every failing op would pass (the longest wait)."""
        return max((r.retry_us for r in self.results if not r.ok), default=0)


@dataclass(slots=True)
class GcraAdjust:
    """Settle a GCRA reservation: add ``delta`` units (negative = refund) to ``limit`` per ``window_us``."""

    limit: int
    window_us: float
    delta: int


@dataclass(slots=True)
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
    values = list(map(int, raw))
    results = tuple(
        OpResult(values[i] != 0, values[i + 1], values[i + 2], values[i + 3], values[i + 4])
        for i in range(1, len(values), 5)
    )
    return Decision(values[0] != 0, results)


def encode_settle(items: Sequence[Settlement], now_us: float = 0) -> list[Any]:
    """ARGV of SETTLE: ``now`` (0 = the backend's clock), the item count, then 4 fields per item."""
    args: list[Any] = [_num(now_us), len(items)]
    for item in items:
        if isinstance(item, GcraAdjust):
            args += ["g", _num(item.window_us), item.limit, item.delta]
        else:
            args += ["r", item.slot_id, "", ""]
    return args


DECIDE = Script("distillguard.quota.decide.v1", DECIDE_LUA, decide_local)
SETTLE = Script("distillguard.quota.settle.v1", SETTLE_LUA, settle_local)
