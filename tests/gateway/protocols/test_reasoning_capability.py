"""The adapters' reasoning capability, driven by a format-neutral treatment, and its round trip.

A policy hands an adapter a treatment (what to withhold, the placeholder, the seal) and the adapter
rewrites its own format; what an adapter seals on the way out, its request view finds and restores
on the way in. The treatment and opener here are plain (a blob is ``sealed:<place>:<json>``), so
the tests pin the adapters' side; the reasoning policy's tests run the same paths with its real
treatment and AES-GCM blobs. An operation whose adapter has no such capability is refused by the
policy (fail closed), never passed through.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from gateway.errors import PolicyFailureError
from gateway.protocols import OPERATIONS, Operation
from gateway.protocols.reasoning import InlineText, ReasoningSource, WithholdMode
from gateway.protocols.sealed import SealPlace
from tests.policy_harness import PolicyHarness

OPS = {op.name: op for op in OPERATIONS.values()}
TRACE = "step one, then step two"


class Treatment:
    """Seals as ``sealed:<place>:<json>``, parses no inline spans, records what it was told."""

    keep_provider_encrypted = True
    seal_delivery = "field"
    parses_inline = False

    def __init__(self, mode: WithholdMode) -> None:
        self.mode = mode
        self.sealed: list[SealPlace] = []
        self.spans: list[tuple[str, int]] = []

    def placeholder(self, chars: int) -> str:
        return f"[{chars} chars withheld]"

    def seal(self, place: SealPlace, payload: Any) -> str:
        self.sealed.append(place)
        return f"sealed:{place}:{json.dumps(payload)}"

    def inline(self, whole: str | None, after_reasoning: bool) -> InlineText:
        raise AssertionError("parses_inline is False: no text is parsed")

    def withheld(self, source: ReasoningSource, chars: int) -> None:
        self.spans.append((source, chars))

    def provider_kept(self) -> None:
        pass

    def upstream_tokens(self, tokens: int) -> None:
        pass


class Opener:
    def is_sealed(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith("sealed:")

    def open(self, place: SealPlace, blob: str, param: str) -> Any:
        _, made_for, payload = blob.split(":", 2)
        assert made_for == place, f"{param}: made for {made_for}, found as {place}"
        return json.loads(payload)

    def open_text(self, text: str, param: str) -> str:
        return text


def rewrite(operation: str, mode: WithholdMode, body: dict[str, Any]) -> Treatment:
    treatment = Treatment(mode)
    op = OPS[operation]
    rewriter = op.adapter.reasoning(op.name, treatment)
    assert rewriter is not None
    rewriter.rewrite_body(body)
    return treatment


# (operation, a response with reasoning, the next turn's request carrying that response back)
def chat_case() -> tuple[dict[str, Any], Any]:
    message = {"role": "assistant", "content": "ok", "reasoning_content": TRACE}
    body = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    def next_turn(out: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        request = {"messages": [{"role": "user", "content": "q"}, out["choices"][0]["message"]]}
        return request, lambda r: r["messages"][1]

    return body, next_turn


def responses_case() -> tuple[dict[str, Any], Any]:
    item = {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": TRACE}],
    }
    body = {"output": [item, {"type": "message", "role": "assistant", "content": []}]}

    def next_turn(out: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        return {"input": [{"role": "user", "content": "q"}, *out["output"]]}, lambda r: r["input"][1]

    return body, next_turn


def messages_case() -> tuple[dict[str, Any], Any]:
    block = {"type": "thinking", "thinking": TRACE, "signature": "upstream-sig"}
    body = {"content": [block, {"type": "text", "text": "ok"}]}

    def next_turn(out: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        request = {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": out["content"]}]
        }
        return request, lambda r: r["messages"][1]["content"][0]

    return body, next_turn


def gemini_case() -> tuple[dict[str, Any], Any]:
    thought = {"text": TRACE, "thought": True, "thoughtSignature": "Z29vZ2xlJ3Mgb3du"}
    body = {"candidates": [{"content": {"parts": [thought, {"text": "ok"}], "role": "model"}, "index": 0}]}

    def next_turn(out: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        model_turn = {"role": "model", "parts": out["candidates"][0]["content"]["parts"]}
        request = {"contents": [{"role": "user", "parts": [{"text": "q"}]}, model_turn]}
        return request, lambda r: r["contents"][1]["parts"][0]

    return body, next_turn


CASES = {
    "chat.completions": chat_case,
    "responses": responses_case,
    "messages": messages_case,
    "generateContent": gemini_case,
}
PLACES = {"chat.completions": "fields", "responses": "item", "messages": "block", "generateContent": "block"}


@pytest.mark.parametrize("operation", sorted(CASES))
def test_what_an_adapter_seals_its_request_view_restores(operation: str) -> None:
    body, next_turn = CASES[operation]()
    original = copy.deepcopy(body)
    treatment = rewrite(operation, "seal", body)
    assert treatment.sealed == [PLACES[operation]]
    assert _only_in_blobs(body)
    request, reasoning_of = next_turn(body)
    op = OPS[operation]
    op.adapter.request_view(op.name, request).restore_sealed_reasoning(Opener())
    restored = reasoning_of(request)
    if operation == "chat.completions":
        assert restored == {"role": "assistant", "content": "ok", "reasoning_content": TRACE}
    elif operation == "responses":
        assert restored == original["output"][0]
    elif operation == "generateContent":
        assert restored == original["candidates"][0]["content"]["parts"][0]
    else:
        assert restored == original["content"][0]


def _only_in_blobs(value: Any) -> bool:
    """Every string holding the trace is a blob (the trace is sealed, not shown)."""
    if isinstance(value, str):
        return TRACE not in value or value.startswith("sealed:")
    if isinstance(value, dict):
        return all(_only_in_blobs(item) for item in value.values())
    if isinstance(value, list):
        return all(_only_in_blobs(item) for item in value)
    return True


@pytest.mark.parametrize("operation", sorted(CASES))
@pytest.mark.parametrize("mode", ["drop", "redact", "summary"])
def test_every_family_withholds_the_trace_and_accounts_it(operation: str, mode: WithholdMode) -> None:
    body, _ = CASES[operation]()
    treatment = rewrite(operation, mode, body)
    assert TRACE not in json.dumps(body)
    assert [chars for _, chars in treatment.spans] == [len(TRACE)]
    shown = json.dumps(body)
    assert (f"[{len(TRACE)} chars withheld]" in shown) == (mode == "redact")


def test_an_operation_without_the_capability_fails_closed() -> None:
    """Reasoning the policy cannot see is never passed through: the enforcing pipeline fails."""
    h = PolicyHarness([("reasoning", {"mode": "drop"})])
    exchange = h.exchange("chat.completions", {"model": "m", "messages": []})
    # The Anthropic adapter serving an operation it has no reasoning rewriting for.
    exchange.operation = Operation("chat.completions", "/v1/chat/completions", "anthropic")
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "reasoning_content": TRACE}}]}
    with pytest.raises(PolicyFailureError):
        asyncio.run(h.pipeline.run_response(exchange, body))
    with pytest.raises(PolicyFailureError):
        h.pipeline.open_stream(exchange)
