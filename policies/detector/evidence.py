"""Evidence bundles: one JSON document per account or cluster, for a trust-and-safety or legal team.

An account bundle holds its level and pins, the audit trail (from the shared
store: every replica's decisions), the features over time, the current
features and score breakdown, the template fingerprints it used, its cluster,
the watermark key ids served to it (written by the watermark policy under
``store.key("evidence", "watermark", <account>)``) and, only with
``store_prompts: true``, its last prompts. A cluster bundle holds the cluster
summary and a compact account bundle per member. Each bundle ends with the
SHA-256 of its canonical JSON, so a copy can be checked for tampering.
"""

from __future__ import annotations

import hashlib
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson

from gateway.plugins import StoreUnavailableError
from policies.detector.core import DetectorCore
from policies.detector.store_scripts import READ_LIST

_MAX_CLUSTER_MEMBERS = 1000


def _generator() -> str:
    try:
        return f"distillguard {version('distillguard')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "distillguard"


async def _read_list(core: DetectorCore, *parts: str) -> list[Any]:
    store = core.services.store  # type: ignore[union-attr]
    try:
        raw = await store.run_script(READ_LIST, [store.key("det", *parts)], [])
    except StoreUnavailableError:
        return []
    out = []
    for item in raw or []:
        try:
            out.append(orjson.loads(item))
        except orjson.JSONDecodeError:
            continue
    return out


async def watermark_record(core: DetectorCore, account: str) -> dict[str, Any] | None:
    """What the watermark policy recorded as served to ``account`` (None when nothing)."""
    store = core.services.store  # type: ignore[union-attr]
    try:
        raw = await store.get(store.key("evidence", "watermark", account))
    except StoreUnavailableError:
        return {"error": "state store unavailable"}
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"error": "unreadable record", "raw": raw.decode("utf-8", "replace")[:2000]}
    return value if isinstance(value, dict) else {"value": value}


async def account_bundle(core: DetectorCore, account: str, compact: bool = False) -> dict[str, Any]:
    await core.flush()
    status = core.status(account)
    audit = await _read_list(core, "audit", account)
    if not audit:
        audit = [entry for entry in core.audit.recent if entry.get("account") == account]
    bundle: dict[str, Any] = {
        "kind": "account",
        "account": account,
        "risk_level": status.get("risk_level"),
        "pinned": status.get("pinned"),
        "allowlisted": status.get("allowlisted"),
        "votes": status.get("votes"),
        "audit_trail": audit,
        "features_over_time": await _read_list(core, "timeline", account),
        "current": {
            "tracked": status.get("tracked", False),
            "features": status.get("features"),
            "score": status.get("score"),
            "first_seen": status.get("first_seen"),
            "last_seen": status.get("last_seen"),
        },
        "fingerprints": {"templates": status.get("templates", []), "infra": status.get("infra", [])},
        "cluster": status.get("cluster"),
        "watermark": await watermark_record(core, account),
    }
    state = core.accounts.get(account)
    if core.shared.store_prompts and state is not None and state.prompts:
        bundle["prompts"] = list(state.prompts)
    if compact:
        bundle.pop("features_over_time")
    return bundle


async def cluster_bundle(core: DetectorCore, cluster_id: str) -> dict[str, Any] | None:
    group = core.index.find(cluster_id)
    if group is None:
        return None
    members = list(group.members)[:_MAX_CLUSTER_MEMBERS]
    return {
        "kind": "cluster",
        "cluster": group.summary(),
        "members_listed": len(members),
        "members": [await account_bundle(core, account, compact=True) for account in members],
    }


def seal(bundle: dict[str, Any], replica: str) -> dict[str, Any]:
    """Add provenance and the SHA-256 of the canonical JSON of everything else."""
    bundle["generated_at"] = time.time()
    bundle["generator"] = _generator()
    bundle["replica"] = replica
    canonical = orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    bundle["sha256"] = hashlib.sha256(canonical).hexdigest()
    return bundle
