"""The decision and settlement scripts (GCRA, slots, distinct sets): same results on both backends."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.state.base import StateStore
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from policies.quota.limiter import (
    DECIDE,
    SETTLE,
    Decision,
    DistinctOp,
    GcraAdjust,
    GcraOp,
    Op,
    Settlement,
    SlotOp,
    SlotRelease,
    decode_decide,
    encode_decide,
    encode_settle,
)
from tests.support import RedisProcess

NOW = 1_760_000_000_000_000.0  # a fixed clock (µs since the epoch), so results are exact
MINUTE = 60e6
SECOND = 1e6


async def decide(store: StateStore, ops: Sequence[tuple[str, Op]], now: float) -> Decision:
    keys = [store.key(name) for name, _ in ops]
    return decode_decide(await store.run_script(DECIDE, keys, encode_decide([op for _, op in ops], now)))


async def settle(store: StateStore, items: Sequence[tuple[str, Settlement]], now: float) -> None:
    keys = [store.key(name) for name, _ in items]
    await store.run_script(SETTLE, keys, encode_settle([item for _, item in items], now))


async def test_burst_admits_exactly_the_limit_then_refills_at_the_rate(store: StateStore) -> None:
    rate = ("rpm", GcraOp(7, MINUTE, 1))  # T = 8.571428... s, not a round number on purpose
    admitted = [(await decide(store, [rate], NOW + i)).admitted for i in range(10)]
    assert admitted == [True] * 7 + [False] * 3
    interval = MINUTE / 7
    # One unit comes back per interval after the first admission, give or take the 1 ms rounding slack.
    assert not (await decide(store, [rate], NOW + interval - 1001)).admitted
    assert (await decide(store, [rate], NOW + interval - 1000)).admitted
    assert not (await decide(store, [rate], NOW + interval + 1)).admitted
    assert (await decide(store, [rate], NOW + 2 * interval)).admitted


async def test_many_small_charges_never_lose_the_last_unit_to_rounding(store: StateStore) -> None:
    rate = ("tpm", GcraOp(999_983, MINUTE, 1))  # a prime: T is far from a round number
    admitted = 0
    for _ in range(2000):
        admitted += (await decide(store, [("tpm", GcraOp(999_983, MINUTE, 500))], NOW)).admitted
    assert admitted == 999_983 // 500
    assert (await decide(store, [rate], NOW)).results[0].remaining == 999_983 % 500 - 1


async def test_retry_after_and_remaining_and_reset(store: StateStore) -> None:
    rate = ("tpm", GcraOp(1000, MINUTE, 400))
    first = await decide(store, [rate], NOW)
    assert first.results[0].remaining == 600 and first.results[0].reset_us == 24 * SECOND
    second = await decide(store, [rate], NOW)
    assert second.results[0].remaining == 200 and second.results[0].reset_us == 48 * SECOND
    third = await decide(store, [rate], NOW)
    assert not third.admitted
    # 200 tokens free, 400 wanted: 200 more tokens at 60 ms each = 12 s.
    assert third.retry_us == 12 * SECOND and third.results[0].remaining == 200
    assert (await decide(store, [rate], NOW + third.retry_us)).admitted


async def test_a_decision_writes_nothing_unless_every_window_passes(store: StateStore) -> None:
    rpm = ("rpm", GcraOp(100, MINUTE, 1))
    tpm = ("tpm", GcraOp(1000, MINUTE, 600))
    slots = ("slots", SlotOp(5, "a", MINUTE))
    assert (await decide(store, [rpm, tpm, slots], NOW)).admitted
    refused = await decide(store, [rpm, tpm, ("slots", SlotOp(5, "b", MINUTE))], NOW)
    assert not refused.admitted
    assert [r.ok for r in refused.results] == [True, False, True]
    # The refused decision charged neither the request window nor a slot.
    after = await decide(store, [rpm, ("slots", SlotOp(5, "c", MINUTE))], NOW)
    assert after.results[0].remaining == 98 and after.results[1].remaining == 3


async def test_settlement_refunds_and_charges_debt(store: StateStore) -> None:
    tpm = ("tpm", GcraOp(1000, MINUTE, 800))
    assert (await decide(store, [tpm], NOW)).admitted
    await settle(store, [("tpm", GcraAdjust(1000, MINUTE, -700))], NOW)  # used 100 of 800
    assert (await decide(store, [("tpm", GcraOp(1000, MINUTE, 900))], NOW)).admitted
    # Used 500 more than reserved: the account is in debt and waits it out.
    await settle(store, [("tpm", GcraAdjust(1000, MINUTE, 500))], NOW)
    probe = await decide(store, [("tpm", GcraOp(1000, MINUTE, 1))], NOW)
    assert not probe.admitted and probe.retry_us == 501 * 60_000  # 1500 used of 1000: 501 to wait out


async def test_refund_never_fills_past_the_burst(store: StateStore) -> None:
    tpm = ("tpm", GcraOp(1000, MINUTE, 100))
    assert (await decide(store, [tpm], NOW)).admitted
    await settle(store, [("tpm", GcraAdjust(1000, MINUTE, -100_000))], NOW)
    full = await decide(store, [("tpm", GcraOp(1000, MINUTE, 1000))], NOW)
    assert full.admitted
    assert not (await decide(store, [("tpm", GcraOp(1000, MINUTE, 1))], NOW)).admitted


async def test_capped_budget_admits_while_any_remains_and_charges_at_most_that(store: StateStore) -> None:
    budget = ("reasoning", GcraOp(1000, 86_400e6, 700, capped=True))
    first = await decide(store, [budget], NOW)
    second = await decide(store, [budget], NOW)
    third = await decide(store, [budget], NOW)
    assert [d.admitted for d in (first, second, third)] == [True, True, False]
    assert first.results[0].charged == 700 and second.results[0].charged == 300
    assert third.retry_us == math.ceil(86_400e6 / 1000)  # one unit back


async def test_concurrency_slots_release_and_expire(store: StateStore) -> None:
    def slot(slot_id: str) -> tuple[str, Op]:
        return ("slots", SlotOp(2, slot_id, 10 * SECOND))

    assert (await decide(store, [slot("a")], NOW)).admitted
    assert (await decide(store, [slot("b")], NOW)).admitted
    full = await decide(store, [slot("c")], NOW)
    assert not full.admitted and full.retry_us == SECOND
    await settle(store, [("slots", SlotRelease("a"))], NOW)
    assert (await decide(store, [slot("c")], NOW)).admitted
    # A replica that died never releases "b" and "c": their deadlines free them.
    assert not (await decide(store, [slot("d")], NOW + 10 * SECOND - 1)).admitted
    assert (await decide(store, [slot("d")], NOW + 10 * SECOND)).admitted


async def test_distinct_prompts_are_exact_and_known_prompts_always_pass(store: StateStore) -> None:
    def prompt(member: str) -> tuple[str, Op]:
        return ("prompts", DistinctOp(3, member, 86_400e6))

    for member in ("p1", "p2", "p3"):
        assert (await decide(store, [prompt(member)], NOW + 1)).admitted
    refused = await decide(store, [prompt("p4")], NOW + 2)
    assert not refused.admitted and refused.retry_us == 86_400e6 - 1
    again = await decide(store, [prompt("p2")], NOW + 3)
    assert again.admitted and again.results[0].charged == 0
    # p1 and p3 were last seen at NOW + 1 and leave the window a day later; p2 was seen again.
    assert (await decide(store, [prompt("p4")], NOW + 1 + 86_400e6)).admitted


async def test_keys_expire_when_the_limit_is_full_again(redis_server: RedisProcess) -> None:
    store = RedisStore(redis_server.url, f"t{uuid.uuid4().hex[:8]}")
    try:
        await decide(store, [("rpm", GcraOp(60, MINUTE, 3)), ("slots", SlotOp(2, "s", 5 * SECOND))], 0)
        ttl_rate = await store.client.pttl(store.key("rpm"))
        ttl_slots = await store.client.pttl(store.key("slots"))
        assert 2900 <= ttl_rate <= 3002 and 4900 <= ttl_slots <= 5002
    finally:
        await store.close()


# ---- the two backends agree on every result ---------------------------------------------------

op_strategy = st.one_of(
    st.builds(
        lambda limit, cost, capped: ("g", GcraOp(limit, MINUTE, cost, capped)),
        st.sampled_from([1, 2, 7, 13, 50]),
        st.integers(0, 60),
        st.booleans(),
    ),
    st.builds(lambda slot: ("c", SlotOp(3, f"s{slot}", 20 * SECOND)), st.integers(0, 5)),
    st.builds(lambda member: ("d", DistinctOp(4, f"m{member}", 30 * SECOND)), st.integers(0, 7)),
)
step_strategy = st.tuples(
    st.one_of(  # µs since the previous step: anything, or close to a refill boundary
        st.floats(0, 5e6, allow_nan=False),
        st.sampled_from([0.0, 0.5, 999.5, 1000.0, 1000.5, MINUTE / 7, MINUTE / 13 - 999.0]),
    ),
    st.lists(op_strategy, min_size=1, max_size=3),
    st.integers(-30, 30),  # settlement delta for the step's GCRA ops
)


async def _run(store: StateStore, steps: list[tuple[float, list[tuple[str, Op]], int]]) -> list[Any]:
    now = NOW
    trace: list[Any] = []
    for gap, ops, delta in steps:
        now += gap
        named = [(f"{kind}{i}", op) for i, (kind, op) in enumerate(ops)]
        decision = await decide(store, named, now)
        trace.append(decision)
        items: list[tuple[str, Settlement]] = []
        for name, op in named:
            if isinstance(op, GcraOp):
                items.append((name, GcraAdjust(op.limit, op.window_us, delta)))
            elif isinstance(op, SlotOp) and delta % 2:
                items.append((name, SlotRelease(op.slot_id)))
        if items:
            await settle(store, items, now)
    return trace


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step_strategy, min_size=1, max_size=12))
def test_memory_and_redis_give_identical_results(
    redis_server: RedisProcess, steps: list[tuple[float, list[tuple[str, Op]], int]]
) -> None:
    async def both() -> tuple[list[Any], list[Any]]:
        prefix = f"h{uuid.uuid4().hex[:10]}"
        redis_store = RedisStore(redis_server.url, prefix)
        try:
            return await _run(MemoryStore(prefix), steps), await _run(redis_store, steps)
        finally:
            await redis_store.close()

    memory_trace, redis_trace = asyncio.run(both())
    assert memory_trace == redis_trace
