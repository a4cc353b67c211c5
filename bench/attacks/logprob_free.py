"""The logprob-free logit extraction of Carlini et al. (2024) §6: binary search on ``logit_bias``.

No logprobs at all: the attacker sends the same prompt again and again with
``max_tokens=1``, temperature 0 and a bias ``b`` on one token ``i``, and reads
only which token came out. With greedy decoding the answer is ``i`` exactly
when ``z_i + b > z_a`` (``a`` the unbiased argmax), so each query is one bit
about the gap ``g_i = z_a - z_i``; bisecting ``b`` over ``[0, max_bias]`` for
``steps`` queries pins ``g_i`` to an interval of width ``max_bias / 2**steps``
(its midpoint is the estimate, off by at most half that). The gaps of a
reference token ``r`` and the others give ``z_i - z_r = g_r - g_i``: the same
relative logit vectors as the logprob attacks, fed to the same SVD step
(:func:`bench.attacks.hidden_dimension.hidden_dimension`).

Cost: ``steps`` queries per logit, so ``prompts x tokens x steps`` per matrix;
a gap beyond ``max_bias`` (an API's bias cap) stays unknown (NaN). This is what
``logit_bias: exclusive`` leaves open (a bias, never together with logprobs),
and what the detector's bias-probing signal watches for (docs/logprobs.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np
import openai

from bench.attacks.logit_extraction import AttackReport


class LogprobFreeExtractor:
    """Bisects ``logit_bias`` per (prompt, token) through one OpenAI-compatible endpoint."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        vocabulary: Sequence[str],
        *,
        model: str = "mock-small",
        steps: int = 10,
        max_bias: float = 32.0,
        concurrency: int = 16,
        give_up_after: int = 32,
        max_queries: int | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.ids = {token: i for i, token in enumerate(vocabulary)}
        self.model = model
        self.steps = max(1, steps)
        self.max_bias = max_bias
        self.semaphore = asyncio.Semaphore(concurrency)
        self.give_up_after = give_up_after
        self.max_queries = max_queries  # a budget (tests: fail fast where nothing stops the attacker)
        self.extra_headers = extra_headers or {}
        self.stopped = False  # the attacker stopped paying: refused, nothing learnt since

    async def run(self, prompts: Sequence[str], token_ids: Sequence[int]) -> AttackReport:
        """Relative logits ``z_S - z_reference`` of every prompt (the first token is the reference)."""
        started = time.perf_counter()
        report = AttackReport(np.full((len(prompts), len(token_ids)), np.nan))
        for i, prompt in enumerate(prompts):  # prompt after prompt, as a real attacker would
            gaps = await asyncio.gather(*(self._gap(prompt, t, report) for t in token_ids))
            row = np.array([np.nan if g is None else g for g in gaps])
            report.logits[i] = row[0] - row  # z_i - z_r = g_r - g_i (NaN spreads when g_r is unknown)
            if self.stopped:
                break
        report.missing = int(np.isnan(report.logits).sum())
        report.seconds = time.perf_counter() - started
        return report

    async def _gap(self, prompt: str, token_id: int, report: AttackReport) -> float | None:
        """``z_argmax - z_token`` to within ``max_bias / 2**steps``, or None (refused, out of range)."""
        low, high = 0.0, self.max_bias
        for step in range(self.steps):
            # The first query asks at the top of the range: a token that does not win there never will.
            bias = high if step == 0 else (low + high) / 2
            won = await self._wins(prompt, token_id, bias, report)
            if won is None:
                return None
            if step == 0:
                if not won:
                    return None  # the gap is beyond the largest bias allowed
                continue
            if won:
                high = bias
            else:
                low = bias
        return (low + high) / 2

    async def _wins(self, prompt: str, token_id: int, bias: float, report: AttackReport) -> bool | None:
        """Whether ``token_id`` is the one-token answer under ``bias``; None when refused or unreadable."""
        async with self.semaphore:
            refused = report.refused >= self.give_up_after and report.refused > report.answered
            spent = self.max_queries is not None and report.queries >= self.max_queries
            if self.stopped or refused or spent:
                self.stopped = True  # mostly refusals now, or out of budget: the attacker stops paying
                return None
            report.queries += 1
            try:
                reply = await self.client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=1,
                    temperature=0,
                    # OpenAI's types say int; vLLM and the mock take floats.
                    logit_bias={str(token_id): bias},  # type: ignore[dict-item]
                    extra_headers=self.extra_headers,
                )
            except (openai.BadRequestError, openai.PermissionDeniedError, openai.RateLimitError) as error:
                report.refused += 1
                report.refusal_messages[str(getattr(error, "message", error))[:160]] += 1
                return None
            report.answered += 1
        content = reply.choices[0].message.content if reply.choices else None
        if content is None:
            return None
        return self.ids.get(content, -1) == token_id
