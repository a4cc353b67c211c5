"""The quota's per-shape plans: the same decision as building every check anew, and no shape borrowed."""

from __future__ import annotations

import itertools

import pytest

from gateway.errors import RateLimitError
from gateway.state.base import StateStore
from policies.quota import QuotaConfig
from policies.quota.limiter import encode_decide
from policies.quota.plan import Plan, RequestCost, build_checks, plan_shape
from tests.policies.quota.helpers import chat, ended, harness

CONFIGS = [
    {"requests_per_minute": 20},
    {"tokens_per_minute": 40000, "tokens_per_day": 10**6, "max_concurrent": 4},
    {
        "requests_per_minute": 20,
        "tokens_per_minute": 40000,
        "tokens_per_day": 1000000,
        "max_concurrent": 4,
        "reasoning_tokens_per_day": 200000,
        "logprob_responses_per_day": 200,
        "distinct_prompts_per_day": 2000,
        "models": {
            "mock-reasoner*": {"requests_per_minute": 2, "tokens_per_day": 5000, "max_concurrent": 1},
            "mock-*": {"tokens_per_minute": 900},
        },
    },
]


@pytest.mark.parametrize("settings", CONFIGS)
def test_a_plan_fills_in_exactly_what_building_the_checks_anew_encodes(settings: dict[str, object]) -> None:
    config = QuotaConfig.model_validate(settings)
    costs = [
        RequestCost(input_tokens, output_tokens, "max_tokens", pattern, logprobs, digest, slot)
        for input_tokens, output_tokens, pattern, logprobs, digest, slot in itertools.product(
            (0, 7, 1234),
            (0, 64, 99999),
            (None, *config.models),
            (False, True),
            (None, "a1b2c3d4e5f60708"),
            ("s-1", "feedface2a"),
        )
    ]
    for cost in costs:

        def key(suffix: str) -> str:
            return f"dg:quota:{{acct}}:{suffix}"

        own = build_checks(config, cost, key)
        plan = Plan(build_checks(config, plan_shape(cost), key))
        assert plan.args(cost) == encode_decide([check.op for check in own]), cost
        assert plan.keys == [check.key for check in own]
        assert [(c.limit, c.charge, c.header) for c in plan.checks] == [
            (c.limit, c.charge, c.header) for c in own
        ]
        refused = any(c.charge == "tokens" and c.op.cost > c.op.limit for c in own)  # type: ignore[union-attr]
        assert refused == (plan.token_limit is not None and cost.tokens > plan.token_limit)


async def test_a_request_with_logprobs_after_one_without_is_charged_to_the_logprob_budget(
    store: StateStore,
) -> None:
    """The plan of a request without logprobs has no logprob check: it must not serve one with them."""
    h = await harness(store, {"logprob_responses_per_day": 1, "requests_per_minute": 100})
    for body in (chat(), chat(logprobs=True), chat()):
        exchange = h.exchange("chat.completions", body)
        await h.request(exchange)
        ended(exchange)
        await h.after(exchange)
    with pytest.raises(RateLimitError) as caught:
        await h.request(h.exchange("chat.completions", chat(logprobs=True, top_logprobs=2)))
    assert caught.value.code == "budget_exceeded"


async def test_accounts_and_models_never_share_a_plan(store: StateStore) -> None:
    config = {"requests_per_minute": 100, "models": {"mock-reasoner*": {"requests_per_minute": 1}}}
    h = await harness(store, config)
    await h.request(h.exchange("chat.completions", chat(), account="acct-a"))  # mock-small: no model limit
    await h.request(h.exchange("chat.completions", {**chat(), "model": "mock-reasoner"}, account="acct-a"))
    with pytest.raises(RateLimitError):  # the model's own limit, after a plan without it was made
        await h.request(
            h.exchange("chat.completions", {**chat(), "model": "mock-reasoner"}, account="acct-a")
        )
    # Another account has its own keys: acct-a's spent model limit is not its.
    other = h.exchange("chat.completions", {**chat(), "model": "mock-reasoner"}, account="acct-b")
    await h.request(other)
    assert other.response_headers["x-ratelimit-remaining-requests"] == "0"


async def test_distinct_prompts_are_counted_per_prompt_through_a_cached_plan(store: StateStore) -> None:
    h = await harness(store, {"distinct_prompts_per_day": 2})
    for text in ("one", "two", "one", "two"):  # repeats are free
        await h.request(h.exchange("chat.completions", chat(text)))
    with pytest.raises(RateLimitError) as caught:
        await h.request(h.exchange("chat.completions", chat("three")))
    assert caught.value.code == "budget_exceeded"


async def test_each_request_holds_and_releases_its_own_concurrency_slot(store: StateStore) -> None:
    h = await harness(store, {"max_concurrent": 2})
    first, second = (h.exchange("chat.completions", chat()) for _ in range(2))
    await h.request(first)
    await h.request(second)
    with pytest.raises(RateLimitError):
        await h.request(h.exchange("chat.completions", chat()))
    ended(first)
    await h.after(first)  # releases the first's slot, not a placeholder's
    third = h.exchange("chat.completions", chat())
    await h.request(third)
    with pytest.raises(RateLimitError):
        await h.request(h.exchange("chat.completions", chat()))
    for exchange in (second, third):
        ended(exchange)
        await h.after(exchange)
    await h.request(h.exchange("chat.completions", chat()))
