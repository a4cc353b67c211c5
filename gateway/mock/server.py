"""The mock model server: OpenAI and Anthropic APIs over real HTTP, for the demo, tests and benchmarks.

Test hooks travel in request headers; the gateway forwards them to an upstream that declares them
(``forward_headers: ["x-mock-*"]``, :data:`HOOK_HEADERS`):

* ``x-mock-reasoning``: chat reasoning format (see openai_shapes); ``none`` turns reasoning off.
* ``x-mock-chunk-tokens``: tokens per streamed chunk (default 1).
* ``x-mock-delay-ms``: pause between streamed chunks; ``x-mock-first-byte-ms``: before the headers.
* ``x-mock-fault``: ``status:<code>`` (JSON error), ``html:<code>`` (non-JSON error), ``garbage``
  (200 with a body that is not JSON), ``drop-midstream`` (connection dropped half way),
  ``garbage-midstream`` (an invalid event half way), ``hang`` (no answer), ``hang-midstream``.
* ``x-mock-redacted``: add a ``redacted_thinking`` block (Anthropic).
* ``MockUpstream(coerce=True)``: loosely typed parameters are read as vLLM reads them
  (``"n": "8"`` is 8, ``"stream": "true"`` is true; see coerce.py).
* Gemini (``/v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``): see gemini.py.
* ``x-mock-logprobs-mode``: ``raw`` (default; returned logprobs ignore ``logit_bias``, as OpenAI
  since 2024 and vLLM V1) or ``processed`` (they include it, as OpenAI before 2024); see toymodel.

Logprob parameters are validated as OpenAI does (``top_logprobs`` 0-20 and only with
``logprobs: true``); vLLM's ``prompt_logprobs`` extension is answered when not streaming.

``GET /_mock/requests`` returns the requests received (newest last), ``GET /_mock/stats``
counts streams started, completed and cancelled by the client, ``POST /_mock/reset`` clears both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from typing import Any

import orjson

from gateway.asgi import Receive, Scope, Send, header_map, read_body, send_bytes
from gateway.mock import anthropic_shapes, gemini, openai_shapes
from gateway.mock.coerce import coerce_body
from gateway.mock.generation import generate_memoised
from gateway.mock.replies import (
    ANTHROPIC_ACCOUNT_HEADERS,
    OPENAI_ACCOUNT_HEADERS,
    PROVIDER_ERROR_MESSAGES,
    error_reply,
    json_reply,
)
from gateway.mock.requests import embeddings, json_or_none, logprob_params_problem
from gateway.mock.toymodel import LogprobsMode

MODELS = ["mock-small", "mock-reasoner", "claude-mock"]
Event = tuple[str | None, dict[str, Any] | str]

# The upstream `forward_headers` entry that lets the test hooks through a gateway.
HOOK_HEADERS = "x-mock-*"


class MockUpstream:
    """``coerce``: read loosely typed parameters as vLLM does (see coerce.py)."""

    def __init__(self, history: int = 200, *, coerce: bool = False) -> None:
        self.requests: deque[dict[str, Any]] = deque(maxlen=history)
        self.coerce = coerce
        self.stats = {"started": 0, "completed": 0, "cancelled": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        headers = header_map(scope)
        body_bytes = await read_body(receive, 64 * 1024 * 1024, None)
        if path.startswith("/_mock/"):
            await self._control(path, scope["method"], send)
            return
        self.requests.append(
            {
                "method": scope["method"],
                "path": path,
                "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
                "query": scope.get("query_string", b"").decode("latin-1"),
                "headers": headers,
                "body": json_or_none(body_bytes),
            }
        )
        if scope["method"] == "GET" and path in ("/v1/models", "/models"):
            await json_reply(
                send,
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "distillguard-mock"}
                        for m in MODELS
                    ],
                },
            )
            return
        if scope["method"] == "GET" and path.startswith("/v1/models/"):
            model = path.removeprefix("/v1/models/")
            if model in MODELS:
                entry = {"id": model, "object": "model", "created": 0, "owned_by": "distillguard-mock"}
                await json_reply(send, 200, entry)
            else:
                await error_reply(send, 404, f"The model '{model}' does not exist", False)
            return
        if scope["method"] == "GET" and path.startswith("/v1beta/models"):
            await gemini.models(send, path)
            return
        if scope["method"] != "POST":
            await error_reply(send, 405, f"{scope['method']} {path} is not served by the mock", False)
            return
        try:
            body = orjson.loads(body_bytes) if body_bytes else {}
        except orjson.JSONDecodeError:
            body = None
        anthropic = path == "/v1/messages"
        google = gemini.is_gemini_path(path)
        if not isinstance(body, dict):
            await error_reply(send, 400, "invalid JSON body", anthropic, gemini=google)
            return
        if self.coerce:
            body = coerce_body(path, body)
        fault = headers.get("x-mock-fault", "")
        if fault.startswith("status:"):
            status = int(fault[7:])
            text = PROVIDER_ERROR_MESSAGES.get(status, f"mock upstream error {status}")
            await error_reply(
                send,
                status,
                text,
                anthropic,
                [(b"retry-after", b"7")] if status == 429 else None,
                gemini=google,
            )
            return
        if fault.startswith("html:"):
            await send_bytes(send, int(fault[5:]), b"<html>Bad Gateway</html>", [], b"text/html")
            return
        first_byte = float(headers.get("x-mock-first-byte-ms", "0")) / 1000
        if fault == "hang":
            first_byte = 3600.0
        if first_byte and await _wait_or_disconnect(receive, first_byte):
            self.stats["cancelled"] += 1
            return
        if fault == "garbage":
            await send_bytes(send, 200, b"this is not json {", [], b"application/json")
            return
        if path == "/v1/embeddings":
            await json_reply(send, 200, embeddings(body))
        elif path == "/v1/messages/count_tokens":
            await json_reply(send, 200, {"input_tokens": len(orjson.dumps(body.get("messages"))) // 4})
        elif path == "/v1/messages":
            await self._messages(body, headers, send, receive, fault)
        elif google:
            query = scope.get("query_string", b"").decode("latin-1")

            async def stream_to(events: Iterator[Event]) -> None:
                await self._stream(events, headers, send, receive, fault, [])

            await gemini.generate(path, query, body, headers, send, stream_to)
        elif path in ("/v1/chat/completions", "/v1/completions", "/v1/responses"):
            await self._openai(path, body, headers, send, receive, fault)
        else:
            await error_reply(send, 404, f"unknown path {path}", False)

    async def _control(self, path: str, method: str, send: Send) -> None:
        if path == "/_mock/requests":
            await json_reply(send, 200, list(self.requests))
        elif path == "/_mock/stats":
            await json_reply(send, 200, self.stats)
        elif path == "/_mock/reset" and method == "POST":
            self.requests.clear()
            self.stats = dict.fromkeys(self.stats, 0)
            await json_reply(send, 200, {"ok": True})
        else:
            await json_reply(send, 404, {"error": "unknown control path"})

    async def _openai(
        self,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
        send: Send,
        receive: Receive,
        fault: str,
    ) -> None:
        model = str(body.get("model") or "mock-small")
        fmt = headers.get("x-mock-reasoning", "reasoning_content")
        stream = body.get("stream") is True
        per_chunk = max(1, int(headers.get("x-mock-chunk-tokens", "1")))
        mode: LogprobsMode = "processed" if headers.get("x-mock-logprobs-mode") == "processed" else "raw"
        problem = logprob_params_problem(path, body)
        if problem:
            await error_reply(send, 400, problem, False)
            return
        prompt_k = body.get("prompt_logprobs")
        prompt_k = prompt_k if isinstance(prompt_k, int) and not isinstance(prompt_k, bool) else None
        if path == "/v1/chat/completions":
            top = body.get("top_logprobs") if body.get("logprobs") else None
            top_k = int(top) if isinstance(top, int) else (0 if body.get("logprobs") else None)
            max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
            n_asked = body.get("n")
            n = n_asked if isinstance(n_asked, int) else 1
            reasoning = fmt != "none"
            gens = [
                generate_memoised(
                    body,
                    max_tokens=max_tokens,
                    with_reasoning=reasoning,
                    top_logprobs=top_k,
                    salt=str(i) if i else "",
                    logprobs_mode=mode,
                    prompt_logprobs=prompt_k if i == 0 else None,
                )
                for i in range(max(1, n))
            ]
            if not stream:
                await json_reply(
                    send,
                    200,
                    openai_shapes.chat_completion(gens[0], model, fmt, n, gens),
                    OPENAI_ACCOUNT_HEADERS,
                )
                return
            include = (body.get("stream_options") or {}).get("include_usage") is True
            events = openai_shapes.chat_stream(gens[0], model, fmt, include, per_chunk)
        elif path == "/v1/completions":
            top = body.get("logprobs")
            top_k = int(top) if isinstance(top, int) and not isinstance(top, bool) else None
            prompt_asked = body.get("prompt")
            prompt = prompt_asked if isinstance(prompt_asked, str) else ""
            gen = generate_memoised(
                body,
                max_tokens=body.get("max_tokens") or 16,
                with_reasoning=False,
                top_logprobs=top_k,
                logprobs_mode=mode,
                prompt_logprobs=prompt_k,
            )
            if not stream:
                await json_reply(
                    send,
                    200,
                    openai_shapes.completion(gen, model, body.get("echo") is True, prompt),
                    OPENAI_ACCOUNT_HEADERS,
                )
                return
            include = (body.get("stream_options") or {}).get("include_usage") is True
            events = openai_shapes.completion_stream(gen, model, include, per_chunk)
        else:
            top = body.get("top_logprobs")
            included = body.get("include") or []
            wants_logprobs = "message.output_text.logprobs" in included or isinstance(top, int)
            top_k = (int(top) if isinstance(top, int) else 0) if wants_logprobs else None
            reasoning_cfg = body.get("reasoning")
            reasoning = fmt != "none" and isinstance(reasoning_cfg, dict)
            encrypted = "reasoning.encrypted_content" in included
            gen = generate_memoised(
                body,
                max_tokens=body.get("max_output_tokens"),
                with_reasoning=reasoning,
                top_logprobs=top_k,
                logprobs_mode=mode,
            )
            if not stream:
                await json_reply(
                    send, 200, openai_shapes.response_object(gen, model, encrypted), OPENAI_ACCOUNT_HEADERS
                )
                return
            events = openai_shapes.response_stream(gen, model, encrypted, per_chunk)
        await self._stream(events, headers, send, receive, fault, OPENAI_ACCOUNT_HEADERS)

    async def _messages(
        self, body: dict[str, Any], headers: dict[str, str], send: Send, receive: Receive, fault: str
    ) -> None:
        problem = anthropic_shapes.verify_history(body)
        if problem:
            await error_reply(send, 400, problem, True)
            return
        if not isinstance(body.get("max_tokens"), int):
            await error_reply(send, 400, "max_tokens: Field required", True)
            return
        thinking, omitted = anthropic_shapes.thinking_requested(body)
        model = str(body.get("model") or "claude-mock")
        gen = generate_memoised(
            body, max_tokens=body["max_tokens"], with_reasoning=thinking, top_logprobs=None
        )
        redacted = "x-mock-redacted" in headers
        if body.get("stream") is not True:
            await json_reply(
                send, 200, anthropic_shapes.message(gen, model, omitted, redacted), ANTHROPIC_ACCOUNT_HEADERS
            )
            return
        per_chunk = max(1, int(headers.get("x-mock-chunk-tokens", "1")))
        await self._stream(
            anthropic_shapes.message_stream(gen, model, omitted, redacted, per_chunk),
            headers,
            send,
            receive,
            fault,
            ANTHROPIC_ACCOUNT_HEADERS,
        )

    async def _stream(
        self,
        events: Iterator[Event],
        headers: dict[str, str],
        send: Send,
        receive: Receive,
        fault: str,
        account_headers: list[tuple[bytes, bytes]],
    ) -> None:
        delay = float(headers.get("x-mock-delay-ms", "0")) / 1000
        items = list(events)
        half = len(items) // 2
        self.stats["started"] += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    *account_headers,
                ],
            }
        )
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, disconnected))
        try:
            for position, (name, data) in enumerate(items):
                if position == half and fault == "drop-midstream":
                    raise ConnectionAbortedError("mock: dropping the connection mid-stream")
                if position == half and fault == "garbage-midstream":
                    await send(
                        {"type": "http.response.body", "body": b"data: {not json\n\n", "more_body": True}
                    )
                    await asyncio.sleep(0.01)
                if position == half and fault == "hang-midstream":
                    delay = 3600.0
                if disconnected.is_set():
                    self.stats["cancelled"] += 1
                    return
                payload = data if isinstance(data, str) else orjson.dumps(data).decode()
                prefix = f"event: {name}\n" if name else ""
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"{prefix}data: {payload}\n\n".encode(),
                        "more_body": True,
                    }
                )
                if delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(disconnected.wait(), delay)
            if disconnected.is_set():
                self.stats["cancelled"] += 1
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.stats["completed"] += 1
        finally:
            watcher.cancel()


async def _watch_disconnect(receive: Receive, event: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            event.set()
            return


async def _wait_or_disconnect(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds``; True if the client disconnected meanwhile."""
    event = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(receive, event))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        return event.is_set()
    finally:
        watcher.cancel()


def create_mock_app() -> MockUpstream:
    return MockUpstream()
