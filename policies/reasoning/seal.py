"""Sealed reasoning: AES-256-GCM blobs bound to the account and the API format, with rotating key ids.

A blob is one ASCII string a client can store and send back unchanged::

    dgs1.<key id>.<format>.<account tag>.<base64url(nonce || ciphertext || tag)>

* ``format`` is one letter per place an adapter puts blobs (``PLACE_FORMATS``:
  a message's reasoning fields, an inline think span, a reasoning item, a thinking
  block; see gateway/protocols/sealed.py); a blob of one is refused in another.
* ``account tag`` is a truncated HMAC of the account id; it only lets the
  gateway say "another account's blob" instead of "tampered".
* The header and the full account id are the AES-GCM associated data, so any
  change to the header, the ciphertext, or the account makes authentication fail.

Each secret (an env var of any length >= 16 characters) is stretched with
HKDF-SHA256 into an encryption key and a MAC key. The first configured key
seals; every configured key unseals, so keys rotate by prepending a new one
and removing the old one once its blobs no longer matter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.plugins import PLACE_NAMES, SealPlace
from policies.reasoning.config import SealKeyConfig

BLOB_PREFIX = "dgs1."
SealFormat = Literal["c", "t", "r", "m"]
# The format letter of each place an adapter puts a blob (gateway.protocols.sealed).
PLACE_FORMATS: dict[SealPlace, SealFormat] = {"fields": "c", "inline": "t", "item": "r", "block": "m"}
FORMAT_NAMES: dict[str, str] = {PLACE_FORMATS[place]: name for place, name in PLACE_NAMES.items()}
UnsealReason = Literal["malformed", "unknown_key", "wrong_format", "wrong_account", "tampered"]
MIN_SECRET_CHARS = 16
_NONCE = 12
_HKDF_INFO = b"distillguard reasoning seal v1"


class UnsealError(Exception):
    """A blob that cannot be opened here; ``reason`` is a bounded metric label."""

    def __init__(self, reason: UnsealReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    aead: AESGCM
    mac_key: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_blob(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(BLOB_PREFIX)


class SealKeyRing:
    """The sealing keys of one policy instance; ``seal`` uses the first, ``unseal`` accepts all."""

    def __init__(self, secrets: Sequence[tuple[str, bytes]]) -> None:
        if not secrets:
            raise ValueError("a key ring needs at least one key")
        self._keys: dict[str, _Key] = {}
        for key_id, secret in secrets:
            material = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_HKDF_INFO).derive(secret)
            self._keys[key_id] = _Key(key_id, AESGCM(material[:32]), material[32:])
        self._current = self._keys[secrets[0][0]]

    @classmethod
    def from_env(
        cls, keys: Sequence[SealKeyConfig], env: Mapping[str, str] | None = None, *, required: bool
    ) -> SealKeyRing | None:
        """Read the secrets; a missing one raises when ``required``, else the ring is None."""
        env = os.environ if env is None else env
        secrets: list[tuple[str, bytes]] = []
        for key in keys:
            value = env.get(key.env)
            if not value:
                if required:
                    raise ValueError(
                        f"seal key '{key.id}': environment variable {key.env} is not set "
                        f"(reasoning mode 'seal' needs it)"
                    )
                return None
            if len(value) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"seal key '{key.id}': {key.env} must hold at least {MIN_SECRET_CHARS} characters"
                )
            secrets.append((key.id, value.encode("utf-8")))
        return cls(secrets)

    @property
    def current_id(self) -> str:
        return self._current.id

    def _account_tag(self, key: _Key, account: str) -> str:
        mac = hmac.new(key.mac_key, b"account\x00" + account.encode("utf-8"), hashlib.sha256).digest()
        return _b64(mac[:9])

    def seal(self, fmt: SealFormat, account: str, payload: Any) -> str:
        """Encrypt ``payload`` (anything orjson encodes) for ``account`` in place ``fmt``."""
        key = self._current
        header = f"{BLOB_PREFIX}{key.id}.{fmt}.{self._account_tag(key, account)}"
        nonce = os.urandom(_NONCE)
        sealed = key.aead.encrypt(nonce, orjson.dumps(payload), _aad(header, account))
        return f"{header}.{_b64(nonce + sealed)}"

    def unseal(self, blob: str, fmt: SealFormat, account: str) -> Any:
        """The payload of ``blob``, or :class:`UnsealError` saying why it cannot be opened here."""
        parts = blob.split(".")
        if len(parts) != 5 or parts[0] + "." != BLOB_PREFIX:
            raise UnsealError("malformed", "the sealed reasoning is malformed")
        _, key_id, blob_fmt, tag, body = parts
        key = self._keys.get(key_id)
        if key is None:
            raise UnsealError(
                "unknown_key",
                f"the sealed reasoning was made with key '{key_id}', which this gateway no longer holds",
            )
        if blob_fmt != fmt:
            made_for = FORMAT_NAMES.get(blob_fmt, f"format '{blob_fmt}'")
            raise UnsealError(
                "wrong_format", f"the sealed reasoning was made for a {made_for}, not a {FORMAT_NAMES[fmt]}"
            )
        if not hmac.compare_digest(tag, self._account_tag(key, account)):
            raise UnsealError("wrong_account", "the sealed reasoning was issued to a different account")
        try:
            raw = _unb64(body)
        except (binascii.Error, ValueError):
            raise UnsealError("malformed", "the sealed reasoning is malformed") from None
        if len(raw) < _NONCE + 16:
            raise UnsealError("malformed", "the sealed reasoning is malformed")
        header = blob.rsplit(".", 1)[0]
        try:
            plain = key.aead.decrypt(raw[:_NONCE], raw[_NONCE:], _aad(header, account))
        except InvalidTag:
            raise UnsealError(
                "tampered", "the sealed reasoning failed authentication (it was altered)"
            ) from None
        return orjson.loads(plain)


def _aad(header: str, account: str) -> bytes:
    return header.encode("ascii") + b"\x00" + account.encode("utf-8")
