"""The policy YAML's schema (pydantic v2). Policy configs are validated by each policy's own model.

Every model forbids unknown keys, so a typo is an error with its path, not a
setting silently ignored. ``StateConfig`` (the state store) is in ``state_schema``, re-exported here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from gateway.config.state_schema import StateConfig as StateConfig  # re-exported: the state: section
from gateway.config.strict import Strict as Strict
from gateway.headers import RESERVED_CLIENT_HEADERS
from gateway.plugins.base import PolicyMode
from gateway.protocols import ADAPTERS, ProtocolName
from gateway.routes import OPERATION_PATHS, validate_template

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BETA = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_HEADER_PATTERN = re.compile(r"^[a-z0-9!#$%&'+.^_`|~-]+\*?$")
_PARAM = re.compile(r"\{[a-z0-9_]*\}")


def forward_header_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be in ``forward_headers`` (None if it can).

    The gateway's own headers (credentials, hop-by-hop, tracing it sets, the
    betas it checks) are never the client's to send upstream, so a name or a
    prefix that would cover one is refused rather than silently skipped.
    """
    if not _HEADER_PATTERN.match(pattern):
        return "must be a lower-case header name, or a prefix ending in '*'"
    prefix = pattern[:-1] if pattern.endswith("*") else None
    if prefix is not None and len(prefix) < 2:
        return "a prefix must have at least two characters before '*'"
    for reserved in sorted(RESERVED_CLIENT_HEADERS):
        if reserved == pattern or (prefix is not None and reserved.startswith(prefix)):
            return f"would forward '{reserved}', which the gateway sets or never forwards"
    return None


class ListenConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a CIDR network (e.g. 10.0.0.0/8): {exc}") from None
    return value


class OperatorConfig(Strict):
    """The operator listener: /metrics and /admin/* (and the probes), never on the public port.

    Loopback by default, so only the host (or a sidecar) reaches it; in a pod bind 0.0.0.0 and let
    the NetworkPolicy decide who may connect. Read at start: changing it needs a restart.
    """

    host: str = "127.0.0.1"
    port: int = Field(9090, ge=0, le=65535, description="0 picks a free port (tests)")


class TimeoutsConfig(Strict):
    """Seconds. ``first_byte`` runs until the upstream's response headers; ``idle`` between body reads."""

    connect: float = Field(5.0, gt=0)
    first_byte: float = Field(300.0, gt=0)
    idle: float = Field(120.0, gt=0)
    total: float = Field(900.0, gt=0)


class UpstreamConfig(Strict):
    name: str = Field(pattern=_NAME)
    url: str
    protocol: ProtocolName = "openai"
    credential_env: str | None = Field(
        None, description="name of the env var holding the upstream credential"
    )
    models: list[str] = Field(default_factory=list, description="glob patterns; empty matches any model")
    headers: dict[str, str] = Field(default_factory=dict, description="static headers added upstream")
    forward_headers: list[str] = Field(
        default_factory=list,
        description="client headers forwarded besides the built-in allow-list (lower-case names; "
        "'prefix-*' matches a prefix)",
    )
    allowed_betas: list[str] = Field(
        default_factory=list,
        description="anthropic-beta values clients may send (anthropic only); others get 400",
    )
    timeouts: TimeoutsConfig = TimeoutsConfig()
    max_connections: int = Field(512, ge=1)
    default_model: str | None = Field(
        None,
        min_length=1,
        description="model set in requests that name none (else such requests get 400)",
    )
    extra_parameters: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]] = Field(
        default_factory=list,
        max_length=256,
        description="top-level request parameters the gateway does not declare, forwarded unchecked "
        "(the operator's risk); parameters the gateway checks are checked whatever this says",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("forward_headers")
    @classmethod
    def _forward_headers(cls, value: list[str]) -> list[str]:
        for name in value:
            problem = forward_header_problem(name)
            if problem:
                raise ValueError(f"'{name}': {problem}")
        return value

    @field_validator("allowed_betas")
    @classmethod
    def _betas(cls, value: list[str]) -> list[str]:
        for beta in value:
            if not _BETA.match(beta):
                raise ValueError(f"'{beta}' is not a beta name (letters, digits, '.', '_', '-')")
        return value

    @model_validator(mode="after")
    def _betas_are_anthropic(self) -> UpstreamConfig:
        if self.allowed_betas and self.protocol != "anthropic":
            raise ValueError("allowed_betas applies to anthropic upstreams only (the anthropic-beta header)")
        return self


class ApiKeyEntry(Strict):
    """A gateway API key, stored only as the SHA-256 hex digest of the key."""

    sha256: str
    account: str = Field(pattern=_NAME)
    tier: str | None = None
    key_id: str = ""
    disabled: bool = False

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        value = value.lower()
        if not _HEX64.match(value):
            raise ValueError("must be 64 hex characters (the SHA-256 of the key, not the key)")
        return value


JWTAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"
]


