"""The chart relies on hot reload: its rendered policy runs for real, and updates arrive the way the kubelet
writes ConfigMap and Secret volumes (a timestamped folder and an atomic swap of the ``..data`` symlink).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import yaml

from gateway.auth.keys import append_key
from tests.deploy.chart_rendering import env_of, gateway_container, manifests, one, render
from tests.support import MockHandle, RedisProcess, free_port, ops_url, spawn_gateway, wait_for


class AtomicVolume:
    """A folder laid out as the kubelet lays out a ConfigMap or Secret volume, updated the same way."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True)
        self.version = 0

    def write(self, files: dict[str, bytes]) -> None:
        self.version += 1
        payload = self.root / f"..2026_01_01_00_00_{self.version:02d}.000000001"
        payload.mkdir()
        for name, data in files.items():
            (payload / name).write_bytes(data)
        staging = self.root / "..data_tmp"
        staging.symlink_to(payload.name)
        os.replace(staging, self.root / "..data")  # the atomic swap
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")


SECRET_ENV = ("DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_WATERMARK_KEY", "DISTILLGUARD_LOGPROB_NOISE_KEY")


def chat(port: int, key: str) -> int:
    reply = httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "mock-small", "max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]},
        timeout=10,
    )
    return reply.status_code


def test_rendered_chart_config_serves_and_hot_reloads_volume_updates(
    tmp_path: Path, mock_upstream: MockHandle, redis_server: RedisProcess
) -> None:
    docs = manifests(
        render(
            {
                "gateway": {"upstreamURL": mock_upstream.url},
                "redis": {"mode": "external", "external": {"url": redis_server.url}},
                "keysFile": {"existingSecret": "distillguard-keys"},
            }
        )
    )
    policy = one(docs, "ConfigMap", "dg-distillguard-policy")["data"]["policy.yaml"].encode()
    env = env_of(gateway_container(docs))
    redis_url = env["DISTILLGUARD_REDIS_URL"]["value"]
    assert redis_url == redis_server.url

    policy_volume = AtomicVolume(tmp_path / "policy")
    policy_volume.write({"policy.yaml": policy})
    keys_volume = AtomicVolume(tmp_path / "keys")
    staging = tmp_path / "keys-source.jsonl"
    first_key, _ = append_key(staging, "acme", "pro")
    keys_volume.write({"keys.jsonl": staging.read_bytes()})

    port = free_port()
    process = spawn_gateway(
        policy_volume.root / "policy.yaml",
        port,
        "--keys-file",
        str(keys_volume.root / "keys.jsonl"),
        env={
            "DISTILLGUARD_REDIS_URL": redis_url,
            # What the pod gets from its Secrets; the shipped policy's policies refuse to start without them.
            **{name: f"test-secret-value-for-{name.lower()}" for name in SECRET_ENV},
        },
    )
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        assert ready["ready"] is True and ready["state"] == "ok"
        assert chat(port, first_key) == 200

        # A key added to the Secret works once the volume changes; no restart.
        second_key, _ = append_key(staging, "beta", "free")
        assert chat(port, second_key) == 401
        keys_volume.write({"keys.jsonl": staging.read_bytes()})
        wait_for(lambda: chat(port, second_key) == 200, timeout=15, interval=0.25)
        assert chat(port, first_key) == 200

        # A policy change is applied...
        changed = yaml.safe_load(policy)
        changed["tiers"]["free"]["description"] = "changed by the test"
        before = ready["config"]
        policy_volume.write({"policy.yaml": yaml.safe_dump(changed).encode()})

        def fingerprint() -> str:
            return str(httpx.get(f"http://127.0.0.1:{port}/readyz").json()["config"])

        wait_for(lambda: fingerprint() != before, timeout=15, interval=0.25)
        applied = fingerprint()

        # ...and an invalid one refused: the previous policy keeps serving.
        changed["tiers"]["free"]["policies"] = [{"name": "no-such-policy"}]
        policy_volume.write({"policy.yaml": yaml.safe_dump(changed).encode()})
        wait_for(
            lambda: (
                'distillguard_config_reloads_total{result="rejected"}'
                in httpx.get(f"{ops_url(port)}/metrics").text
            ),
            timeout=15,
            interval=0.25,
        )
        assert fingerprint() == applied
        assert chat(port, second_key) == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
