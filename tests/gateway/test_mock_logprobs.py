"""The mock's toy model and its logprob parameters, checked against what OpenAI and vLLM document."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest

from bench.attacks.groundtruth import true_relative_logits
from gateway.mock.toymodel import toy_model
from tests.support import MockHandle

PROMPT = "How do hash tables work?"
CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1}


def _chat(mock: MockHandle, mode: str = "raw", **extra: object) -> httpx.Response:
    return httpx.post(
        f"{mock.url}/v1/chat/completions", json={**CHAT, **extra}, headers={"x-mock-logprobs-mode": mode}
    )


def _first(reply: httpx.Response) -> dict:
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["logprobs"]["content"][0]


def test_logprobs_are_an_honest_log_softmax_of_low_rank_logits(mock_upstream: MockHandle) -> None:
    entry = _first(_chat(mock_upstream, logprobs=True, top_logprobs=20))
    model = toy_model()
    ids = [model.index[alt["token"]] for alt in entry["top_logprobs"]]
    reported = np.array([alt["logprob"] for alt in entry["top_logprobs"]])
    assert np.allclose(reported - reported[0], true_relative_logits(PROMPT, ids), atol=1e-12)
    assert sum(math.exp(v) for v in reported) < 1 and list(reported) == sorted(reported, reverse=True)
    assert np.linalg.matrix_rank(model.W) == model.hidden == 48


def test_logit_bias_changes_the_text_without_logprobs(mock_upstream: MockHandle) -> None:
    plain = _chat(mock_upstream).json()["choices"][0]["message"]["content"]
    forced = toy_model().index[" problem"]
    biased = _chat(mock_upstream, logit_bias={str(forced): 100}).json()["choices"][0]
    assert biased["message"]["content"] == " problem" != plain and biased["logprobs"] is None


def test_raw_mode_reports_unbiased_logprobs(mock_upstream: MockHandle) -> None:
    """OpenAI since 2024 / vLLM V1: the bias picks the token; logprobs ignore it."""
    forced = toy_model().index[" problem"]
    unbiased = _first(_chat(mock_upstream, logprobs=True, top_logprobs=5))
    entry = _first(_chat(mock_upstream, logprobs=True, top_logprobs=5, logit_bias={str(forced): 100}))
    assert entry["token"] == " problem" and entry["logprob"] < -1  # its own, unbiased, logprob
    assert entry["top_logprobs"] == unbiased["top_logprobs"]


def test_processed_mode_reports_biased_logprobs(mock_upstream: MockHandle) -> None:
    """OpenAI before 2024 / vLLM V0: biased tokens fill the top-k with their biased logprobs."""
    model = toy_model()
    ids = [model.index[t] for t in (" problem", " answer", " method")]
    entry = _first(
        _chat(
            mock_upstream, "processed", logprobs=True, top_logprobs=3, logit_bias={str(i): 100 for i in ids}
        )
    )
    assert {alt["token"] for alt in entry["top_logprobs"]} == {" problem", " answer", " method"}
    assert abs(sum(math.exp(alt["logprob"]) for alt in entry["top_logprobs"]) - 1) < 1e-9


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"top_logprobs": 3}, "logprobs must be set to true"),
        ({"logprobs": True, "top_logprobs": 21}, "between 0 and 20"),
        ({"prompt_logprobs": 1, "stream": True}, "not supported with stream"),
    ],
)
def test_openai_parameter_errors(mock_upstream: MockHandle, extra: dict, message: str) -> None:
    reply = _chat(mock_upstream, **extra)
    assert reply.status_code == 400 and message in reply.json()["error"]["message"]


def test_legacy_logprobs_include_the_sampled_token(mock_upstream: MockHandle) -> None:
    body = {"model": "mock-small", "prompt": PROMPT, "logprobs": 1, "max_tokens": 8}
    logprobs = httpx.post(f"{mock_upstream.url}/v1/completions", json=body).json()["choices"][0]["logprobs"]
    for token, alternatives in zip(logprobs["tokens"], logprobs["top_logprobs"], strict=True):
        assert token in alternatives and 1 <= len(alternatives) <= 2  # "up to logprobs+1 elements"


def test_vllm_prompt_logprobs(mock_upstream: MockHandle) -> None:
    reply = _chat(mock_upstream, prompt_logprobs=2).json()
    entries = reply["prompt_logprobs"]
    assert entries[0] is None and len(entries) > 3
    for entry in entries[1:]:
        assert 1 <= len(entry) <= 3 and all(
            {"logprob", "rank", "decoded_token"} == set(v) for v in entry.values()
        )
    body = {"model": "mock-small", "prompt": PROMPT, "prompt_logprobs": 1, "max_tokens": 2}
    choice = httpx.post(f"{mock_upstream.url}/v1/completions", json=body).json()["choices"][0]
    assert choice["prompt_logprobs"][0] is None and choice["prompt_logprobs"][1]


def test_responses_logprobs_follow_include(mock_upstream: MockHandle) -> None:
    body = {"model": "mock-small", "input": PROMPT, "max_output_tokens": 3}
    url = f"{mock_upstream.url}/v1/responses"
    none = httpx.post(url, json=body).json()["output"][-1]["content"][0]["logprobs"]
    some = httpx.post(url, json={**body, "include": ["message.output_text.logprobs"]}).json()
    entries = some["output"][-1]["content"][0]["logprobs"]
    assert none == [] and len(entries) == 3 and all(e["top_logprobs"] == [] for e in entries)
