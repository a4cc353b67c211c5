"""The quota policy's behaviour through a pipeline: reservations, reconciliation, slots, budgets, failures."""

from __future__ import annotations

import os
import re

import pytest

from gateway.errors import PolicyViolationError, RateLimitError, ServiceUnavailableError, UpstreamError
from gateway.state.base import StateStore
from gateway.state.redis import RedisStore
from policies.quota import policy as quota_policy
from policies.quota.policy import _next_slot_id
from tests.policies.quota.helpers import DAY_US, chat, ended, harness, remaining, sample
from tests.support import free_port

DAILY = 8640  # a daily budget refills a token every 10 s: probes stay within a token or two


async def test_reservation_is_reconciled_with_reported_usage(store: StateStore) -> None:
    h = await harness(store, {"tokens_per_day": DAILY})
    exchange = h.exchange("chat.completions", chat("x" * 396, max_tokens=1000))
    await h.request(exchange)
    reserved = 1000 + 125 + 4
    assert DAILY - reserved - 2 <= await remaining(store, "acct-1", "tpd", DAILY, DAY_US) <= DAILY - reserved
    body = {"choices": [], "usage": {"prompt_tokens": 90, "completion_tokens": 30, "total_tokens": 120}}
    await h.response(exchange, body)
    ended(exchange)
    await h.after(exchange)
    left = await remaining(store, "acct-1", "tpd", DAILY, DAY_US)
    assert DAILY - 120 - 2 <= left <= DAILY - 120


async def test_upstream_error_or_no_upstream_refunds_everything(store: StateStore) -> None:
    h = await harness(store, {"tokens_per_day": DAILY})
    for finish in ({"status": 503}, {"reached": False}):
        exchange = h.exchange("chat.completions", chat(max_tokens=5000))
        await h.request(exchange)
        ended(exchange, **finish)  # type: ignore[arg-type]
        await h.after(exchange)
        assert await remaining(store, "acct-1", "tpd", DAILY, DAY_US) >= DAILY - 1


@pytest.mark.parametrize("how", ["aborted", "failed_midstream", "no_usage"])
async def test_cut_short_exchanges_keep_at_least_the_reservation(store: StateStore, how: str) -> None:
    h = await harness(store, {"tokens_per_day": DAILY})
    exchange = h.exchange("chat.completions", chat("x" * 396, max_tokens=1000, stream=True))
    await h.request(exchange)
    if how == "aborted":
        exchange.usage.known, exchange.usage.input_tokens = True, 90  # partial report, then the client left
        ended(exchange, streamed=True, aborted=True)
    elif how == "failed_midstream":
        ended(exchange, streamed=True, error=UpstreamError("dropped"))
    else:
        ended(exchange)
    await h.after(exchange)
    left = await remaining(store, "acct-1", "tpd", DAILY, DAY_US)
    assert DAILY - 1129 - 2 <= left <= DAILY - 1129


async def test_concurrency_slots_are_released_however_the_request_ended(store: StateStore) -> None:
    h = await harness(store, {"max_concurrent": 2})
    first, second = h.exchange("chat.completions", chat()), h.exchange("chat.completions", chat())
    third = h.exchange("chat.completions", chat())
    await h.request(first)
    await h.request(second)  # same request id as first: slots must not be shared through it
    with pytest.raises(RateLimitError) as caught:
        await h.request(third)
    assert caught.value.retry_after == 1.0 and "concurrent requests" in caught.value.message
    await h.after(third)  # rejected: holds nothing, releases nothing
    ended(first, streamed=True, aborted=True)
    await h.after(first)
    fourth = h.exchange("chat.completions", chat())
    await h.request(fourth)
    ended(second, error=UpstreamError("boom"))
    await h.after(second)
    await h.request(h.exchange("chat.completions", chat()))


