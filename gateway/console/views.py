"""The data behind each page, gathered from the admin API (:mod:`backend`) and the engine's own state.

Nothing here changes state; the routes render what these functions return.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gateway.config.view import level_changes
from gateway.console.backend import AdminClient, seg
from gateway.plugins.base import RISK_LEVELS, RiskLevel

if TYPE_CHECKING:
    from gateway.config.loader import LoadedConfig
    from gateway.engine import Gateway

RANK: dict[str, int] = {level: rank for rank, level in enumerate(RISK_LEVELS)}
BOARD_DETAILS = 100  # accounts whose reasons the board looks up (the most suspicious first)
GRAPH_MEMBERS = 40  # accounts drawn in a cluster's graph


def tiers_of(loaded: LoadedConfig) -> dict[str, str]:
    """Each known account's tier (config accounts win over keys)."""
    out = {entry.account: entry.tier for entry in loaded.api_keys.values() if entry.tier}
    for name, account in loaded.gateway.accounts.items():
        if account.tier:
            out[name] = account.tier
    return out


def blocking_level(loaded: LoadedConfig, account: str, tier: str) -> RiskLevel | None:
    """The lowest risk level whose pipeline blocks ``account`` (None when no level blocks its tier)."""
    for level in RISK_LEVELS:
        key = (tier, account, level) if (tier, account, level) in loaded.pipelines else (tier, None, level)
        spec = loaded.pipelines.get(key)
        if spec is not None and spec.blocked:
            return level
    return None


async def board(
    api: AdminClient, token: str, gateway: Gateway, filters: dict[str, str], since: float
) -> dict[str, Any]:
    """Accounts by level and score with their top reasons, filtered; changes since ``since``; clusters."""
    loaded = gateway.runtime.loaded
    tiers = tiers_of(loaded)
    listing = await api.optional(token, "/detector/accounts", min_level="none")
    rows: list[dict[str, Any]]
    if listing is None:  # no detector: the operator pins are all there is
        rows = [
            {"account": name, "risk_level": level, "pinned": level, "score": None, "requests": None}
            for name, level in gateway.risk.pins().items()
        ]
        counts = gateway.risk.accounts_at()
    else:
        rows, counts = listing["accounts"], listing["levels"]
    rows.sort(key=lambda r: (-RANK.get(r["risk_level"], 0), -(r.get("score") or 0.0), r["account"]))
    for index, row in enumerate(rows):
        row["tier"] = tiers.get(row["account"], loaded.gateway.default_tier)
        row["reasons"], row["clusters"] = [], []
        if listing is not None and index < BOARD_DETAILS:
            status = await api.get(token, f"/detector/accounts/{seg(row['account'])}")
            score = status.get("score") or {}
            row["reasons"] = list(score.get("top_reasons") or [])
            row["clusters"] = sorted(
                {t["id"] for t in status.get("templates", []) if t.get("flagged")}
                | ({score["cluster_id"]} if score.get("cluster_id") else set())
            )
    shown = [row for row in rows if _matches(row, filters)]
    changes = []
    clusters: list[dict[str, Any]] = []
    if listing is not None:
        changes = (await api.get(token, "/detector/changes", since=repr(since)))["changes"]
        changes.reverse()  # newest first
        clusters = (await api.get(token, "/detector/clusters"))["clusters"]
    signals = sorted({reason for row in rows for reason in row["reasons"]})
    return {
        "rows": shown,
        "total": len(rows),
        "counts": counts,
        "changes": changes[:50],
        "clusters": clusters[:10],
        "detector": listing is not None,
        "choices": {
            "tier": sorted(loaded.gateway.tiers),
            "level": list(RISK_LEVELS),
            "signal": signals,
            "cluster": sorted({c for row in rows for c in row["clusters"]}),
        },
    }


def _matches(row: dict[str, Any], filters: dict[str, str]) -> bool:
    if filters.get("tier") and row["tier"] != filters["tier"]:
        return False
    if filters.get("level") and row["risk_level"] != filters["level"]:
        return False
    if filters.get("signal") and filters["signal"] not in row["reasons"]:
        return False
    return not (filters.get("cluster") and filters["cluster"] not in row["clusters"])


