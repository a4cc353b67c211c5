"""Estimating a request's cost before forwarding it."""

from __future__ import annotations

from typing import Any

from gateway.protocols import OPERATIONS
from gateway.protocols.request_view import RequestView
from policies.quota.estimate import estimate_input_tokens, output_reservation, prompt_digest

OPS = {op.name: op for op in OPERATIONS.values()}


def view(operation: str, body: dict[str, Any]) -> RequestView:
    return OPS[operation].adapter.request_view(OPS[operation].name, body)


def asks_for_logprobs(operation: str, body: dict[str, Any]) -> bool:
    return view(operation, body).logprobs.any


def _chat(content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def test_input_estimate_is_bytes_over_four_with_safety_and_message_overhead() -> None:
    body = _chat("x" * 396)  # + "user": 400 bytes
    assert estimate_input_tokens(view("chat.completions", body), 1.0, 1000) == 100 + 4
    assert estimate_input_tokens(view("chat.completions", body), 1.25, 1000) == 125 + 4


def test_cjk_counts_bytes_so_it_is_not_underestimated() -> None:
    text = "蒸馏攻击" * 100  # 400 characters, about 400 tokens in BPE vocabularies
    estimate = estimate_input_tokens(view("chat.completions", _chat(text)), 1.25, 1000)
    assert estimate >= 500
    cyrillic = estimate_input_tokens(view("chat.completions", _chat("дистилляция" * 40)), 1.0, 0)
    assert cyrillic == (3 * 440 + 4 + 3) // 4 + 4  # 2-byte letters weigh 3 bytes


def test_media_parts_cost_a_fixed_estimate_not_their_base64_length() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 200_000}}
    body = _chat([{"type": "text", "text": "what is this?"}, image])
    estimate = estimate_input_tokens(view("chat.completions", body), 1.0, 1600)
    assert 1600 < estimate < 1700


def test_every_prompt_field_counts() -> None:
    anthropic = {"system": "s" * 40, "messages": [{"role": "user", "content": "u" * 36}], "tools": []}
    assert estimate_input_tokens(view("messages", anthropic), 1.0, 0) == 20 + 4
    responses = {"instructions": "i" * 40, "input": "q" * 40}
    assert estimate_input_tokens(view("responses", responses), 1.0, 0) == 20
    ids = {"prompt": [1, 2, 3, 4, 5]}
    assert estimate_input_tokens(view("completions", ids), 1.0, 0) == 5
    ignored = {"model": "m" * 400, "metadata": {"note": "n" * 400}, "messages": []}
    assert estimate_input_tokens(view("chat.completions", ignored), 1.0, 0) == 0


def test_output_reservation_uses_the_protocols_field_times_choices() -> None:
    assert output_reservation(view("chat.completions", _chat("x", max_tokens=100)), 4096) == (
        100,
        "max_tokens",
    )
    assert output_reservation(view("chat.completions", _chat("x", max_completion_tokens=50, n=3)), 4096) == (
        150,
        "max_completion_tokens",
    )
    assert output_reservation(view("chat.completions", _chat("x")), 4096) == (4096, "max_tokens")
    assert output_reservation(view("completions", {"prompt": "p", "max_tokens": 10, "best_of": 4}), 0) == (
        40,
        "max_tokens",
    )
    assert output_reservation(view("responses", {"input": "x", "max_output_tokens": 77}), 0) == (
        77,
        "max_output_tokens",
    )
    assert output_reservation(view("messages", {"messages": [], "max_tokens": 512, "n": 9}), 0) == (
        512,
        "max_tokens",
    )


def test_logprob_requests_are_recognised_per_api() -> None:
    assert asks_for_logprobs("chat.completions", _chat("x", logprobs=True))
    assert asks_for_logprobs("chat.completions", _chat("x", top_logprobs=5))
    assert not asks_for_logprobs("chat.completions", _chat("x", logprobs=False))
    assert asks_for_logprobs("completions", {"prompt": "p", "logprobs": 0})
    assert not asks_for_logprobs("completions", {"prompt": "p", "logprobs": None})
    assert asks_for_logprobs("responses", {"input": "x", "include": ["message.output_text.logprobs"]})
    assert asks_for_logprobs("responses", {"input": "x", "top_logprobs": 3})
    assert asks_for_logprobs("chat.completions", _chat("x", prompt_logprobs=1))
    assert asks_for_logprobs("chat.completions", _chat("x", prompt_logprobs=0))  # each prompt token's own
    assert asks_for_logprobs("completions", {"prompt": "p", "logprob_token_ids": [3]})
    assert asks_for_logprobs("responses", {"input": "x", "top_logprobs": 0})
    assert not asks_for_logprobs("messages", {"messages": [], "logprobs": True})


def test_prompt_digest_ignores_sampling_and_depends_on_the_key() -> None:
    a = prompt_digest(view("chat.completions", _chat("hello", temperature=0.2)), b"k1")
    b = prompt_digest(view("chat.completions", _chat("hello", temperature=1.0, max_tokens=9)), b"k1")
    c = prompt_digest(view("chat.completions", _chat("hello!")), b"k1")
    d = prompt_digest(view("chat.completions", _chat("hello")), b"k2")
    assert a == b and a != c and a != d and len(a) == 16
