"""`distillguard demo`: the mock model and the gateway in front of it, in one process, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import orjson

from gateway.app import create_app
from gateway.auth.keys import append_key, digest, key_id
from gateway.config.loader import load_config
from gateway.config.schema import ApiKeyEntry
from gateway.logs import configure_logging
from gateway.mock.server import create_mock_app
from gateway.server import serve_async

DEMO_ACCOUNT = "demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shipped_policy(name: str = "default.yaml") -> Path:
    return Path(str(files("policies").joinpath(name)))


def _write_key(keys_file: Path, key: str | None, tier: str | None) -> str:
    if key is None:
        key, _ = append_key(keys_file, DEMO_ACCOUNT, tier, "demo")
        return key
    entry = ApiKeyEntry(sha256=digest(key), account=DEMO_ACCOUNT, tier=tier, key_id=key_id(key))
    keys_file.write_bytes(orjson.dumps(entry.model_dump()) + b"\n")
    return key


def _instructions(port: int, operator_port: int, key: str) -> str:
    base = f"http://127.0.0.1:{port}"
    return f"""
distillguard demo is running.
  gateway:  {base}
  operator: http://127.0.0.1:{operator_port}   (curl -s http://127.0.0.1:{operator_port}/metrics;
            /metrics and /admin are served there only, never on the API's port)
  demo key: {key}

Try it:
  curl -s {base}/v1/chat/completions -H "Authorization: Bearer {key}" \\
       -H "Content-Type: application/json" \\
       -d '{{"model": "mock-reasoner", "messages": [{{"role": "user", "content": "Explain caching."}}]}}'

  curl -sN {base}/v1/messages -H "x-api-key: {key}" -H "anthropic-version: 2023-06-01" \\
       -H "Content-Type: application/json" \\
       -d '{{"model": "claude-mock", "max_tokens": 2048, "stream": true,
            "thinking": {{"type": "enabled", "budget_tokens": 1024}},
            "messages": [{{"role": "user", "content": "Explain caching."}}]}}'

  python -c "from openai import OpenAI; c = OpenAI(base_url='{base}/v1', api_key='{key}'); \\
print(c.chat.completions.create(model='mock-reasoner', \\
messages=[{{'role': 'user', 'content': 'Explain caching.'}}]).choices[0].message.content)"

Press Ctrl-C to stop.
"""


async def _run(port: int, operator_port: int, mock_port: int, key: str | None, config: str | None) -> int:
    policy = Path(config) if config else shipped_policy()
    workdir = Path(tempfile.mkdtemp(prefix="distillguard-demo-"))
    keys_file = workdir / "keys.jsonl"
    mock_port = mock_port or free_port()
    upstream = f"http://127.0.0.1:{mock_port}"
    demo_tier = os.environ.get("DISTILLGUARD_DEMO_TIER")
    key = _write_key(keys_file, key, demo_tier)
    for name in ("DISTILLGUARD_WATERMARK_KEY", "DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_LOGPROB_NOISE_KEY"):
        os.environ.setdefault(name, "demo-only-secret-" + name.lower())

    def loader() -> object:
        return load_config(policy, keys_file=keys_file, upstream_url=upstream)

    loaded = loader()
    configure_logging(loaded.gateway.logging.level)  # type: ignore[attr-defined]
    mock = await serve_async(create_mock_app(), "127.0.0.1", mock_port)
    app = create_app(loader, loaded)  # type: ignore[arg-type]
    gateway = await serve_async(app, "127.0.0.1", port, operator=("127.0.0.1", operator_port))
    print(_instructions(port, app.operator_port or operator_port, key), file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in (gateway, mock):
        server.should_exit = True
    for server in (gateway, mock):
        await server._distillguard_task  # type: ignore[attr-defined]
    return 0


def run_demo(
    port: int = 8080,
    mock_port: int = 0,
    key: str | None = None,
    config: str | None = None,
    operator_port: int = 9090,
) -> int:
    import uvloop

    return uvloop.run(_run(port, operator_port, mock_port, key, config))
