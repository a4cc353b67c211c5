"""The client's address: the TCP peer, unless the peer is a proxy the YAML trusts (``trusted_proxies``).

``X-Forwarded-For`` is a list any client can write to; only the entries appended by
proxies we run are facts. So the chain is read from the right: the peer is the last hop;
while the hop is a trusted proxy, the next address to the left is the one it saw. The first
address that is not a trusted proxy is the client. With no trusted proxies (the default)
the header is ignored and the peer is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, MutableMapping
from functools import lru_cache
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """A fixed set of CIDR networks; ``client(peer, forwarded_for)`` gives the client's address."""

    __slots__ = ("_networks",)

    def __init__(self, cidrs: Iterable[str]) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(c, strict=True) for c in cidrs)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` (an IP literal) is inside a trusted network; False for anything else."""
        ip = _parse(address)
        if ip is None:
            return False
        return any(ip.version == net.version and ip in net for net in self._networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The right-most address of ``forwarded_for`` + ``peer`` that is not a trusted proxy.

        A malformed entry met while walking stops the walk there: the hop that wrote it is
        the last one we can vouch for.
        """
        if not self._networks or not forwarded_for or not self.trusts(peer):
            return peer
        address = peer
        for entry in reversed(forwarded_for.split(",")):
            candidate = _strip_port(entry.strip())
            if _parse(candidate) is None:
                return address
            address = candidate
            if not self.trusts(address):
                return address
        return address  # every hop trusted: the left-most is as far as the chain goes

    def of(self, scope: MutableMapping[str, Any], headers: Mapping[str, str]) -> str:
        """The client address of an ASGI request (``headers`` lower-cased, repeats joined by ', ')."""
        peer = scope.get("client")
        return self.client(peer[0] if peer else "", headers.get("x-forwarded-for"))


@lru_cache(maxsize=4096)
def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1, whichever way the socket reports it
    return ip


def _strip_port(entry: str) -> str:
    """'[2001:db8::1]:443' -> '2001:db8::1'; '192.0.2.1:80' -> '192.0.2.1'; others unchanged."""
    if entry.startswith("["):
        end = entry.find("]")
        return entry[1:end] if end > 0 else entry
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry
