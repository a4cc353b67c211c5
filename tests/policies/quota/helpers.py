"""Helpers for the quota tests: a started harness, the engine's end-of-exchange book-keeping, probes."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from gateway.errors import GatewayError
from gateway.plugins.base import Exchange, PolicyMode
from gateway.state.base import StateStore
from policies.quota.limiter import DECIDE, GcraOp, decode_decide, encode_decide
from tests.policy_harness import PolicyHarness

DAY_US = 86_400e6
MINUTE_US = 60e6


async def harness(
    store: StateStore, config: dict[str, Any], *, tier: str = "free", mode: PolicyMode = "enforce"
) -> PolicyHarness:
    h = PolicyHarness([("quota", config, mode)], tier=tier, store=store)
    await h.start()
    return h


def chat(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-small", "messages": [{"role": "user", "content": content}], **extra}


def ended(
    exchange: Exchange,
    *,
    status: int = 200,
    streamed: bool = False,
    aborted: bool = False,
    error: GatewayError | None = None,
    reached: bool = True,
) -> None:
    """What the proxy records in exchange.outcome before after_response (gateway/proxy.py _finish)."""
    outcome = exchange.outcome
    outcome.upstream_reached = reached
    outcome.status = 499 if aborted else status
    outcome.streamed = streamed
    outcome.aborted = aborted
    outcome.error = error


async def remaining(store: StateStore, account: str, suffix: str, limit: int, window_us: float) -> int:
    """What a GCRA limit of the quota policy has left now (a zero-cost probe)."""
    key = store.key("quota", "{" + account + "}", suffix)
    raw = await store.run_script(DECIDE, [key], encode_decide([GcraOp(limit, window_us, 0)]))
    return decode_decide(raw).results[0].remaining


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
