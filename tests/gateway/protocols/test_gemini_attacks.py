"""Attacks on the Gemini routes over real sockets: other spellings of a route, the query key, parameters.

The oracle: the gateway refuses (an error in Gemini's shape, and the upstream receives nothing), or
serves the canonical route with what it checked (the upstream receives the canonical path, the
declared query without the client's key, one spelling of each parameter).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.loader import load_config
from gateway.errors import ConfigError, InvalidRequestError
from gateway.routes import canonical_path
from tests.gateway.test_route_attacks import spellings
from tests.raw_http import RawResponse, raw_request
from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config

PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Explain caching."}]}]}
CANONICAL = "/v1beta/models/gemini-mock:generateContent"


@pytest.fixture(scope="module")
def gw(mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    handle = GatewayHandle(base_config(mock_upstream.url), Path(tmp_path_factory.mktemp("gemini"))).start()
    yield handle
    handle.stop()


def send(
    gw: GatewayHandle,
    target: str,
    body: Any = PROMPT,
    *,
    key: str | None = TEST_KEYS["free"],
    method: str = "POST",
) -> RawResponse:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-goog-api-key"] = key
    return raw_request(
        gw.port, method, target, headers=headers, body=orjson.dumps(body) if body is not None else b""
    )


def refused(response: RawResponse, status: int) -> dict[str, Any]:
    """The Gemini error the client got (and nothing else)."""
    assert response.status == status, (response.status, response.body)
    payload = response.json()
    assert isinstance(payload, dict) and set(payload) == {"error"}
    error = payload["error"]
    assert error["code"] == status and isinstance(error["status"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        (CANONICAL, CANONICAL),
        ("/v1beta/models/gemini-mock%3AgenerateContent", CANONICAL),  # an escaped ':' is an ordinary ':'
        ("/v1beta//models/gemini-mock:generateContent/", CANONICAL),
        ("/v1beta/models/gemini-mock:generatecontent", None),  # verbs are case-sensitive
        ("/v1beta/models/gemini-mock:streamGenerateContent:generateContent", None),  # which ':' is the verb?
        ("/v1beta/models/:generateContent", None),
        ("/v1beta/models/gemini-mock:countTokens", None),  # a verb not declared
        ("/v1beta/tunedModels/mine:generateContent", None),
        ("/v1beta/models/gemini-mock%2F..%2Fx:generateContent", None),
        ("/v1beta/models/gemini-mock/..:generateContent", None),
    ],
)
def test_route_spellings_are_refused_or_served_canonically(
    gw: GatewayHandle, mock_upstream: MockHandle, target: str, forwarded: str | None
) -> None:
    mock_upstream.reset()
    response = send(gw, target)
    received = [request["path"] for request in mock_upstream.requests()]
    if forwarded is None:
        assert response.status in (400, 404, 405), (target, response.status)
        assert received == []
        assert "error" in response.json()  # type: ignore[operator]
    else:
        assert response.status == 200, response.body
        assert received == [forwarded]


@pytest.mark.parametrize("query", ["", "alt=json", "alt=sse&alt=json", "alt=sse&alt=sse", "alt=sse&foo=1"])
def test_streaming_needs_exactly_alt_sse(gw: GatewayHandle, mock_upstream: MockHandle, query: str) -> None:
    mock_upstream.reset()
    target = "/v1beta/models/gemini-mock:streamGenerateContent" + (f"?{query}" if query else "")
    error = refused(send(gw, target), 400)
    assert "alt" in error["message"] or "foo" in error["message"]
    assert mock_upstream.requests() == []


def test_generate_content_takes_no_alt(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    mock_upstream.reset()
    refused(send(gw, CANONICAL + "?alt=sse"), 400)
    assert mock_upstream.requests() == []


def test_query_key_is_taken_out_of_the_query(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    mock_upstream.reset()
    target = f"/v1beta/models/gemini-mock:streamGenerateContent?key={TEST_KEYS['free']}&alt=sse"
    response = send(gw, target, key=None)
    assert response.status == 200
    (seen,) = mock_upstream.requests()
    assert (
        seen["query"] == "alt=sse" and seen["raw_path"] == "/v1beta/models/gemini-mock:streamGenerateContent"
    )
    assert TEST_KEYS["free"] not in orjson.dumps(seen).decode()


@pytest.mark.parametrize(
    ("query", "status"),
    [
        (f"key={TEST_KEYS['free']}&key={TEST_KEYS['pro']}", 400),  # which one is the caller?
        ("key=not-a-key", 401),
        ("key=", 401),
    ],
)
def test_bad_query_keys_are_refused(
    gw: GatewayHandle, mock_upstream: MockHandle, query: str, status: int
) -> None:
    mock_upstream.reset()
    refused(send(gw, f"{CANONICAL}?{query}", key=None), status)
    assert mock_upstream.requests() == []


def test_client_key_header_is_never_forwarded(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    mock_upstream.reset()
    assert send(gw, CANONICAL).status == 200
    (seen,) = mock_upstream.requests()
    assert TEST_KEYS["free"] not in orjson.dumps(seen).decode()


def test_an_operator_cannot_forward_the_client_key_header(tmp_path: Path, mock_upstream: MockHandle) -> None:
    config = base_config(mock_upstream.url)
    config["upstreams"][2]["forward_headers"] = ["x-goog-*"]
    path = tmp_path / "policy.yaml"
    path.write_text(orjson.dumps(config).decode())
    with pytest.raises(ConfigError, match="x-goog-api-key"):
        load_config(path)


def _file(uri: str, *, snake: bool = False) -> dict[str, Any]:
    """A prompt with a file part (``file_data``/``file_uri``: the other spelling Google reads)."""
    part = (
        {"file_data": {"file_uri": uri}}
        if snake
        else {"fileData": {"fileUri": uri, "mimeType": "text/plain"}}
    )
    return {"contents": [{"role": "user", "parts": [{"text": "Summarise this."}, part]}]}


def test_public_file_urls_are_accepted(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    mock_upstream.reset()
    assert send(gw, CANONICAL, _file("https://example.com/report.pdf")).status == 200
    assert len(mock_upstream.requests()) == 1


def _with_config(**config: Any) -> dict[str, Any]:
    return {**PROMPT, "generationConfig": config}


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({**PROMPT, "cachedContent": "cachedContents/abc"}, "cachedContent", "quota and the detector"),
        ({**PROMPT, "model": "models/gemini-mock-flash"}, "model", "named in the path"),
        ({**PROMPT, "serviceTier": "priority"}, "serviceTier", "operator"),
        ({**PROMPT, "store": True}, "store", "routes no policy covers"),
        ({**PROMPT, "frobnicate": 1}, "frobnicate", "Unrecognized"),
        (_with_config(logprobsTopK=5), "generationConfig.logprobsTopK", "Unrecognized"),
        (
            _with_config(thinkingConfig={"thinkingBudget": 10, "budget": 99}),
            "generationConfig.thinkingConfig.budget",
            "Unrecognized",
        ),
        (_with_config(candidateCount="8"), "generationConfig.candidateCount", "expected an integer"),
        (_with_config(candidateCount=8.0), "generationConfig.candidateCount", "expected an integer"),
        (_with_config(responseLogprobs="true"), "generationConfig.responseLogprobs", "expected a boolean"),
        (_with_config(candidateCount=1, candidate_count=8), "generationConfig.candidateCount", "given twice"),
        (
            {**PROMPT, "generation_config": {"candidateCount": 2}, "generationConfig": {}},
            "generationConfig",
            "given twice",
        ),
        (
            _with_config(responseModalities=["AUDIO"]),
            "generationConfig.responseModalities",
            "no policy reads",
        ),
        (
            _with_config(thinkingConfig={"thinkingBudget": -2}),
            "generationConfig.thinkingConfig.thinkingBudget",
            "minimum",
        ),
        ({"contents": "hello"}, "contents", "expected an array"),
        (_file("files/abc123"), "contents[0].parts[1].fileData.fileUri", "stored upstream"),
        (
            _file("https://generativelanguage.googleapis.com/v1beta/files/abc123"),
            "contents[0].parts[1].fileData.fileUri",
            "stored upstream",
        ),
        (_file("files/abc123", snake=True), "contents[0].parts[1].fileData.fileUri", "stored upstream"),
        (
            {**PROMPT, "systemInstruction": {"parts": [{"fileData": {"fileUri": "files/x"}}]}},
            "systemInstruction.parts[0].fileData.fileUri",
            "stored upstream",
        ),
    ],
)
def test_undeclared_or_bypassing_parameters_are_refused(
    gw: GatewayHandle, mock_upstream: MockHandle, body: dict[str, Any], param: str, message: str
) -> None:
    mock_upstream.reset()
    error = refused(send(gw, CANONICAL, body), 400)
    assert message in error["message"], error["message"]
    violations = [d for d in error.get("details", ()) if d["@type"].endswith("BadRequest")]
    assert violations and violations[0]["fieldViolations"][0]["field"] == param
    assert mock_upstream.requests() == []


def test_snake_case_is_forwarded_in_one_spelling(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    """What the policies read is what the upstream gets: the SDK's snake_case becomes lowerCamelCase."""
    mock_upstream.reset()
    body = {
        **PROMPT,
        "generation_config": {"max_output_tokens": 5, "thinking_config": {"thinking_budget": 0}},
    }
    assert send(gw, CANONICAL, body).status == 200
    (seen,) = mock_upstream.requests()
    assert seen["body"]["generationConfig"] == {"maxOutputTokens": 5, "thinkingConfig": {"thinkingBudget": 0}}
    assert "generation_config" not in seen["body"]


