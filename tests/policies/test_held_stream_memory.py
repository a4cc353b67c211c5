"""What the default preset's policies keep per held stream.

A stream whose upstream has gone quiet (a model thinking for a minute) keeps its policies' per-stream
state for as long as it lasts: the quota's reservation and rate-limit headers, the reasoning filter, the
watermark's and logprobs' stream state, the detector's observation. 10,000 such streams per worker is
the performance issue's target, so that state is measured here: real streams held through a gateway
running the preset's free tier, over 127.0.0.1, in front of an upstream that sends one event and then
nothing.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.support import ROOT, TEST_KEYS, GatewayHandle, QuietUpstream, base_config

STREAMS = 60
# The policies' files, and the engine helpers that build their per-stream objects (rate-limit headers,
# the chat reasoning rewriter), measured here: 8.3 KB per stream before the quota's reservation, the
# rate-limit headers, the watermark's stream maker, the reasoning filter and the logprobs coarsener were
# trimmed; 5.2 KB after.
SITES = ("/policies/", "gateway/protocols/ratelimit.py", "gateway/protocols/chat_reasoning.py")
# The engine and the front door (the gateway's other files, uvicorn's), measured by the second test:
# 14.9 KB per stream before the upstream's response headers, the forwarded request headers, the stream
# chain's list, the header map's strings, the choice keys and the scope's unread entries went; 13.3 KB
# after.
ENGINE_SITES = ("/gateway/", "/uvicorn/")
ENGINE_LIMIT = 14000


def _preset_policies(audit_log: Path) -> list[dict[str, Any]]:
    """The default preset's free tier, its quota raised so that every stream is admitted."""
    data = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policies = data["tiers"]["free"]["policies"]
    for entry in policies:
        config = entry.setdefault("config", {})
        if entry["name"] == "detector":
            config["shared"] = {
                **config["shared"],
                "audit_log": str(audit_log),
                "semantic": {"enabled": "off"},
            }
        if entry["name"] == "quota":
            config.update(
                requests_per_minute=10**6,
                tokens_per_minute=10**12,
                tokens_per_day=10**12,
                max_concurrent=10**5,
                reasoning_tokens_per_day=10**12,
            )
    return policies


async def _open_stream(port: int, index: int) -> asyncio.StreamWriter:
    body = orjson.dumps(
        {
            "model": "mock-small",
            "stream": True,
            "messages": [{"role": "user", "content": f"question {index}"}],
        }
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + TEST_KEYS["free"].encode() + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    received = b""
    while b"data: " not in received:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 20)
        except TimeoutError:
            raise AssertionError(f"no event in 20 s: {received[:500]!r}") from None
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:300]
    return writer


async def _grown_per_stream(
    start_gateway: Callable[..., GatewayHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, int]:
    """Bytes allocated per held stream (held at the end), by file: STREAMS streams through the preset."""
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", "test-watermark-key-0123456789")
    monkeypatch.setenv("DISTILLGUARD_SEAL_KEY", "test-seal-key-0123456789abcdef")
    upstream = await asyncio.get_running_loop().create_server(QuietUpstream, "127.0.0.1", 0)
    config = base_config(f"http://127.0.0.1:{upstream.sockets[0].getsockname()[1]}")
    for entry in config["upstreams"]:
        entry["timeouts"] = {"connect": 2, "first_byte": 30, "idle": 60, "total": 120}
    config["tiers"]["free"]["policies"] = _preset_policies(tmp_path / "audit.jsonl")
    gateway = await asyncio.to_thread(start_gateway, config)
    writers = [await _open_stream(gateway.port, i) for i in range(5)]  # warm: caches, pools, tables
    for writer in writers:
        writer.close()
    await asyncio.sleep(0.3)
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        writers = [await _open_stream(gateway.port, i) for i in range(STREAMS)]
        await asyncio.sleep(0.2)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        for writer in writers:
            writer.close()
        upstream.close()
    return {stat.traceback[0].filename: stat.size_diff for stat in after.compare_to(before, "filename")}


async def test_the_preset_policies_keep_under_6_5_kb_per_held_stream(
    start_gateway: Callable[..., GatewayHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown_by_file = await _grown_per_stream(start_gateway, tmp_path, monkeypatch)
    grown = sum(size for name, size in grown_by_file.items() if any(site in name for site in SITES))
    assert grown / STREAMS < 6500, f"{grown / STREAMS:,.0f} bytes per held stream"


async def test_the_engine_and_front_door_keep_under_their_bound_per_held_stream(
    start_gateway: Callable[..., GatewayHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's own files and uvicorn's, under the preset: the request, its upstream connection,
    the stream chain, the front door (the client side of this test is asyncio's streams, not counted)."""
    grown_by_file = await _grown_per_stream(start_gateway, tmp_path, monkeypatch)
    grown = sum(
        size
        for name, size in grown_by_file.items()
        if any(site in name for site in ENGINE_SITES) and not any(site in name for site in SITES)
    )
    print(f"engine: {grown / STREAMS:,.0f} bytes per held stream")
    assert grown / STREAMS < ENGINE_LIMIT, f"{grown / STREAMS:,.0f} bytes per held stream"
