"""An account's template uses shared across replicas (the cluster term's inputs), beside its features.

The cluster term (:meth:`Analyser.cluster_term`) reads, for each campaign template
an account used, how often it used it and the extraction score of those uses: a
template used once counts half, twice or more in full. Behind a round-robin
balancer each of N replicas sees 1/N of those uses, so an account's second use of a
campaign template lands on the replica that saw the first only one time in N, and a
cluster-raised account (a hydra member, a harvester whose template a campaign shares)
waited about N times as many requests for its full cluster term.

Each per-account round (:mod:`account_share`) therefore also sends what this
replica's requests added to the account's ``templates`` since the round's base
(uses and extraction sums are plain sums, so the deltas simply add), and reads
back the merged map. Wire format, in the script and its reply: 24-byte entries,
the 64-bit key as 8 opaque bytes (Lua's numbers are doubles: a key would not
survive as one) and two little-endian doubles. The store keeps at most
:data:`STORE_CAP` templates per account (the strongest by mean extraction); a
replica keeps :data:`MAX_TEMPLATES` as before.
"""

from __future__ import annotations

import math
import struct

from policies.detector.features import MAX_TEMPLATES, AccountState

ENTRY = struct.Struct("<Qdd")  # key, uses, extraction sum
STORE_CAP = 2 * MAX_TEMPLATES
_KEY_LIMIT = 1 << 64

Snapshot = dict[int, tuple[float, float]]


def snapshot(state: AccountState | None) -> Snapshot:
    """The account's template uses as they are now (a round's base)."""
    if state is None or not state.templates:
        return {}
    return {key: (entry[0], entry[1]) for key, entry in state.templates.items()}


def delta(state: AccountState, base: Snapshot) -> bytes:
    """What this replica's requests added to the account's template uses since ``base``, packed."""
    out: list[bytes] = []
    pack = ENTRY.pack
    for key, (uses, extraction) in state.templates.items():
        if not 0 <= key < _KEY_LIMIT:
            continue  # not a fingerprint key (none are): it cannot travel
        was = base.get(key)
        if was is None or uses < was[0]:  # new here, or forgotten and used again since the base
            added_uses, added_extraction = uses, extraction
        else:
            added_uses, added_extraction = uses - was[0], extraction - was[1]
        if added_uses > 0:
            out.append(pack(key, added_uses, added_extraction))
    return b"".join(out)


def unpack(blob: bytes) -> Snapshot:
    """The merged map from the script's reply (malformed trailing bytes, and entries without a
    positive finite use count or with a non-finite extraction sum, are ignored)."""
    if not isinstance(blob, bytes):
        return {}
    size = ENTRY.size
    return {
        key: (uses, extraction)
        for key, uses, extraction in ENTRY.iter_unpack(blob[: len(blob) - len(blob) % size])
        if 0 < uses < math.inf and math.isfinite(extraction)
    }


def strongest(entries: dict[int, list[float]] | Snapshot, cap: int) -> list[int]:
    """The keys of the ``cap`` strongest entries: highest mean extraction, then most uses, then key.

    The store's script orders by the same rule (the key there as its 8 little-endian bytes)."""
    ranked = sorted(
        entries.items(), key=lambda kv: (-(kv[1][1] / kv[1][0]), -kv[1][0], ENTRY.pack(kv[0], 0, 0)[:8])
    )
    return [key for key, _ in ranked[:cap]]


def merge(state: AccountState, merged: Snapshot, since: Snapshot | None) -> list[int]:
    """Take the merged uses, keeping what was analysed here since they were sent.

    ``since`` is the base of the observations analysed while the call was in flight (None when
    there were none); it becomes the merged map, so the next round sends only what comes after.
    Returns the keys whose uses changed here (the caller re-evaluates the account when one of
    them belongs to a scoring group).
    """
    current = state.templates
    out: dict[int, list[float]] = {}
    changed: list[int] = []
    for key, (uses, extraction) in merged.items():
        entry = current.get(key)
        if entry is not None and since is not None:
            was = since.get(key)
            if was is None or entry[0] < was[0]:
                uses, extraction = uses + entry[0], extraction + entry[1]
            else:
                uses, extraction = uses + entry[0] - was[0], extraction + entry[1] - was[1]
        if entry is not None and entry[0] > uses:  # the store lost part of it (expired): keep ours
            uses, extraction = entry[0], entry[1]
        if entry is None or entry[0] != uses:
            changed.append(key)
        out[key] = [uses, extraction]
    for key, entry in current.items():
        if key not in out:
            out[key] = entry
    if len(out) > MAX_TEMPLATES:
        out = {key: out[key] for key in strongest(out, MAX_TEMPLATES)}
    state.templates = out
    if since is not None:
        since.update(merged)
    return changed
