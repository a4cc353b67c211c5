"""Two gateway processes sharing one Redis: the template index, levels and pins are shared."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.auth.keys import digest
from tests.policies.detector.helpers import cover_prompt, harvest_prompt
from tests.support import MockHandle, RedisProcess, base_config, free_port, ops_url, spawn_gateway, wait_for

TOKEN = "shared-admin-token"
ACCOUNTS = {f"acct-{i}": f"dg-test-shared-{i}" for i in range(8)}


def _post(port: int, key: str, text: str, ip: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json={"model": "mock-small", "messages": [{"role": "user", "content": text}]},
        headers={"authorization": f"Bearer {key}", "x-forwarded-for": ip},
        timeout=10,
    )


def _admin(port: int, path: str) -> Any:
    response = httpx.get(
        f"{ops_url(port)}/admin{path}", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def test_two_gateways_share_index_and_levels(
    redis_server: RedisProcess, mock_upstream: MockHandle, tmp_path: Path
) -> None:
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    config = base_config(
        mock_upstream.url,
        auth={"keys": [{"sha256": digest(k), "account": a, "tier": "free"} for a, k in ACCOUNTS.items()]},
        tiers={
            "free": {
                "policies": [
                    {
                        "name": "detector",
                        "config": {
                            "shared": {
                                "sync_interval_seconds": 0.2,
                                "audit_log": str(tmp_path / "audit-{replica}.jsonl"),
                            },
                            "cluster": {"min_accounts": 6},
                            "hysteresis": {
                                "min_requests": 1000
                            },  # only the shared cluster can raise anyone here
                        },
                    }
                ]
            }
        },
        risk_levels={"critical": {"block": True}},
        state={"backend": "redis", "url": redis_server.url, "key_prefix": "dgshared"},
        admin={"token_env": "DG_SHARED_ADMIN_TOKEN"},
        trusted_proxies=["127.0.0.1/32"],  # the tests stand in for a proxy that sets X-Forwarded-For
    )
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(config))
    ports = [free_port(), free_port()]
    env = {"DG_SHARED_ADMIN_TOKEN": TOKEN}
    processes = [spawn_gateway(path, port, env=env) for port in ports]
    try:
        rng = random.Random(4)
        names = sorted(ACCOUNTS)
        for _ in range(3):
            for number, name in enumerate(names[:6]):
                port = ports[number % 2]  # each gateway sees 3 of the 6 campaign accounts
                assert (
                    _post(port, ACCOUNTS[name], harvest_prompt(rng), f"192.0.2.{number}").status_code == 200
                )
                assert _post(port, ACCOUNTS[name], cover_prompt(rng), f"192.0.2.{number}").status_code == 200
        for port in ports:
            wait_for(
                lambda port=port: any(
                    c["accounts"] >= 6 for c in _admin(port, "/detector/clusters")["clusters"]
                ),
                timeout=15,
            )
        # Every campaign account is raised on both gateways, including those a gateway never saw.
        for port in ports:
            for name in names[:6]:
                wait_for(
                    lambda port=port, name=name: (
                        _admin(port, f"/detector/accounts/{name}")["risk_level"] == "high"
                    ),
                    timeout=15,
                )
            assert _admin(port, f"/detector/accounts/{names[7]}")["risk_level"] == "none"
        # A pin set on one gateway blocks on the other.
        pinned = httpx.put(
            f"{ops_url(ports[0])}/admin/accounts/{names[7]}/level",
            json={"level": "critical", "reason": "shared pin test"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert pinned.status_code == 200
        wait_for(
            lambda: _post(ports[1], ACCOUNTS[names[7]], "hello", "198.51.100.1").status_code == 403,
            timeout=15,
        )
        # The account's owner (routing.py) analysed it and voted; the other gateway knows that vote
        # (a vote of its own too only if it analysed some of the account's first requests, before
        # it counted the other gateway in the replicas' set).
        status = _admin(ports[1], f"/detector/accounts/{names[0]}")
        votes, owner = status["votes"], status["analysed_by"]
        assert votes.get(owner) == "high", status
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
