"""The health endpoints: /readyz and the shared state backend."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support import GatewayHandle, RedisProcess, free_port


def test_readyz_with_redis_reachable(
    start_gateway: Callable[..., GatewayHandle], redis_server: RedisProcess
) -> None:
    gw = start_gateway(state={"backend": "redis", "url": redis_server.url})
    for path in ("/readyz", "/readyz?state=optional"):
        reply = httpx.get(gw.url + path)
        assert reply.status_code == 200
        assert reply.json()["state"] == "ok"


def test_readyz_fails_when_redis_is_unreachable_unless_state_is_optional(
    start_gateway: Callable[..., GatewayHandle],
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    gw = start_gateway(state={"backend": "redis", "url": nobody, "timeout_seconds": 0.2})
    strict = httpx.get(gw.url + "/readyz")
    assert strict.status_code == 503
    assert strict.json() == {"ready": False, "reason": "redis state backend unreachable"}
    lenient = httpx.get(gw.url + "/readyz?state=optional")
    assert lenient.status_code == 200
    assert lenient.json()["state"] == "unreachable"
    assert httpx.get(gw.url + "/healthz").status_code == 200
