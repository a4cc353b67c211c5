"""``distillguard watermark probe``: ask a suspect model our canary triggers and test its answers.

Each trigger is sent as a chat prompt; the answers are scored against every
candidate account's canary phrases (how many of the four words appear in
order) and against ``decoys`` phrases drawn the same way from keys that were
never served. A model that never saw our canaries has no reason to prefer our
phrases over the decoys, so an account's total score ranks uniformly among its
decoys' and the p-value is ``(1 + decoys scoring at least as high) / (1 + decoys)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from gateway.plugins import response_texts
from policies.watermark.canary import TRIGGERS, canary_for, phrase_score
from policies.watermark.detector import Candidate
from policies.watermark.stats import adjust

Ask = Callable[[str], list[str]]


def openai_asker(endpoint: str, model: str, api_key: str | None, samples: int, timeout: float = 60.0) -> Ask:
    """Queries an OpenAI-compatible chat endpoint (``.../v1``) with one trigger per call."""
    import httpx  # here: a served worker that never probes does not keep httpx in memory

    url = endpoint.rstrip("/") + "/chat/completions"
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    def ask(prompt: str) -> list[str]:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "n": samples,
            "max_tokens": 64,
        }
        response = httpx.post(url, json=body, headers=headers, timeout=timeout)
        response.raise_for_status()
        data = response.json()
        return response_texts(data) or []

    return ask


def probe(
    ask: Ask,
    candidates: Sequence[Candidate],
    *,
    variants: int = 4,
    decoys: int = 999,
    correction: str = "holm",
) -> dict[str, Any]:
    answers = {trigger: ask(trigger) for trigger in TRIGGERS}

    def total(key: bytes, key_id: str) -> int:
        score = 0
        for index in range(variants):
            canary = canary_for(key, key_id, index)
            score += max((phrase_score(canary.response, a) for a in answers[canary.trigger]), default=0)
        return score

    rows: list[dict[str, Any]] = []
    for candidate in candidates:
        observed = total(candidate.key, candidate.key_id)
        at_least = 0
        for j in range(decoys):
            decoy = hashlib.sha256(b"dg-decoy" + candidate.key + j.to_bytes(4, "big")).digest()
            at_least += total(decoy, candidate.key_id) >= observed
        rows.append(
            {
                "account": candidate.account,
                "key_id": candidate.key_id,
                "score": observed,
                "max_score": 4 * variants,
                "p_value": (1 + at_least) / (1 + decoys),
            }
        )
    for row, corrected in zip(rows, adjust([r["p_value"] for r in rows], correction), strict=True):
        row["p_corrected"] = corrected
    rows.sort(key=lambda r: (r["p_value"], -r["score"]))
    return {"triggers": len(TRIGGERS), "answers": answers, "decoys": decoys, "results": rows}