def test_unknown_model_is_not_found_in_gemini_shape(mock_upstream: MockHandle, tmp_path: Path) -> None:
    config = base_config(mock_upstream.url)
    config["upstreams"][2]["models"] = ["gemini-mock*"]
    handle = GatewayHandle(config, tmp_path).start()
    try:
        error = refused(send(handle, "/v1beta/models/someone-elses-model:generateContent"), 404)
        assert error["status"] == "NOT_FOUND"
    finally:
        handle.stop()


_GENERATE = re.compile(r"/v1(beta)?/models/[^/:]+:generateContent")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_spelling_is_refused_or_served_as_the_canonical_route(
    gw: GatewayHandle, mock_upstream: MockHandle, data: st.DataObject
) -> None:
    canonical = data.draw(st.sampled_from([CANONICAL, "/v1/models/gemini-mock:generateContent"]))
    target = data.draw(spellings(canonical))
    mock_upstream.reset()
    response = send(gw, target.decode("latin-1"))
    received = [request["raw_path"] for request in mock_upstream.requests()]
    try:
        expected: str | None = canonical_path(target)
    except InvalidRequestError:
        expected = None
    if expected != canonical:
        # Another path: a case change in the verb or the prefix, a dot segment... is refused with
        # nothing forwarded; a case change inside the model name is another model's route, served
        # as that route with the upstream receiving exactly the canonical path the policies saw.
        if expected is not None and response.status == 200:
            assert _GENERATE.fullmatch(expected), (target, expected)
            assert received == [expected], (target, received)
            return
        assert response.status in (400, 404, 405), (target, response.status)
        assert received == [] and b"Traceback" not in response.body
        return
    assert response.status == 200, (target, response.body)
    assert received == [canonical]


def test_a_case_change_in_the_model_name_is_another_models_route(
    gw: GatewayHandle, mock_upstream: MockHandle
) -> None:
    # Found by the spelling property above: the model segment is a parameter, so its spelling is the
    # client's choice of model and is forwarded as sent, while the verb's spelling is not.
    mock_upstream.reset()
    served = send(gw, "/v1beta/models/gemini-mocK:generateContent")
    assert served.status == 200
    assert [r["raw_path"] for r in mock_upstream.requests()] == ["/v1beta/models/gemini-mocK:generateContent"]
    mock_upstream.reset()
    refused = send(gw, "/v1beta/models/gemini-mock:GenerateContent")
    assert refused.status in (400, 404, 405) and mock_upstream.requests() == []