async def account(api: AdminClient, token: str, gateway: Gateway, name: str) -> dict[str, Any]:
    """Everything the account page shows."""
    loaded = gateway.runtime.loaded
    tier = tiers_of(loaded).get(name, loaded.gateway.default_tier)
    engine = await api.get(token, f"/accounts/{seg(name)}")
    status = await api.optional(token, f"/detector/accounts/{seg(name)}")
    bundle = await api.optional(token, f"/detector/evidence/accounts/{seg(name)}")
    watermark = await api.optional(token, f"/watermark/evidence/{seg(name)}")
    trail = list((bundle or {}).get("audit_trail") or [])
    timeline = list((bundle or {}).get("features_over_time") or [])
    score = (status or {}).get("score") or {}
    if score.get("score") is not None and status and status.get("last_seen"):
        timeline.append({"at": status["last_seen"], "score": score["score"], "level": engine["risk_level"]})
    return {
        "name": name,
        "tier": tier,
        "engine": engine,
        "status": status,
        "score": score,
        "trail": list(reversed(trail)),
        "timeline": timeline,
        "requests_to_flag": _requests_to_flag(trail),
        "watermark": (watermark or {}).get("evidence") or (bundle or {}).get("watermark"),
        "block_level": blocking_level(loaded, name, tier),
        "levels": list(RISK_LEVELS),
    }


def _requests_to_flag(trail: list[dict[str, Any]]) -> int | None:
    """Requests the account had made when the detector first raised it."""
    for entry in trail:
        if entry.get("source") == "detector" and entry.get("to") not in (None, "none"):
            features = (entry.get("evidence") or {}).get("features") or {}
            requests = features.get("requests")
            return int(requests) if isinstance(requests, int | float) else None
    return None


async def cluster(api: AdminClient, token: str, cluster_id: str) -> dict[str, Any]:
    """A cluster, its members (with when each was first seen) and what links them, for the graph."""
    summary = await api.get(token, f"/detector/clusters/{seg(cluster_id)}")
    members = summary.pop("members")
    links: dict[str, dict[str, Any]] = {}
    for member in members[:GRAPH_MEMBERS]:
        status = await api.get(token, f"/detector/accounts/{seg(member['account'])}")
        member["first_seen"] = status.get("first_seen")
        member["score"] = (status.get("score") or {}).get("score")
        member["reasons"] = (status.get("score") or {}).get("top_reasons") or []
        for template in status.get("templates", []):
            entry = links.setdefault(
                template["id"],
                {"id": template["id"], "kind": template.get("kind", "template"), "accounts": []},
            )
            entry["accounts"].append(member["account"])
        for infra in status.get("infra", []):
            key = f"infra:{infra}"
            links.setdefault(key, {"id": key, "kind": "infra", "accounts": []})["accounts"].append(
                member["account"]
            )
    shared = [link for link in links.values() if len(link["accounts"]) >= 2]
    shared.sort(key=lambda link: (link["id"] != cluster_id, -len(link["accounts"])))
    members.sort(key=lambda m: m.get("first_seen") or 0)
    return {"cluster": summary, "members": members, "links": shared[:12], "graph": members[:GRAPH_MEMBERS]}


def configuration(gateway: Gateway) -> dict[str, Any]:
    """The effective policy per tier and level, where it came from, and the last reload."""
    loaded = gateway.runtime.loaded
    return {
        "source": str(loaded.source),
        "fingerprint": loaded.fingerprint[:12],
        "changes": level_changes(loaded),
        "last_reload": gateway.last_reload,
        "now": time.time(),
    }


def documents(text: str) -> list[str]:
    """A pasted corpus: JSONL (strings, or objects with ``text``/``content``) when every line is; else one."""
    import orjson

    lines = [line for line in text.splitlines() if line.strip()]
    docs: list[str] = []
    for line in lines:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return [text] if text.strip() else []
        if isinstance(value, str):
            docs.append(value)
        elif isinstance(value, dict) and isinstance(
            text_value := value.get("text", value.get("content")), str
        ):
            docs.append(text_value)
        else:
            return [text]
    return docs


def probe_body(form: dict[str, str]) -> dict[str, Any]:
    """The admin API's ``/watermark/probe`` body from the console's probe form."""
    body: dict[str, Any] = {
        "endpoint": form.get("endpoint", "").strip(),
        "model": form.get("model", "").strip() or "default",
    }
    if form.get("api_key_env", "").strip():
        body["api_key_env"] = form["api_key_env"].strip()
    accounts = [account.strip() for account in form.get("accounts", "").split(",") if account.strip()]
    if accounts:
        body["accounts"] = accounts
    return body
