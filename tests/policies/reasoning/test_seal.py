"""Sealed blobs: round trip, binding to account and format, tampering, key rotation, missing keys."""

from __future__ import annotations

import pytest

from policies.reasoning.config import SealKeyConfig
from policies.reasoning.seal import SealKeyRing, UnsealError

SECRET_A = "first-secret-0123456789"
SECRET_B = "second-secret-0123456789"


def ring(*ids: str) -> SealKeyRing:
    env = {"KEY_A": SECRET_A, "KEY_B": SECRET_B}
    keys = [SealKeyConfig(id=key_id, env=f"KEY_{key_id.upper()}") for key_id in ids]
    found = SealKeyRing.from_env(keys, env, required=True)
    assert found is not None
    return found


def reason(keys: SealKeyRing, blob: str, fmt: str = "m", account: str = "alice") -> str:
    with pytest.raises(UnsealError) as info:
        keys.unseal(blob, fmt, account)  # type: ignore[arg-type]
    return info.value.reason


def test_round_trip_and_blob_shape() -> None:
    keys = ring("a")
    payload = {"type": "thinking", "thinking": "secret plan", "signature": "sig"}
    blob = keys.seal("m", "alice", payload)
    assert blob.startswith("dgs1.a.m.") and blob.isascii() and "secret" not in blob
    assert keys.unseal(blob, "m", "alice") == payload
    assert keys.seal("m", "alice", payload) != blob  # a fresh nonce every time


def test_bound_to_account_and_format() -> None:
    keys = ring("a")
    blob = keys.seal("m", "alice", "x")
    assert reason(keys, blob, account="mallory") == "wrong_account"
    assert reason(keys, blob, fmt="c") == "wrong_format"


def test_any_change_is_detected() -> None:
    keys = ring("a")
    blob = keys.seal("c", "alice", {"fields": {"reasoning": "plan"}, "details": []})
    header, body = blob.rsplit(".", 1)
    for position in range(len(body)):
        flipped = body[:position] + ("A" if body[position] != "A" else "B") + body[position + 1 :]
        assert reason(keys, f"{header}.{flipped}", fmt="c") in ("tampered", "malformed")
    # The account tag is authenticated too: forging it to the caller's makes decryption fail.
    other = keys.seal("c", "mallory", "x").split(".")
    forged = blob.split(".")
    forged[3] = keys.seal("c", "alice", "x").split(".")[3]
    assert reason(keys, ".".join(other[:3] + forged[3:4] + other[4:]), fmt="c") == "tampered"
    assert reason(keys, "dgs1.a.c.short", fmt="c") == "malformed"
    assert reason(keys, blob[:-20], fmt="c") in ("tampered", "malformed")


def test_rotation_first_key_seals_all_unseal() -> None:
    old = ring("a")
    rotated = ring("b", "a")
    blob = old.seal("r", "alice", {"type": "reasoning"})
    assert rotated.unseal(blob, "r", "alice") == {"type": "reasoning"}
    assert rotated.seal("r", "alice", 1).startswith("dgs1.b.")
    assert reason(ring("b"), blob, fmt="r") == "unknown_key"


def test_missing_or_short_secret() -> None:
    keys = [SealKeyConfig(id="a", env="NOPE")]
    with pytest.raises(ValueError, match="NOPE is not set"):
        SealKeyRing.from_env(keys, {}, required=True)
    assert SealKeyRing.from_env(keys, {}, required=False) is None
    with pytest.raises(ValueError, match="at least 16"):
        SealKeyRing.from_env(keys, {"NOPE": "short"}, required=True)