class JWTConfig(Strict):
    algorithms: list[JWTAlgorithm] = Field(min_length=1)
    secret_env: str | None = Field(None, description="env var with the HMAC secret (HS*)")
    public_key_file: str | None = Field(None, description="PEM public key (RS*/PS*/ES*/EdDSA)")
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    account_claim: str = "sub"
    tier_claim: str | None = "tier"
    leeway_seconds: float = Field(30.0, ge=0)
    require: list[str] = Field(default_factory=lambda: ["exp"])

    @model_validator(mode="after")
    def _one_key_source(self) -> JWTConfig:
        hmac = any(a.startswith("HS") for a in self.algorithms)
        asym = any(not a.startswith("HS") for a in self.algorithms)
        if hmac and asym:
            raise ValueError("do not mix HMAC (HS*) and public-key algorithms: that invites key confusion")
        sources = [s for s in (self.secret_env, self.public_key_file, self.jwks_url) if s]
        if len(sources) != 1:
            raise ValueError("set exactly one of secret_env, public_key_file, jwks_url")
        if hmac and not self.secret_env:
            raise ValueError("HS* algorithms need secret_env")
        if asym and self.secret_env:
            raise ValueError("public-key algorithms need public_key_file or jwks_url, not secret_env")
        return self


class AuthConfig(Strict):
    keys: list[ApiKeyEntry] = Field(default_factory=list)
    keys_file: str | None = Field(None, description="JSONL file of hashed keys (distillguard keys new)")
    jwt: JWTConfig | None = None


