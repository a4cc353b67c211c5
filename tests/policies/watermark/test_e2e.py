"""End to end through the gateway with the official SDKs, the admin API and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from policies.watermark.cli import register  # noqa: F401  (the entry point the CLI loads)
from tests.support import GatewayHandle, MockHandle, base_config

MASTER = "e2e-master-key-0123456789abcdef"
PROMPT = "Explain how caches work, with an example."


@pytest.fixture
def watermarked(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, monkeypatch: pytest.MonkeyPatch
) -> GatewayHandle:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", MASTER)
    monkeypatch.setenv("DG_TEST_ADMIN", "admin-token")
    config = base_config(mock_upstream.url)
    config["admin"] = {"token_env": "DG_TEST_ADMIN"}
    config["tiers"]["free"]["policies"] = [{"name": "watermark", "config": {"canary": {"enabled": True}}}]
    return start_gateway(config)


def _openai(gw: GatewayHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key("free"), max_retries=0)


def test_sdk_stream_equals_whole_and_is_marked(watermarked: GatewayHandle, gateway: GatewayHandle) -> None:
    messages: Any = [{"role": "user", "content": PROMPT}]
    client = _openai(watermarked)
    whole = client.chat.completions.create(
        model="mock-small", messages=messages, extra_headers={"x-mock-reasoning": "none"}
    )
    stream = client.chat.completions.create(
        model="mock-small", messages=messages, stream=True, extra_headers={"x-mock-chunk-tokens": "3"}
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == whole.choices[0].message.content
    plain = _openai(gateway).chat.completions.create(model="mock-small", messages=messages)
    assert len(plain.choices[0].message.content or "") > 0

    responses = client.responses.create(model="mock-small", input=PROMPT)
    events = list(client.responses.create(model="mock-small", input=PROMPT, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == responses.output_text == events[-1].response.output_text  # type: ignore[union-attr]

    claude = anthropic.Anthropic(base_url=watermarked.url, api_key=watermarked.key("free"), max_retries=0)
    reply = claude.messages.create(model="claude-mock", max_tokens=512, messages=messages)
    with claude.messages.stream(model="claude-mock", max_tokens=512, messages=messages) as s:
        text = "".join(s.text_stream)
    assert text == reply.content[-1].text  # type: ignore[union-attr]


def test_admin_detect_and_evidence(watermarked: GatewayHandle) -> None:
    client = _openai(watermarked)
    texts = []
    for i in range(25):
        reply = client.chat.completions.create(
            model="mock-small", messages=[{"role": "user", "content": f"{PROMPT} ({i})"}]
        )
        texts.append(reply.choices[0].message.content or "")
    headers = {"authorization": "Bearer admin-token"}
    report = httpx.post(
        f"{watermarked.ops_url}/admin/watermark/detect",
        json={"texts": texts, "accounts": ["free", "pro", "trusted", "someone-else"], "per_document": False},
        headers=headers,
    ).json()
    best = report["corpus"]["top"][0]
    assert best["account"] == "free" and best["hits"] == best["scored"] > 0
    bad = httpx.post(f"{watermarked.ops_url}/admin/watermark/detect", json={"texts": []}, headers=headers)
    assert bad.status_code == 400 and "texts" in bad.json()["error"]["message"]
    evidence = httpx.get(f"{watermarked.ops_url}/admin/watermark/evidence/free", headers=headers).json()
    assert evidence["evidence"]["responses"] >= 25 and evidence["evidence"]["key_ids"] == ["default"]
    assert httpx.get(f"{watermarked.ops_url}/admin/watermark/evidence/free").status_code == 401


def test_cli_detect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main
    from policies.watermark.keys import MasterKey
    from policies.watermark.marker import mark_text
    from tests.policies.watermark.texts import PROSE

    monkeypatch.setenv("WM_CLI_KEY", MASTER)
    key = MasterKey("k1", MASTER.encode()).account_key("bob")
    corpus = tmp_path / "corpus.jsonl"
    docs = [
        {"messages": [{"role": "assistant", "content": mark_text(" ".join(PROSE[i:] + PROSE[:i]), key)}]}
        for i in range(9)
    ]
    import orjson

    corpus.write_bytes(b"\n".join(orjson.dumps(d) for d in docs))
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("alice\nbob\ncarol\n")
    code = main(
        ["watermark", "detect", "--keys", "k1=WM_CLI_KEY", "--accounts-file", str(accounts), str(corpus)]
    )
    out = capsys.readouterr().out
    assert code == 0 and "ATTRIBUTED to account bob (key k1)" in out
    code = main(
        ["watermark", "detect", "--keys", "k1=WM_CLI_KEY", "--account", "alice", "--json", str(corpus)]
    )
    assert code == 1
    assert '"attributed": []' in capsys.readouterr().out
    code = main(["watermark", "detect", "--keys", "k1=MISSING_ENV_X", "--account", "a", str(corpus)])
    assert code == 2 and "MISSING_ENV_X is not set" in capsys.readouterr().err
