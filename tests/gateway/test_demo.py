"""`distillguard demo`: the one command a new user runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import anthropic
import httpx
import openai

from tests.support import ROOT, free_port

BLOB = re.compile(r"dgs1\.[A-Za-z0-9_-]+\.[a-z]\.")
THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)


def assert_ui_shows_no_blob(message: dict[str, object]) -> None:
    """What Open WebUI, LibreChat or Chatbox render: content, <think> spans in it, reasoning_content."""
    rendered = [str(message.get(name) or "") for name in ("content", "reasoning_content", "reasoning")]
    rendered += THINK.findall(str(message.get("content") or ""))
    assert not any(BLOB.search(text) for text in rendered), rendered


def test_demo_serves_both_apis_with_the_default_policy_and_stops_on_ctrl_c(tmp_path: object) -> None:
    port, operator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--port",
            str(port),
            "--operator-port",
            str(operator_port),
            "--key",
            "dg-demo-test-key",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the demo did not come up")
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="dg-demo-test-key", max_retries=0
        )
        reply = client.chat.completions.create(
            model="mock-reasoner", messages=[{"role": "user", "content": "Explain caching."}]
        )
        message = reply.choices[0].message.model_dump()
        assert message["content"]
        # The default seals reasoning where no chat UI renders it (reasoning_content and <think> are
        # shown as the model's thinking: a blob there is gibberish on the end user's screen).
        assert message["sealed_reasoning"].startswith("dgs1."), "the default policy seals reasoning"
        assert_ui_shows_no_blob(message)
        streamed = client.chat.completions.create(
            model="mock-reasoner", messages=[{"role": "user", "content": "Explain caching."}], stream=True
        )
        deltas = [c.choices[0].delta.model_dump() for c in streamed if c.choices]
        for delta in deltas:
            assert_ui_shows_no_blob(delta)
        assert any(str(d.get("sealed_reasoning") or "").startswith("dgs1.") for d in deltas)
        blob = message["sealed_reasoning"]
        again = client.chat.completions.create(
            model="mock-reasoner",
            messages=[
                {"role": "user", "content": "Explain caching."},
                {"role": "assistant", "content": message["content"], "sealed_reasoning": blob},
                {"role": "user", "content": "And eviction?"},
            ],
        )
        assert again.choices[0].message.content
        claude = anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{port}", api_key="dg-demo-test-key", max_retries=0
        )
        answer = claude.messages.create(
            model="claude-mock", max_tokens=2048, messages=[{"role": "user", "content": "Explain caching."}]
        )
        assert answer.content[-1].type == "text"
        assert (
            "x-ratelimit-limit-requests"
            in httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"authorization": "Bearer dg-demo-test-key"},
                json={"model": "mock-small", "messages": [{"role": "user", "content": "x"}]},
            ).headers
        )
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        assert "distillguard_requests_total" in httpx.get(f"http://127.0.0.1:{operator_port}/metrics").text
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "dg-demo-test-key" in stderr and "curl" in stderr and "OpenAI(" in stderr
    assert f"http://127.0.0.1:{operator_port}/metrics" in stderr
