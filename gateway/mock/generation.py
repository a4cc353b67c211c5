"""What the mock model 'generates' for a request: answer tokens, reasoning, logprobs, usage.

Shared by the OpenAI and Anthropic shapes so both APIs answer the same prompt
the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.mock.text import answer_text, count_tokens, reasoning_text, summary_text, tokenize
from gateway.mock.toymodel import LogprobsMode, TokenLogprob, toy_model


def prompt_text(body: dict[str, Any]) -> str:
    """All text of the request's input, for seeding (messages, prompt, input, system)."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key in ("content", "text", "input", "prompt", "system", "messages", "instructions"):
                if key in value:
                    walk(value[key])

    for key in ("system", "instructions", "messages", "prompt", "input"):
        if key in body:
            walk(body[key])
    return "\n".join(parts)


def last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return prompt_text({"messages": [message]})
    return prompt_text(body)


@dataclass
class Generation:
    prompt: str
    tokens: list[str]
    reasoning: str
    summary: str
    prompt_tokens: int
    logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_logprobs: list[dict[str, Any] | None] | None = None

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def reasoning_tokens(self) -> int:
        return count_tokens(self.reasoning)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens) + self.reasoning_tokens


def generate(
    body: dict[str, Any],
    *,
    max_tokens: int | None,
    with_reasoning: bool,
    top_logprobs: int | None,
    salt: str = "",
    logprobs_mode: LogprobsMode = "raw",
    prompt_logprobs: int | None = None,
) -> Generation:
    """The mock's answer to ``body``.

    ``top_logprobs`` None means no logprobs; 0 means the sampled token's only.
    A ``logit_bias`` in the body changes the chosen tokens whether or not
    logprobs are requested (OpenAI: "added to the logits ... prior to
    sampling"); ``logprobs_mode`` says whether the returned logprobs include it.
    """
    prompt = prompt_text(body)
    seed = last_user_text(body) or prompt
    tokens = tokenize(answer_text(seed, salt=salt))
    reasoning = reasoning_text(seed) if with_reasoning else ""
    if max_tokens is not None:
        budget = max(1, max_tokens - (count_tokens(reasoning) if reasoning else 0))
        tokens = tokens[:budget]
    generation = Generation(
        prompt, tokens, reasoning, summary_text(seed) if with_reasoning else "", count_tokens(prompt)
    )
    bias = parse_bias(body.get("logit_bias"))
    if top_logprobs is not None or bias:
        model = toy_model()
        k = top_logprobs or 0
        steps = [model.step(prompt, i, token, bias, k, logprobs_mode) for i, token in enumerate(tokens)]
        generation.tokens = [step.token for step in steps]
        if top_logprobs is not None:
            generation.logprobs = steps
    if prompt_logprobs is not None:
        generation.prompt_logprobs = prompt_logprob_entries(prompt, prompt_logprobs)
    return generation


def prompt_logprob_entries(prompt: str, top_k: int) -> list[dict[str, Any] | None]:
    """vLLM's ``prompt_logprobs``: per prompt token {token id: {logprob, rank, decoded_token}}, first None."""
    model = toy_model()
    entries: list[dict[str, Any] | None] = [None]
    for position, token in enumerate(tokenize(prompt)[1:], start=1):
        step, rank = model.prompt_step(prompt, position, token, top_k)
        entry = {str(step.token_id): {"logprob": step.logprob, "rank": rank, "decoded_token": step.token}}
        for alt_rank, (alt, alt_id, logprob) in enumerate(step.top, start=1):
            entry.setdefault(str(alt_id), {"logprob": logprob, "rank": alt_rank, "decoded_token": alt})
        entries.append(entry)
    return entries


def parse_bias(raw: Any) -> dict[int, float] | None:
    """OpenAI's logit_bias: {"token id": -100..100}."""
    if not isinstance(raw, dict) or not raw:
        return None
    bias: dict[int, float] = {}
    for key, value in raw.items():
        try:
            bias[int(key)] = max(-100.0, min(100.0, float(value)))
        except (TypeError, ValueError):
            continue
    return bias or None


def token_bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


@functools.lru_cache(maxsize=4096)
def _cached(
    key: bytes,
    max_tokens: Any,
    with_reasoning: bool,
    top_logprobs: int | None,
    salt: str,
    logprobs_mode: LogprobsMode,
    prompt_logprobs: int | None,
) -> Generation:
    return generate(
        orjson.loads(key),
        max_tokens=max_tokens,
        with_reasoning=with_reasoning,
        top_logprobs=top_logprobs,
        salt=salt,
        logprobs_mode=logprobs_mode,
        prompt_logprobs=prompt_logprobs,
    )


def generate_memoised(
    body: dict[str, Any],
    *,
    max_tokens: Any,
    with_reasoning: bool,
    top_logprobs: int | None,
    salt: str = "",
    logprobs_mode: LogprobsMode = "raw",
    prompt_logprobs: int | None = None,
) -> Generation:
    """The mock's generation, memoised on the request body (benchmarks repeat requests)."""
    key = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return _cached(key, max_tokens, with_reasoning, top_logprobs, salt, logprobs_mode, prompt_logprobs)
