"""The green-list mark on a real model: llama.cpp + SmolLM2-135M sample with the gateway's bias, and the
admin API's detector, re-tokenizing through the same server's ``/tokenize``, finds the provider-wide
key and names the account; answers from the model without the gateway are not attributed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.llamacpp.server import SMOLLM2_ENTRY, LlamaServer
from tests.support import GatewayHandle

PROMPTS = [
    "Explain in a few sentences why the sky is blue.",
    "Describe how a bicycle works.",
    "Give three tips for learning a new language.",
    "What are the benefits of regular exercise?",
]
SAMPLING = {"temperature": 0.8, "max_tokens": 160}
OTHERS = [f"someone-{i}" for i in range(50)]
# The measured layout of docs/watermark.md: the account's list nested in the provider's
LAYOUT = {"gamma": 0.75, "delta": 1.5, "account_gamma": 0.33, "account_delta": 3.0, "nested": True}


@pytest.fixture
def marked_gateway(
    llama_gateway: Callable[..., GatewayHandle],
    llama_plain_server: LlamaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> GatewayHandle:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", "llama-green-master-0123456789")
    monkeypatch.setenv("DG_TEST_ADMIN", "admin-token")
    model = {**SMOLLM2_ENTRY, "tokenizer_url": llama_plain_server.url}
    green = {"enabled": True, **LAYOUT, "models": [model]}
    watermark = {"name": "watermark", "config": {"green_list": green}}
    return llama_gateway(
        {"free": [watermark]}, server=llama_plain_server, admin={"token_env": "DG_TEST_ADMIN"}
    )


def detect(gw: GatewayHandle, texts: list[str]) -> dict[str, Any]:
    body = {"texts": texts, "accounts": ["free", *OTHERS], "scheme": "green_list", "model": "smollm2"}
    response = gw.admin("POST", "/watermark/detect", "admin-token", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_real_answers_carry_the_mark_and_name_the_account(
    marked_gateway: GatewayHandle, llama_plain_server: LlamaServer
) -> None:
    client = openai.OpenAI(base_url=f"{marked_gateway.url}/v1", api_key=marked_gateway.key(), max_retries=0)
    marked = [
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": p}], seed=i, **SAMPLING
        )
        .choices[0]
        .message.content
        or ""
        for i, p in enumerate(PROMPTS)
    ]
    unmarked = []
    for i, prompt in enumerate(PROMPTS):
        payload = {
            "model": "smollm2",
            "messages": [{"role": "user", "content": prompt}],
            "seed": i,
            **SAMPLING,
        }
        answer = httpx.post(f"{llama_plain_server.url}/v1/chat/completions", json=payload, timeout=180).json()
        unmarked.append(answer["choices"][0]["message"]["content"] or "")
    assert marked != unmarked  # same seeds: the bias changed what was sampled

    report = detect(marked_gateway, marked)
    found = report["corpus"]
    assert found["provider_detected"] and found["provider"][0]["p_value"] < 1e-6, found
    assert found["attributed"] == ["free@default"], found
    # each 160-token answer on its own: the provider key, and the account among 51
    for doc in report["documents"]:
        assert doc["provider_detected"] and doc["attributed"] == ["free@default"], doc
    clean = detect(marked_gateway, unmarked)["corpus"]
    assert clean["attributed"] == [] and not clean["provider_detected"], clean


def test_the_gguf_files_tokenizer_reads_text_as_the_server_does(llama_plain_server: LlamaServer) -> None:
    """``tokenizer_gguf`` detection sees the ids the model's own server gives (a different split
    would score other tokens): SmolLM2's GGUF, rebuilt in process, against llama.cpp's /tokenize."""
    from bench.watermark_eval.corpora import stdlib_docstrings
    from policies.watermark.model_tokenizers import LlamaServerTokenizer, gguf_tokenizer
    from tests.llamacpp.server import model_file

    in_process = gguf_tokenizer(model_file())
    server = LlamaServerTokenizer(llama_plain_server.url)
    texts = [
        *PROMPTS,
        "Numbers: 3.14159, 1,000,000 and 2026-12-05; isn't it? They'd've said 'no'.",
        "   leading and trailing   \n\n\n\ttabs\r\nand CRLF",
        "def f(x):\n    return x ** 2  # café, Привет, 你好, こんにちは 🎉",
        "The answer ends here.<|im_end|> and a control token written out",
        *stdlib_docstrings(120),
    ]
    differ = [t[:60] for t in texts if in_process.encode(t) != server.encode(t)]
    assert not differ, differ
