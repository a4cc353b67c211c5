"""The client address policies see: X-Forwarded-For counts only through proxies listed in trusted_proxies."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import yaml

from gateway.client_address import TrustedProxies
from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from gateway.plugins import Exchange, Policy, PolicyConfig
from tests.support import GatewayHandle, base_config

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}


class EchoClientAddress(Policy[PolicyConfig]):
    """Tells the test the client address the policies were given."""

    async def on_request(self, exchange: Exchange) -> None:
        exchange.response_headers["x-test-client-ip"] = exchange.client_ip


def _start(start_gateway: Callable[..., GatewayHandle], trusted: list[str]) -> GatewayHandle:
    policies = [{"name": f"{__name__}:EchoClientAddress"}]
    return start_gateway(
        tiers={tier: {"policies": policies} for tier in ("free", "pro", "trusted")}, trusted_proxies=trusted
    )


def _seen(gw: GatewayHandle, forwarded_for: str) -> str:
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {gw.key()}", "x-forwarded-for": forwarded_for},
    )
    assert response.status_code == 200, response.text
    return response.headers["x-test-client-ip"]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(start_gateway: Callable[..., GatewayHandle]) -> None:
    """By default no proxy is trusted: a client on loopback cannot pick the address the detector sees."""
    gw = _start(start_gateway, [])
    assert _seen(gw, "203.0.113.7") == "127.0.0.1"
    other = _start(start_gateway, ["10.0.0.0/8"])  # trusted proxies, but the peer is not one of them
    assert _seen(other, "203.0.113.7") == "127.0.0.1"


def test_forwarded_for_from_a_trusted_proxy_is_honoured(start_gateway: Callable[..., GatewayHandle]) -> None:
    gw = _start(start_gateway, ["127.0.0.0/8", "10.0.0.0/8"])
    assert _seen(gw, "203.0.113.7") == "203.0.113.7"
    # A client writes its own entries on the left; the right-most untrusted address is the client.
    assert _seen(gw, "198.51.100.1, 203.0.113.7, 10.1.2.3") == "203.0.113.7"


def test_right_most_untrusted_address() -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "2001:db8::/32"])
    assert trusted.client("10.0.0.1", "1.1.1.1, 2.2.2.2") == "2.2.2.2"
    assert trusted.client("10.0.0.1", "1.1.1.1, 10.9.9.9") == "1.1.1.1"
    assert trusted.client("192.0.2.1", "1.1.1.1") == "192.0.2.1"  # untrusted peer: header ignored
    assert trusted.client("10.0.0.1", None) == "10.0.0.1"
    assert trusted.client("10.0.0.1", "not-an-ip, 10.2.2.2") == "10.2.2.2"  # stops at a forged entry
    assert trusted.client("10.0.0.1", "[2001:db9::5]:443") == "2001:db9::5"
    assert trusted.client("10.0.0.1", "198.51.100.4:8443") == "198.51.100.4"
    assert trusted.client("::ffff:10.0.0.1", "198.51.100.4") == "198.51.100.4"
    assert trusted.client("2001:db8::1", "2001:db8::2, 2001:db7::9") == "2001:db7::9"
    assert TrustedProxies([]).client("10.0.0.1", "1.1.1.1") == "10.0.0.1"


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "localhost", "10.0.0.1/8", ""])
def test_trusted_proxies_are_validated_at_load(cidr: str) -> None:
    config = base_config("http://127.0.0.1:9", trusted_proxies=["127.0.0.1/32", cidr])
    with pytest.raises(ConfigError) as caught:
        load_config_text(yaml.safe_dump(config))
    assert caught.value.path == "trusted_proxies[1]"
    assert "CIDR" in str(caught.value)
