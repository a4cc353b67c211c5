"""The request view restores sealed reasoning in the history: each family's places, found and checked.

The opener here is a plain one (a blob is ``sealed:<place>:<json>``) so that these tests pin the
adapters' side alone: where they look, which place they ask for, what shape they accept, what
they put back. The reasoning policy's tests run the same paths with real AES-GCM blobs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gateway.protocols import OPERATIONS
from gateway.protocols.gemini_response import seal_signature
from gateway.protocols.request_view import RequestView
from gateway.protocols.sealed import MalformedSealError, SealPlace

OPS = {op.name: op for op in OPERATIONS.values()}


def view(operation: str, body: dict[str, Any]) -> RequestView:
    return OPS[operation].adapter.request_view(OPS[operation].name, body)


def blob(place: SealPlace, payload: Any) -> str:
    return f"sealed:{place}:{json.dumps(payload)}"


class Opener:
    """Opens ``sealed:<place>:<json>``; records what it was asked, refuses a blob of another place."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.texts: list[str] = []

    def is_sealed(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith("sealed:")

    def open(self, place: SealPlace, sealed: str, param: str) -> Any:
        self.asked.append((place, param))
        _, made_for, payload = sealed.split(":", 2)
        if made_for != place:
            raise LookupError(f"{param}: made for {made_for}")
        return json.loads(payload)

    def open_text(self, text: str, param: str) -> str:
        self.texts.append(param)
        return text.replace("<think>SEALED</think>", "<think>plan</think>")


def test_chat_fields_and_inline_spans_come_back() -> None:
    fields = {
        "fields": {"reasoning_content": "plan A"},
        "details": [{"type": "reasoning.text", "text": "plan A"}],
    }
    body = {
        "messages": [
            {"role": "user", "content": "q", "sealed_reasoning": blob("fields", fields)},
            {"role": "assistant", "content": "ok", "sealed_reasoning": blob("fields", fields)},
            {"role": "assistant", "content": [{"type": "text", "text": "<think>SEALED</think>ok"}]},
            {"role": "assistant", "content": "<think>SEALED</think>ok", "sealed_reasoning": "not a blob"},
        ]
    }
    opener = Opener()
    assert view("chat.completions", body).restore_sealed_reasoning(opener) == 0
    assert opener.asked == [("fields", "messages[1].sealed_reasoning")]
    assert opener.texts == ["messages[1].content", "messages[2].content[0].text", "messages[3].content"]
    assert body["messages"][0]["sealed_reasoning"] == blob("fields", fields)  # a user's turn is left alone
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "ok",
        "reasoning_content": "plan A",
        "reasoning_details": [{"type": "reasoning.text", "text": "plan A"}],
    }
    assert body["messages"][2]["content"][0]["text"] == "<think>plan</think>ok"
    # The gateway's own field never goes upstream, whatever it holds.
    assert body["messages"][3] == {"role": "assistant", "content": "<think>plan</think>ok"}


def test_chat_blob_in_a_reasoning_field_of_the_wrong_shape_is_refused() -> None:
    body = {
        "messages": [{"role": "assistant", "content": "ok", "reasoning": blob("fields", {"fields": "x"})}]
    }
    with pytest.raises(MalformedSealError) as info:
        view("chat.completions", body).restore_sealed_reasoning(Opener())
    assert info.value.param == "messages[0].reasoning"


def test_responses_item_comes_back_and_a_blob_of_another_place_is_asked_as_an_item() -> None:
    original = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA-upstream"}
    body = {
        "input": [
            {"role": "user", "content": "q"},
            {"type": "reasoning", "summary": [], "encrypted_content": blob("item", original)},
        ]
    }
    assert view("responses", body).restore_sealed_reasoning(Opener()) == 0
    assert body["input"][1] == original
    stolen = {"input": [{"type": "reasoning", "summary": [], "encrypted_content": blob("block", original)}]}
    with pytest.raises(LookupError, match=r"input\[0\].encrypted_content: made for block"):
        view("responses", stolen).restore_sealed_reasoning(Opener())
    wrong = {"input": [{"type": "reasoning", "encrypted_content": blob("item", {"type": "message"})}]}
    with pytest.raises(MalformedSealError):
        view("responses", wrong).restore_sealed_reasoning(Opener())


def test_anthropic_blocks_come_back_and_unverifiable_placeholders_go() -> None:
    thinking = {"type": "thinking", "thinking": "plan D", "signature": "upstream-sig"}
    redacted = {"type": "redacted_thinking", "data": "upstream-data"}
    content = [
        {"type": "thinking", "thinking": "", "signature": blob("block", thinking)},
        {"type": "redacted_thinking", "data": blob("block", redacted)},
        {"type": "thinking", "thinking": "[withheld]", "signature": ""},
        {"type": "text", "text": "ok"},
    ]
    body = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": content}]}
    opener = Opener()
    assert view("messages", body).restore_sealed_reasoning(opener) == 1
    assert opener.asked == [
        ("block", "messages[1].content[0].signature"),
        ("block", "messages[1].content[1].data"),
    ]
    assert body["messages"][1]["content"] == [thinking, redacted, {"type": "text", "text": "ok"}]
    wrong = [{"type": "thinking", "thinking": "", "signature": blob("block", {"type": "text", "text": "x"})}]
    with pytest.raises(MalformedSealError) as info:
        view("messages", {"messages": [{"role": "assistant", "content": wrong}]}).restore_sealed_reasoning(
            opener
        )
    assert info.value.param == "messages[0].content[0].signature"


