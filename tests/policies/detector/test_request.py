"""What the detector extracts from a request: bounded text, turns, parameters, client and network."""

from __future__ import annotations

from policies.detector.request import client_key, ip_prefix


def test_client_key_ignores_volatile_headers_but_not_order() -> None:
    a = client_key({"user-agent": "sdk/1", "accept": "*/*", "x-request-id": "1", "content-length": "10"})
    b = client_key({"user-agent": "sdk/1", "accept": "*/*", "x-request-id": "2", "content-length": "99"})
    c = client_key({"accept": "*/*", "user-agent": "sdk/1"})
    assert a == b and a != c


def test_ip_prefixes() -> None:
    assert ip_prefix("203.0.113.77", 24, 48) == "203.0.113.0/24"
    assert ip_prefix("2001:db8:1:2::5", 24, 48) == "2001:db8:1::/48"
    assert ip_prefix("::ffff:198.51.100.9", 24, 48) == "198.51.100.0/24"
    assert ip_prefix("not-an-ip", 24, 48) == ""