async def test_rejection_is_a_429_with_retry_after_and_headers(store: StateStore) -> None:
    h = await harness(store, {"requests_per_minute": 2, "tokens_per_minute": 10_000})
    for expected in ("1", "0"):
        exchange = h.exchange("chat.completions", chat(max_tokens=100))
        await h.request(exchange)
        assert exchange.response_headers["x-ratelimit-remaining-requests"] == expected
        assert exchange.response_headers["x-ratelimit-limit-requests"] == "2"
        assert exchange.response_headers["x-ratelimit-limit-tokens"] == "10000"
    refused = h.exchange("chat.completions", chat(max_tokens=100))
    before = sample("distillguard_quota_decisions_total", tier="free", limit="requests", decision="rejected")
    with pytest.raises(RateLimitError) as caught:
        await h.request(refused)
    error = caught.value
    assert error.status == 429 and error.headers["retry-after"] == "30"
    assert "requests per minute" in error.message and "limit 2" in error.message
    assert refused.response_headers["x-ratelimit-remaining-requests"] == "0"
    assert re.fullmatch(r"59\.\d+s|1m0s", refused.response_headers["x-ratelimit-reset-requests"])
    after = sample("distillguard_quota_decisions_total", tier="free", limit="requests", decision="rejected")
    assert after == before + 1


async def test_requests_that_can_never_fit_get_a_400_naming_the_parameter(store: StateStore) -> None:
    h = await harness(store, {"tokens_per_minute": 1000})
    with pytest.raises(PolicyViolationError) as caught:
        await h.request(h.exchange("chat.completions", chat(max_completion_tokens=5000)))
    assert caught.value.param == "max_completion_tokens" and "1000 tokens per minute" in caught.value.message
    with pytest.raises(PolicyViolationError) as caught:
        await h.request(h.exchange("chat.completions", chat("x" * 10_000, max_tokens=10)))
    assert caught.value.param == "messages"
    # Without max_tokens the configured default is reserved, and named.
    small = await harness(store, {"tokens_per_minute": 1000, "default_max_output_tokens": 2000})
    with pytest.raises(PolicyViolationError) as caught:
        await small.request(small.exchange("messages", {"messages": [], "model": "claude-mock"}))
    assert caught.value.param == "max_tokens"


async def test_model_limits_apply_to_the_first_matching_glob(store: StateStore) -> None:
    config = {
        "requests_per_minute": 100,
        "models": {"mock-reasoner*": {"requests_per_minute": 1}, "mock-*": {"requests_per_minute": 50}},
    }
    h = await harness(store, config)
    await h.request(h.exchange("chat.completions", {**chat(), "model": "mock-reasoner"}))
    with pytest.raises(RateLimitError) as caught:
        await h.request(h.exchange("chat.completions", {**chat(), "model": "mock-reasoner-2"}))
    assert "for models 'mock-reasoner*'" in caught.value.message
    other = h.exchange("chat.completions", chat())  # mock-small: the "mock-*" glob
    await h.request(other)
    assert other.response_headers["x-ratelimit-remaining-requests"] == "49"


async def test_logprob_budget_counts_served_logprob_responses_only(store: StateStore) -> None:
    h = await harness(store, {"logprob_responses_per_day": 2})
    failed = h.exchange("chat.completions", chat(logprobs=True))
    await h.request(failed)
    ended(failed, status=500)  # the upstream failed: no logprobs served, refunded
    await h.after(failed)
    for _ in range(2):
        served = h.exchange("chat.completions", chat(logprobs=True, top_logprobs=5))
        await h.request(served)
        ended(served)
        await h.after(served)
    with pytest.raises(RateLimitError) as caught:
        await h.request(h.exchange("chat.completions", chat(top_logprobs=3)))
    assert caught.value.code == "budget_exceeded"
    await h.request(h.exchange("chat.completions", chat()))  # no logprobs: not limited


async def test_reasoning_budget_charges_reported_reasoning_tokens(store: StateStore) -> None:
    h = await harness(store, {"reasoning_tokens_per_day": 3000})
    exchange = h.exchange("chat.completions", chat(max_tokens=2000))
    await h.request(exchange)
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 2600,
        "completion_tokens_details": {"reasoning_tokens": 2500},
    }
    await h.response(exchange, {"choices": [], "usage": usage})
    ended(exchange)
    await h.after(exchange)
    # 500 left: the next request is admitted (and capped at 500), the one after is refused.
    second = h.exchange("chat.completions", chat(max_tokens=2000))
    await h.request(second)
    with pytest.raises(RateLimitError) as caught:
        await h.request(h.exchange("chat.completions", chat(max_tokens=10)))
    assert "reasoning tokens per day" in caught.value.message