class PolicyEntry(Strict):
    """One policy in a tier: its registered name, enforce or shadow, and its config."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", description="registered name or module:Class")
    mode: PolicyMode = "enforce"
    config: dict[str, Any] = Field(default_factory=dict)


class TierConfig(Strict):
    description: str = ""
    policies: list[PolicyEntry] = Field(default_factory=list)

    @field_validator("policies")
    @classmethod
    def _unique(cls, value: list[PolicyEntry]) -> list[PolicyEntry]:
        seen: set[str] = set()
        for entry in value:
            if entry.name in seen:
                raise ValueError(f"policy '{entry.name}' appears twice; merge its settings into one entry")
            seen.add(entry.name)
        return value


class AccountConfig(Strict):
    tier: str | None = None
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="policy name -> config keys merged over the tier's"
    )


class RiskLevelConfig(Strict):
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    block: bool = False
    block_message: str = "This account is blocked pending review of its traffic."


class LimitsConfig(Strict):
    """What one client connection may send, and how long it may take (checked before authentication)."""

    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_headers: int = Field(100, ge=8, le=10_000, description="header lines per request; more: 431")
    max_header_bytes: int = Field(
        32 * 1024, ge=1024, le=1024 * 1024, description="request line and headers, in bytes; more: 431"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="from the connection (or a request's first byte) to the end of its headers"
    )
    body_timeout_seconds: float = Field(
        60.0, gt=0, description="from the end of the headers to the end of the body"
    )
    keep_alive_seconds: float = Field(
        65.0, gt=0, description="an idle connection between two requests is closed after this"
    )


class MetricsConfig(Strict):
    per_account_labels: bool = False


class LoggingConfig(Strict):
    access_log: bool = True
    level: Literal["debug", "info", "warning", "error"] = "info"


class ReloadConfig(Strict):
    watch: bool = True
    interval_seconds: float = Field(2.0, gt=0)


class ConsoleConfig(Strict):
    """The operator console under ``/console`` on the operator listener (``gateway/console``)."""

    enabled: bool = Field(True, description="serve the console (it is off anyway while the admin token is)")
    session_minutes: int = Field(480, ge=1, le=10_080, description="a console session's lifetime")
    secure_cookie: bool = Field(
        False, description="mark the session cookie Secure (set it when the operator listener is behind TLS)"
    )


class AdminConfig(Strict):
    token_env: str | None = Field(None, description="env var holding the admin API bearer token; unset = off")
    audit_log: str | None = Field(
        None,
        description="JSONL file of operator actions taken in the console (who, what, why); "
        "when set, an action whose entry cannot be written is refused",
    )
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class PassthroughRoute(Strict):
    """A non-model route forwarded after the account's block, quota and detector have seen it.

    ``path`` is a template of whole segments (``/v1/models/{id}``: a parameter matches exactly one
    segment); ``methods`` are the only methods served; ``query`` the only query parameters forwarded.
    The response body is relayed as the upstream wrote it, so declare only routes that carry no model
    output a policy must filter.
    """

    path: str
    methods: list[HttpMethod] = Field(min_length=1)
    protocol: ProtocolName = "openai"
    query: list[str] = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _template(cls, value: str) -> str:
        return validate_template(value)


DEFAULT_PASSTHROUGH: list[dict[str, Any]] = [
    {"path": "/v1/models", "methods": ["GET"]},
    {"path": "/v1/models/{model}", "methods": ["GET"]},
    {"path": "/v1/embeddings", "methods": ["POST"]},
    {"path": "/v1/messages/count_tokens", "methods": ["POST"], "protocol": "anthropic", "query": ["beta"]},
    # Each family's own defaults (Gemini's model listing), from its adapter.
    *(
        {**route, "protocol": name}
        for name, adapter in ADAPTERS.items()
        for route in adapter.default_passthrough
    ),
]


class GatewayConfig(Strict):
    listen: ListenConfig = ListenConfig()
    operator: OperatorConfig = OperatorConfig()
    trusted_proxies: list[Annotated[str, AfterValidator(_cidr)]] = Field(
        default_factory=list,
        description="CIDRs of proxies whose X-Forwarded-For is believed; empty: the peer is the client",
    )
    upstreams: list[UpstreamConfig] = Field(min_length=1)
    auth: AuthConfig = AuthConfig()
    default_tier: str = "default"
    tiers: dict[str, TierConfig] = Field(min_length=1)
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)
    risk_levels: dict[str, RiskLevelConfig] = Field(default_factory=dict)
    passthrough_routes: list[PassthroughRoute] = Field(
        default_factory=lambda: [PassthroughRoute.model_validate(r) for r in DEFAULT_PASSTHROUGH],
        description="non-model routes forwarded after block, quota and detector; every other route is 404",
    )
    limits: LimitsConfig = LimitsConfig()
    state: StateConfig = StateConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    reload: ReloadConfig = ReloadConfig()
    admin: AdminConfig = AdminConfig()

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "passthrough_paths" in data:
            raise ValueError(
                "passthrough_paths (globs) is replaced by passthrough_routes: a list of "
                "{path: /v1/models/{model}, methods: [GET]} whose parameters match one whole segment"
            )
        return data

    @field_validator("passthrough_routes")
    @classmethod
    def _distinct_routes(cls, value: list[PassthroughRoute]) -> list[PassthroughRoute]:
        seen: set[str] = set()
        operations = {_PARAM.sub("{}", path) for path in OPERATION_PATHS}
        for route in value:
            shape = _PARAM.sub("{}", route.path)  # parameter names do not tell two templates apart
            if shape in operations:
                raise ValueError(f"{route.path} is a model operation; it cannot be a passthrough route")
            if shape in seen:
                raise ValueError(f"{route.path} is declared twice (or overlaps another template)")
            seen.add(shape)
        return value
