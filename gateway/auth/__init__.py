"""Client authentication: gateway API keys (hashed) and JWT bearer tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.auth.keys import KeyTable, key_id
from gateway.config.loader import LoadedConfig
from gateway.errors import AuthenticationError
from gateway.plugins.base import Account
from gateway.protocols import ADAPTERS, ProtocolAdapter

if TYPE_CHECKING:
    from gateway.auth.tokens import JWTVerifier

_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class AuthFailure(AuthenticationError):
    """An AuthenticationError that also carries a metrics reason (missing, invalid_key, invalid_jwt...)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


class Authenticator:
    """Turns request headers into an Account, or raises AuthFailure (401)."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self._keys = KeyTable(loaded.api_keys)
        self._accounts = loaded.gateway.accounts
        self._default_tier = loaded.gateway.default_tier
        self._tiers = loaded.gateway.tiers
        base_dir = loaded.source.parent if loaded.source else Path.cwd()
        jwt_cfg = loaded.gateway.auth.jwt
        self._jwt: JWTVerifier | None = None
        if jwt_cfg:
            # Imported only here: PyJWT loads most of cryptography's bindings (~12 MB resident), which a
            # worker that verifies no token does not need.
            from gateway.auth.tokens import JWTVerifier

            self._jwt = JWTVerifier(jwt_cfg, base_dir)

    @staticmethod
    def credential(
        headers: Mapping[str, str],
        adapter: ProtocolAdapter | None = None,
        query_credential: str | None = None,
    ) -> str | None:
        """The client's credential, where the route's API family carries it (the adapter says where)."""
        return (adapter or ADAPTERS["openai"]).client_credential(headers, query_credential)

    async def authenticate(
        self,
        headers: Mapping[str, str],
        adapter: ProtocolAdapter | None = None,
        query_credential: str | None = None,
    ) -> Account:
        """The account of the credential in ``headers`` (or the route's credential query parameter)."""
        adapter = adapter or ADAPTERS["openai"]
        token = self.credential(headers, adapter, query_credential)
        if token is None:
            places = [
                "'Authorization: Bearer <key>'",
                *(f"'{name}: <key>'" for name in adapter.credential_headers),
            ]
            if adapter.credential_query:
                places.append(f"'?{adapter.credential_query}=<key>'")
            raise AuthFailure(
                f"Missing credential: send {', '.join(places[:-1])} or {places[-1]}.", "missing"
            )
        if self._jwt is not None and _JWT_SHAPE.match(token):
            return await self._from_jwt(token)
        entry = self._keys.find(token)
        if entry is None:
            raise AuthFailure("Invalid API key.", "invalid_key")
        return Account(
            entry.account, self._tier_for(entry.account, entry.tier), entry.key_id or key_id(token)
        )

    async def _from_jwt(self, token: str) -> Account:
        assert self._jwt is not None
        import jwt  # loaded with the verifier

        try:
            claims = await self._jwt.verify(token)
        except jwt.ExpiredSignatureError:
            raise AuthFailure("The token has expired.", "expired_jwt") from None
        except (jwt.PyJWTError, OSError) as exc:
            raise AuthFailure(f"Invalid token: {exc}", "invalid_jwt") from None
        cfg = self._jwt.config
        account = claims.get(cfg.account_claim)
        if not isinstance(account, str) or not account:
            raise AuthFailure(f"The token has no '{cfg.account_claim}' claim.", "invalid_jwt")
        tier_claim = claims.get(cfg.tier_claim) if cfg.tier_claim else None
        if tier_claim is not None and (not isinstance(tier_claim, str) or tier_claim not in self._tiers):
            raise AuthFailure(f"The token's '{cfg.tier_claim}' claim names no tier.", "invalid_jwt")
        jti = claims.get("jti")
        return Account(
            account, self._tier_for(account, tier_claim), f"jwt:{jti}" if jti else "jwt", via="jwt"
        )

    def _tier_for(self, account: str, credential_tier: str | None) -> str:
        configured = self._accounts.get(account)
        if configured is not None and configured.tier:
            return configured.tier
        return credential_tier or self._default_tier