async def test_distinct_prompt_budget_admits_repeats(store: StateStore) -> None:
    h = await harness(store, {"distinct_prompts_per_day": 2})
    await h.request(h.exchange("chat.completions", chat("one", temperature=0)))
    await h.request(h.exchange("chat.completions", chat("two")))
    with pytest.raises(RateLimitError):
        await h.request(h.exchange("chat.completions", chat("three")))
    await h.request(h.exchange("chat.completions", chat("one", temperature=1)))  # same prompt
    # Another account has its own budget.
    await h.request(h.exchange("chat.completions", chat("three"), account="acct-2"))


async def test_shadow_mode_counts_but_never_rejects_or_sets_headers(store: StateStore) -> None:
    h = await harness(store, {"requests_per_minute": 1}, mode="shadow")
    before = sample(
        "distillguard_quota_decisions_total", tier="free", limit="requests", decision="shadow_rejected"
    )
    for _ in range(3):
        exchange = h.exchange("chat.completions", chat())
        await h.request(exchange)
        assert not exchange.response_headers
        await h.after(exchange)
    after = sample(
        "distillguard_quota_decisions_total", tier="free", limit="requests", decision="shadow_rejected"
    )
    assert after == before + 2


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
async def test_unreachable_backend(mode: str) -> None:
    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "t", timeout_seconds=0.2)
    try:
        h = await harness(dead, {"requests_per_minute": 1, "max_concurrent": 1, "on_backend_error": mode})
        before = sample("distillguard_quota_backend_errors_total", backend="redis", mode=mode)
        for _ in range(3):
            exchange = h.exchange("chat.completions", chat())
            if mode == "fail_open":
                await h.request(exchange)
                assert [a.action for a in exchange.actions] == ["backend_fail_open"]
                assert "quota" not in exchange.scratch  # nothing reserved, nothing to settle
            else:
                with pytest.raises(ServiceUnavailableError) as caught:
                    await h.request(exchange)
                assert caught.value.status == 503 and caught.value.headers == {"retry-after": "1"}
            await h.after(exchange)
        assert sample("distillguard_quota_backend_errors_total", backend="redis", mode=mode) == before + 3
    finally:
        await dead.close()


async def test_no_limits_configured_means_no_round_trip(store: StateStore) -> None:
    h = await harness(store, {"logprob_responses_per_day": 5})
    exchange = h.exchange("chat.completions", chat())  # asks for no logprobs: nothing to check
    before = sample("distillguard_quota_backend_seconds_count", backend=store.backend)
    await h.request(exchange)
    await h.after(exchange)
    assert sample("distillguard_quota_backend_seconds_count", backend=store.backend) == before
    assert not exchange.response_headers


def test_slot_ids_are_unique_and_differ_in_a_forked_child() -> None:
    ids = {_next_slot_id() for _ in range(1000)}
    assert len(ids) == 1000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its first id and exits at once
        os.write(write, _next_slot_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child[:16] != _next_slot_id()[:16]


async def test_name_caches_stay_bounded_and_exact(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Model and account names are the client's: a client cycling through new ones must not grow the
    # policy's per-name caches, and a name evicted and seen again gets the same limits.
    monkeypatch.setattr(quota_policy, "CACHED_NAMES", 8)
    config = {"requests_per_minute": 1000, "models": {"mock-reasoner*": {"requests_per_minute": 2}}}
    h = await harness(store, config)
    policy = h.pipeline.policies[0]
    for index in range(40):
        body = {**chat(), "model": f"junk-{index}"}
        await h.request(h.exchange("chat.completions", body, account=f"acct-{index}"))
        assert len(policy._model_patterns) <= 8 and len(policy._keys) <= 8  # type: ignore[attr-defined]
    for model in ("mock-reasoner-a", "mock-reasoner-b"):
        await h.request(h.exchange("chat.completions", {**chat(), "model": model}, account="acct-0"))
    third = h.exchange("chat.completions", {**chat(), "model": "mock-reasoner-c"}, account="acct-0")
    with pytest.raises(RateLimitError) as caught:
        await h.request(third)
    assert "for models 'mock-reasoner*'" in caught.value.message
    other = h.exchange("chat.completions", chat(), account="acct-1")  # acct-1's own minute window
    await h.request(other)
    assert other.response_headers["x-ratelimit-remaining-requests"] == "998"
