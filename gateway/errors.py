"""The one error hierarchy of distillguard.

Every failure that reaches a client is a :class:`GatewayError`. Each class fixes
one HTTP status and one *kind*; the protocol adapters (``gateway.protocols``)
map the kind to the error shape of their API exactly once, so a handler or a
policy only ever raises, it never builds an error body::

    GatewayError
    ├── ClientError                     4xx: the request is at fault
    │   ├── InvalidRequestError         400  malformed JSON, bad parameter
    │   │   └── PolicyViolationError    400  a policy refuses a parameter (names it and the limit)
    │   ├── AuthenticationError         401  missing or bad credential
    │   ├── PermissionDeniedError       403  authenticated, but not allowed (blocked account)
    │   ├── NotFoundError               404  unknown route
    │   ├── MethodNotAllowedError       405  wrong HTTP method for a model route
    │   ├── RequestTimeoutError         408  the request body did not arrive in time
    │   ├── PayloadTooLargeError        413  body over the configured limit
    │   └── RateLimitError              429  a quota is exhausted (carries Retry-After)
    └── ServerError                     5xx: the gateway or the upstream is at fault
        ├── PolicyFailureError          500  a policy raised: fail closed, nothing unfiltered leaks
        ├── ServiceUnavailableError     503  a state backend is down in fail-closed mode
        ├── UpstreamError               502  the upstream is unreachable or spoke garbage
        └── UpstreamTimeoutError        504  the upstream was too slow

:class:`ConfigError` is separate: it never reaches a client; it stops a start or
a reload and names the file and the key at fault.
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    """An error with an HTTP status, a protocol-neutral kind and a client-safe message."""

    status: int = 500
    kind: str = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})


class ClientError(GatewayError):
    status = 400
    kind = "invalid_request"


class InvalidRequestError(ClientError):
    status = 400
    kind = "invalid_request"


class PolicyViolationError(InvalidRequestError):
    """A policy refuses a request parameter; the message names the parameter and the limit."""

    def __init__(self, message: str, *, param: str, policy: str, code: str = "policy_violation") -> None:
        super().__init__(message, param=param, code=code)
        self.policy = policy


class AuthenticationError(ClientError):
    status = 401
    kind = "authentication"


class PermissionDeniedError(ClientError):
    status = 403
    kind = "permission"


class NotFoundError(ClientError):
    status = 404
    kind = "not_found"


class MethodNotAllowedError(ClientError):
    status = 405
    kind = "invalid_request"


class RequestTimeoutError(ClientError):
    """The client did not send its request in time; the response closes the connection."""

    status = 408
    kind = "invalid_request"


class PayloadTooLargeError(ClientError):
    status = 413
    kind = "request_too_large"


class RateLimitError(ClientError):
    """A quota is exhausted; ``retry_after`` (seconds) becomes the Retry-After header."""

    status = 429
    kind = "rate_limit"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: str = "rate_limit_exceeded",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        merged = dict(headers or {})
        merged["retry-after"] = str(max(1, int(-(-retry_after // 1))))
        super().__init__(message, code=code, headers=merged)
        self.retry_after = retry_after


class ServerError(GatewayError):
    status = 500
    kind = "server_error"


class PolicyFailureError(ServerError):
    """A policy raised an unexpected exception; the response is withheld (fail closed)."""

    status = 500
    kind = "server_error"

    def __init__(self, policy: str, phase: str) -> None:
        super().__init__(
            f"The request could not be completed: policy '{policy}' failed in phase '{phase}'.",
            code="policy_failure",
        )
        self.policy = policy
        self.phase = phase


class ServiceUnavailableError(ServerError):
    status = 503
    kind = "unavailable"


class UpstreamError(ServerError):
    status = 502
    kind = "upstream"


class UpstreamTimeoutError(ServerError):
    status = 504
    kind = "timeout"


class ConfigError(Exception):
    """A configuration is invalid. ``path`` is the dotted key at fault, ``source`` the file."""

    def __init__(self, reason: str, *, path: str = "", source: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.source = source
        where = f"{source}: " if source else ""
        at = f"{path}: " if path else ""
        super().__init__(f"{where}{at}{reason}")
