"""Watermark keys: master secrets from the environment, one derived key per account.

The master secret of each key id comes from an env var named in the config; the
first key id is the current one (it marks new responses), the others are kept
so that text marked before a rotation is still detected. An account's key is
``HMAC-SHA256(master, account id)``, so the detector can test every account
with nothing but the master secret and the list of account ids.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.plugins import ConfigError

MIN_SECRET_BYTES = 16


@dataclass(frozen=True, slots=True)
class MasterKey:
    id: str
    secret: bytes

    def account_key(self, account: str) -> bytes:
        """The account's key: HMAC(master, account id)."""
        return hmac.new(self.secret, account.encode("utf-8"), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key id and the env var that holds its secret."""

    id: str
    env: str


def load_master_keys(specs: Iterable[KeySpec], environ: Mapping[str, str] | None = None) -> list[MasterKey]:
    """Read each spec's secret; a missing or short one raises ConfigError (the gateway refuses to start)."""
    environ = os.environ if environ is None else environ
    keys: list[MasterKey] = []
    for spec in specs:
        value = environ.get(spec.env, "")
        if not value:
            raise ConfigError(f"watermark key '{spec.id}': the environment variable {spec.env} is not set")
        secret = value.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"watermark key '{spec.id}': {spec.env} must hold at least {MIN_SECRET_BYTES} bytes"
            )
        keys.append(MasterKey(spec.id, secret))
    if not keys:
        raise ConfigError("the watermark needs at least one key")
    return keys


def parse_key_specs(text: str) -> list[KeySpec]:
    """``id=ENV,id2=ENV2`` (or a bare ENV, whose id is ``default``) as given on the command line."""
    specs: list[KeySpec] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, env = part.partition("=")
        specs.append(KeySpec(key_id.strip(), env.strip()) if sep else KeySpec("default", part))
    return specs
