"""JWT bearer tokens (pyjwt) with pinned algorithms and issuer/audience/expiry checks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import jwt

from gateway.config.schema import JWTConfig
from gateway.errors import ConfigError


class JWTVerifier:
    """Verifies tokens against one key source: an HMAC secret, a PEM public key or a JWKS URL."""

    def __init__(self, config: JWTConfig, base_dir: Path) -> None:
        self.config = config
        self._algorithms = list(config.algorithms)
        self._key: Any = None
        self._jwks: jwt.PyJWKClient | None = None
        if config.secret_env:
            secret = os.environ.get(config.secret_env)
            if not secret:
                raise ConfigError(
                    f"environment variable {config.secret_env} is not set", path="auth.jwt.secret_env"
                )
            self._key = secret
        elif config.public_key_file:
            path = base_dir / config.public_key_file
            try:
                self._key = path.read_text("utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {path}: {exc.strerror}", path="auth.jwt.public_key_file"
                ) from None
        else:
            assert config.jwks_url
            self._jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=300, timeout=5)

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; raises jwt.PyJWTError (or OSError for JWKS fetches) when invalid."""
        key = self._key
        if self._jwks is not None:
            # PyJWKClient fetches synchronously; its cache makes this rare, but keep it off the loop.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            key = signing_key.key
        options: dict[str, Any] = {"require": list(self.config.require)}
        return jwt.decode(
            token,
            key,
            algorithms=self._algorithms,
            audience=self.config.audience,
            issuer=self.config.issuer,
            leeway=self.config.leeway_seconds,
            options=options,  # type: ignore[arg-type]
        )
