"""What the detector extracts from a request: bounded text, turns, parameters, client and network."""

from __future__ import annotations

from policies.detector.request import client_key, extract_text, ip_prefix


def test_chat_last_user_turn_and_system() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ]
    }
    assert extract_text("chat.completions", body, 100) == ("second", "Be terse.", 2)


def test_messages_responses_and_completions() -> None:
    anthropic = {"system": [{"type": "text", "text": "sys"}], "messages": [{"role": "user", "content": "hi"}]}
    assert extract_text("messages", anthropic, 100) == ("hi", "sys", 1)
    responses = {"input": "question", "instructions": "rules", "previous_response_id": "resp_1"}
    assert extract_text("responses", responses, 100) == ("question", "rules", 2)
    assert extract_text("completions", {"prompt": "Once upon"}, 100) == ("Once upon", "", 1)


def test_text_is_bounded() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 10_000}]}
    user, _, _ = extract_text("chat.completions", body, 500)
    assert len(user) == 501  # 350 head + newline + 150 tail
    body = {"messages": [{"role": "user", "content": "a" * 5000 + "TAIL"}]}
    assert extract_text("chat.completions", body, 500)[0].endswith("aTAIL")


def test_client_key_ignores_volatile_headers_but_not_order() -> None:
    a = client_key({"user-agent": "sdk/1", "accept": "*/*", "x-request-id": "1", "content-length": "10"})
    b = client_key({"user-agent": "sdk/1", "accept": "*/*", "x-request-id": "2", "content-length": "99"})
    c = client_key({"accept": "*/*", "user-agent": "sdk/1"})
    assert a == b and a != c


def test_ip_prefixes() -> None:
    assert ip_prefix("203.0.113.77", 24, 48) == "203.0.113.0/24"
    assert ip_prefix("2001:db8:1:2::5", 24, 48) == "2001:db8:1::/48"
    assert ip_prefix("::ffff:198.51.100.9", 24, 48) == "198.51.100.0/24"
    assert ip_prefix("not-an-ip", 24, 48) == ""
