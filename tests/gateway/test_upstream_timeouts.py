"""The upstream idle timeout holds from the first body read on, whatever the first-byte timeout is."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.support import GatewayHandle, MockHandle, base_config

IDLE = 1.0


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat/completions", {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}),
        (
            "/v1/messages",
            {"model": "claude-mock", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
        ),
    ],
)
def test_stream_stalling_after_some_events_is_cut_at_the_idle_timeout(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, path: str, body: dict[str, object]
) -> None:
    cfg = base_config(mock_upstream.url)
    for upstream in cfg["upstreams"]:
        # first_byte far above idle: the stall must be noticed by the idle timeout, not the first-byte one
        upstream["timeouts"] = {"connect": 2, "first_byte": 30, "idle": IDLE, "total": 60}
    gw = start_gateway(cfg)
    headers = {"authorization": f"Bearer {gw.key()}", "x-mock-fault": "hang-midstream"}
    events: list[tuple[float, bytes]] = []  # (when it arrived, data)
    with (
        httpx.Client(timeout=40) as client,
        client.stream("POST", f"{gw.url}{path}", json={**body, "stream": True}, headers=headers) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append((time.monotonic(), line[6:].encode()))
    assert len(events) > 3, "the first half of the stream was forwarded before the stall"
    error = orjson.loads(events[-1][1])
    if path == "/v1/messages":
        assert error["type"] == "error" and error["error"]["type"] == "timeout_error"
    else:
        assert error["error"]["type"] == "timeout_error"
    stalled = events[-1][0] - events[-2][0]  # from the last event before the stall to the error event
    assert IDLE - 0.1 < stalled < IDLE + 1.0, stalled
