"""Gateway API keys: generated here, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

import orjson

from gateway.config.schema import ApiKeyEntry

KEY_PREFIX = "dg-"


def new_key() -> str:
    """A fresh key: 'dg-' and 32 random bytes, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key: str) -> str:
    """A short, non-secret name for a key (in logs and evidence): 'dg-' and 8 digest characters."""
    return KEY_PREFIX + digest(key)[:8]


class KeyTable:
    """Looks keys up by digest.

    The lookup is by the key's SHA-256, so its timing depends on the digest, which
    an attacker cannot steer towards a stored one; the final comparison is
    constant-time as well.
    """

    def __init__(self, entries: dict[str, ApiKeyEntry]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, key: str) -> ApiKeyEntry | None:
        wanted = digest(key)
        entry = self._entries.get(wanted)
        if entry is None or not hmac.compare_digest(entry.sha256, wanted) or entry.disabled:
            return None
        return entry


def append_key(keys_file: Path, account: str, tier: str | None, label: str = "") -> tuple[str, ApiKeyEntry]:
    """Create a key, append its hashed entry to ``keys_file`` (created 0600 if missing), return both."""
    key = new_key()
    entry = ApiKeyEntry(sha256=digest(key), account=account, tier=tier, key_id=label or key_id(key))
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    line = orjson.dumps(entry.model_dump(exclude_defaults=False)) + b"\n"
    fd = keys_file.open("ab")
    try:
        keys_file.chmod(0o600)
        fd.write(line)
    finally:
        fd.close()
    return key, entry