@pytest.mark.parametrize("operation", ["generateContent", "streamGenerateContent"])
def test_gemini_thoughts_and_signatures_come_back_and_google_signatures_stay(operation: str) -> None:
    thought = {"text": "plan G", "thought": True, "thoughtSignature": "Z29vZ2xlLXRob3VnaHQ="}
    call = {
        "functionCall": {"name": "search", "args": {}},
        "thoughtSignature": seal_signature(blob("block", "R3NpZw==")),
    }
    model = [
        {"text": "", "thought": True, "thoughtSignature": seal_signature(blob("block", thought))},
        call,
        {"text": "ok", "thoughtSignature": "Z29vZ2xlLW93bg=="},  # Google's own: forwarded as sent
        {"text": "[withheld]", "thought": True},  # a redact placeholder: Gemini takes thoughts in history
        {"text": "x", "thought_signature": seal_signature(blob("block", "c25ha2U="))},
    ]
    user = [{"text": "q", "thoughtSignature": seal_signature(blob("block", "dXNlcg=="))}]
    body = {"contents": [{"role": "user", "parts": user}, {"role": "model", "parts": model}]}
    before_user = copy.deepcopy(user)
    opener = Opener()
    assert view(operation, body).restore_sealed_reasoning(opener) == 0
    assert opener.asked == [
        ("block", "contents[1].parts[0].thoughtSignature"),
        ("block", "contents[1].parts[1].thoughtSignature"),
        ("block", "contents[1].parts[4].thought_signature"),
    ]
    assert body["contents"][0]["parts"] == before_user  # a user's turn is left alone
    assert body["contents"][1]["parts"] == [
        thought,
        {"functionCall": {"name": "search", "args": {}}, "thoughtSignature": "R3NpZw=="},
        {"text": "ok", "thoughtSignature": "Z29vZ2xlLW93bg=="},
        {"text": "[withheld]", "thought": True},
        {"text": "x", "thought_signature": "c25ha2U="},
    ]


@pytest.mark.parametrize(
    "part",
    [
        # a thought's place holding a signature, a signature's place holding a thought, an Anthropic block
        {"text": "", "thought": True, "thoughtSignature": seal_signature(blob("block", "R3NpZw=="))},
        {"text": "ok", "thoughtSignature": seal_signature(blob("block", {"text": "t", "thought": True}))},
        {
            "text": "",
            "thought": True,
            "thoughtSignature": seal_signature(blob("block", {"type": "thinking"})),
        },
    ],
)
def test_gemini_blob_of_the_wrong_shape_is_refused(part: dict[str, Any]) -> None:
    body = {"contents": [{"role": "model", "parts": [{"text": "a"}, part]}]}
    with pytest.raises(MalformedSealError) as info:
        view("generateContent", body).restore_sealed_reasoning(Opener())
    assert info.value.param == "contents[0].parts[1].thoughtSignature"


def test_gemini_blob_sent_back_in_the_url_safe_alphabet_opens() -> None:
    thought = {"text": "plan ?>?>", "thought": True}
    wrapped = seal_signature(blob("block", thought))
    url_safe = wrapped.replace("+", "-").replace("/", "_")
    assert url_safe != wrapped  # the payload was chosen so that the two alphabets differ
    body = {
        "contents": [
            {"role": "model", "parts": [{"text": "", "thought": True, "thoughtSignature": url_safe}]}
        ]
    }
    view("generateContent", body).restore_sealed_reasoning(Opener())
    assert body["contents"][0]["parts"] == [thought]


def test_gemini_blob_of_another_place_or_forged_is_refused() -> None:
    stolen = {"contents": [{"role": "model", "parts": [{"text": "ok", "thoughtSignature": seal_signature(
        blob("item", "R3NpZw=="))}]}]}  # fmt: skip
    with pytest.raises(LookupError, match=r"contents\[0\].parts\[0\].thoughtSignature: made for item"):
        view("generateContent", stolen).restore_sealed_reasoning(Opener())
    # Our mark around something that is no blob at all: still opened (and refused by the opener), never
    # forwarded as if it were Google's.
    forged = {
        "contents": [{"role": "model", "parts": [{"text": "ok", "thoughtSignature": seal_signature("x")}]}]
    }
    with pytest.raises(ValueError):
        view("generateContent", forged).restore_sealed_reasoning(Opener())


def test_completions_carry_no_history() -> None:
    body = {"prompt": blob("fields", {"fields": {}, "details": []})}
    before = copy.deepcopy(body)
    assert view("completions", body).restore_sealed_reasoning(Opener()) == 0
    assert body == before
