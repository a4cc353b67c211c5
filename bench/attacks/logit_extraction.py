"""Rebuilding full logit vectors through a logprobs API with ``logit_bias`` (Carlini et al. 2024 §5).

Two published variants, chosen by what the API's logprobs describe:

* ``topk`` (logprobs of the *biased* distribution: OpenAI before March 2024,
  vLLM V0): bias a reference token r and k-1 chosen tokens by +B so that all k
  fill the top-k; then ``logprob(t) - logprob(r) = z_t - z_r`` exactly. One
  query reads k-1 logits; a vector over S costs ceil((|S|-1)/(k-1)) queries.
* ``plain`` (no ``logit_bias`` allowed): one query per prompt, reading whichever
  of S the top-k alternatives happen to show; the baseline of what is left.
* ``sampled`` (logprobs of the *unbiased* distribution: OpenAI since 2024,
  vLLM V1): bias one token by +B so that it is sampled, and read its own
  (unbiased) logprob ``z_t - logsumexp(z)``. One query per logit.

Either way the result per prompt is ``z_S - z_r``, the logit vector up to the
softmax's constant, and :func:`bench.attacks.hidden_dimension.hidden_dimension`
recovers h from many of them. The attacker knows the tokenizer (here the
mock's vocabulary), as with tiktoken for OpenAI models.

``repeats`` > 1 sends each query again with every biased token's bias shifted
by its own known fraction of ``dither`` nats, subtracts the shifts and
averages: that removes rounding to a grid (the attack on coarse logprobs), not
noise keyed to the context.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import openai

Variant = Literal["topk", "sampled", "plain"]


@dataclass
class AttackReport:
    """What an extraction run got: the logit matrix (NaN where unknown) and what it cost."""

    logits: np.ndarray  # prompts x tokens, each row relative to the reference token
    queries: int = 0
    refused: int = 0  # 4xx answers (the gateway said no)
    answered: int = 0
    missing: int = 0  # logits the answers did not reveal
    refusal_messages: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def recovered_fraction(self) -> float:
        return float(np.isfinite(self.logits).mean()) if self.logits.size else 0.0


class LogitExtractor:
    """Runs the extraction against one OpenAI-compatible endpoint with the official async SDK."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        vocabulary: Sequence[str],
        *,
        model: str = "mock-small",
        variant: Variant = "topk",
        top_k: int = 20,
        bias: float = 100.0,
        concurrency: int = 16,
        repeats: int = 1,
        dither: float = 1.0,
        give_up_after: int = 32,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.vocabulary = list(vocabulary)
        self.ids = {token: i for i, token in enumerate(self.vocabulary)}
        self.model = model
        self.variant = variant
        self.top_k = top_k
        self.bias = bias
        self.repeats = max(1, repeats)
        self.dither = dither
        self.semaphore = asyncio.Semaphore(concurrency)
        self.give_up_after = give_up_after
        self.extra_headers = extra_headers or {}

    async def run(self, prompts: Sequence[str], token_ids: Sequence[int]) -> AttackReport:
        """Logit vectors of every prompt over ``token_ids`` (the first is the reference)."""
        started = time.perf_counter()
        report = AttackReport(np.full((len(prompts), len(token_ids)), np.nan))
        rows = await asyncio.gather(*(self._vector(p, list(token_ids), report) for p in prompts))
        for i, row in enumerate(rows):
            report.logits[i] = row
        report.missing = int(np.isnan(report.logits).sum())
        report.seconds = time.perf_counter() - started
        return report

    async def _vector(self, prompt: str, token_ids: list[int], report: AttackReport) -> np.ndarray:
        reference, others = token_ids[0], token_ids[1:]
        row = np.full(len(token_ids), np.nan)
        row[0] = 0.0
        position = {t: i for i, t in enumerate(token_ids)}
        if self.variant == "plain":
            reply = await self._ask(prompt, {}, self.top_k, report)
            entries = (reply or {}).get("top_logprobs") or []
            seen = {self.ids.get(e.get("token"), -1): e.get("logprob") for e in entries}
            if reference in seen:
                for token_id, value in seen.items():
                    if token_id in position:
                        row[position[token_id]] = value - seen[reference]
        elif self.variant == "topk":
            size = max(1, self.top_k - 1)
            batches = [others[i : i + size] for i in range(0, len(others), size)]
            results = await asyncio.gather(*(self._topk(prompt, reference, b, report) for b in batches))
            for found in results:
                for token_id, value in found.items():
                    row[position[token_id]] = value
        else:
            values = await asyncio.gather(*(self._sampled(prompt, t, report) for t in token_ids))
            ref = values[0]
            for i, value in enumerate(values):
                row[i] = value - ref if value is not None and ref is not None else np.nan
        if np.isnan(row[1:]).all():
            row[0] = np.nan  # nothing was learnt about this prompt
        return row

    async def _topk(
        self, prompt: str, reference: int, batch: list[int], report: AttackReport
    ) -> dict[int, float]:
        sums: dict[int, list[float]] = {}
        for repeat in range(self.repeats):
            shifts = {t: self._shift(repeat, t) for t in [reference, *batch]}
            bias = {str(t): self.bias - shift for t, shift in shifts.items()}  # APIs clamp to +-100
            reply = await self._ask(prompt, bias, self.top_k, report)
            if reply is None:
                return {}
            entries = reply.get("top_logprobs") or []
            seen = {self.ids.get(e.get("token"), -1): e.get("logprob") for e in entries}
            if reference not in seen:
                continue
            base = seen[reference] + shifts[reference]
            for token_id in batch:
                if token_id in seen:
                    sums.setdefault(token_id, []).append(seen[token_id] + shifts[token_id] - base)
        return {token_id: float(np.mean(values)) for token_id, values in sums.items()}

    async def _sampled(self, prompt: str, token_id: int, report: AttackReport) -> float | None:
        # The reported logprob ignores the bias here, so repeating with shifted biases gains nothing.
        reply = await self._ask(prompt, {str(token_id): self.bias}, 0, report)
        if reply is None or self.ids.get(reply.get("token"), -1) != token_id:
            return None
        value = reply.get("logprob")
        return float(value) if value is not None else None

    def _shift(self, repeat: int, token_id: int) -> float:
        """A known per-token offset spread evenly over [0, dither) across repeats."""
        if self.repeats == 1:
            return 0.0
        return self.dither * ((repeat / self.repeats + token_id * 0.6180339887) % 1.0)

    async def _ask(
        self, prompt: str, bias: dict[str, float], top_k: int, report: AttackReport
    ) -> dict[str, Any] | None:
        """One query; the first token's logprob entry as a dict, or None when refused or absent."""
        async with self.semaphore:
            if report.refused >= self.give_up_after and report.answered == 0:
                return None  # every query so far was refused: a real attacker stops paying here
            report.queries += 1
            try:
                reply = await self.client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=1,
                    temperature=0,
                    logprobs=True,
                    top_logprobs=top_k,
                    # OpenAI's types say int; vLLM takes floats. bias=0: the attacker sends none.
                    logit_bias=bias or openai.NOT_GIVEN,  # type: ignore[arg-type]
                    extra_headers=self.extra_headers,
                )
            except openai.BadRequestError as error:
                report.refused += 1
                report.refusal_messages[str(getattr(error, "message", error))[:160]] += 1
                return None
            report.answered += 1
        choice = reply.choices[0] if reply.choices else None
        if choice is None or choice.logprobs is None or not choice.logprobs.content:
            return None
        return choice.logprobs.content[0].model_dump()


def attack_prompts(count: int, seed: int = 0) -> list[str]:
    """Distinct prompts (the attack needs many contexts, not particular ones)."""
    return [f"Question {seed}-{i}: tell me something about item {i * 7919 % 100003}." for i in range(count)]
