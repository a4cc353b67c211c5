"""Which client request headers may reach an upstream: an allow-list, and the names the gateway keeps.

Client headers go upstream only when named here (or declared by the operator
in ``upstreams[].forward_headers``): an organisation or project header, a
``Forwarded`` chain, a beta the operator did not allow, or anything else a
client invents never reaches the model server.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.protocols import CLIENT_CREDENTIAL_HEADERS

# Forwarded for every protocol: what the body is, and what the client accepts back.
FORWARDED_CLIENT_HEADERS = frozenset({"content-type", "accept"})

# The headers of one protocol (its version header, its defaults) are its adapter's
# (``ProtocolAdapter.client_headers``, ``default_headers``); betas are checked separately.

ANTHROPIC_BETA = "anthropic-beta"

# Never forwarded from the client, not even when an operator declares them: credentials, hop-by-hop and
# framing headers, what the gateway sets itself (request id, client address) and the betas it checks.
RESERVED_CLIENT_HEADERS = (
    frozenset(
        {
            "authorization",
            "proxy-authorization",
            "x-api-key",
            "cookie",
            "x-distillguard-admin-token",
            "host",
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "content-length",
            "content-encoding",
            "accept-encoding",
            "expect",
            "x-request-id",
            "x-forwarded-for",
            "forwarded",
            ANTHROPIC_BETA,
        }
    )
    | CLIENT_CREDENTIAL_HEADERS
)  # where any protocol's clients put their credential (x-goog-api-key...)


def upstream_request_headers(
    client_headers: Mapping[str, str], request_id: str, client_ip: str
) -> dict[str, str]:
    """The allow-listed client headers (content type, accept), plus tracing headers.

    What else a client may send upstream depends on the upstream: see
    :meth:`gateway.upstream.Upstream.client_headers`.
    """
    headers = {k: v for k in FORWARDED_CLIENT_HEADERS if (v := client_headers.get(k)) is not None}
    headers["x-request-id"] = request_id
    forwarded = client_headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {client_ip}" if forwarded else client_ip
    headers["accept-encoding"] = "identity"
    return headers
