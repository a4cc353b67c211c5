"""Turning a run log and the detector's level changes into per-persona results and the targets."""

from __future__ import annotations

import bisect
import statistics
from typing import Any

from gateway.plugins import RISK_LEVELS
from policies.detector.sim.personas import Account, Persona
from policies.detector.sim.runner import RunLog

RANK = {level: rank for rank, level in enumerate(RISK_LEVELS)}
ATTACK_BUDGET = 200  # requests of the account itself
CLUSTER_BUDGET_PER_MEMBER = 10  # 5,000 cluster requests for 500 accounts


def first_reached(changes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """account -> level -> the first time the account's level reached it (or above)."""
    out: dict[str, dict[str, float]] = {}
    for change in sorted(changes, key=lambda c: c["at"]):
        reached = out.setdefault(change["account"], {})
        for level in RISK_LEVELS[1 : RANK[change["to"]] + 1]:
            reached.setdefault(level, change["at"])
    return out


def _quantiles(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1],
    }


def persona_results(
    persona: Persona, accounts: list[Account], log: RunLog, reached: dict[str, dict[str, float]]
) -> dict[str, Any]:
    members = [a for a in accounts if a.persona is persona]
    counts = dict.fromkeys(RISK_LEVELS[1:], 0)
    to_high: list[int] = []
    within = 0
    cluster_times = sorted(log.cluster_times.get(persona.name, []))
    cluster_budget = CLUSTER_BUDGET_PER_MEMBER * len(members)
    cluster_at_high: list[int] = []
    for account in members:
        levels = reached.get(account.name, {})
        for level in counts:
            if level in levels:
                counts[level] += 1
        if "high" in levels:
            times = log.sent.get(account.name, [])
            index = max(1, bisect.bisect_right(times, levels["high"]))
            to_high.append(index)
            if persona.cluster:
                cluster_index = bisect.bisect_right(cluster_times, levels["high"])
                cluster_at_high.append(cluster_index)
                within += cluster_index <= cluster_budget
            else:
                within += index <= ATTACK_BUDGET
    sent = sum(len(log.sent.get(a.name, [])) for a in members)
    blocked = sum(1 for a in members if a.name in log.first_blocked)
    result: dict[str, Any] = {
        "persona": persona.name,
        "kind": persona.kind,
        "accounts": len(members),
        "requests_sent": sent,
        "reached": counts,
        "blocked_accounts": blocked,
        "requests_to_high": _quantiles(to_high),
    }
    if persona.kind == "attack":
        result["budget"] = (
            f"{cluster_budget} cluster requests" if persona.cluster else f"{ATTACK_BUDGET} requests"
        )
        result["recall_high_within_budget"] = round(within / len(members), 4) if members else 0.0
        if not persona.cluster:
            result["recall_curve"] = _own_curve(to_high, len(members))
        if persona.cluster:
            result["cluster_requests_sent"] = len(cluster_times)
            result["cluster_requests_to_high"] = _quantiles(cluster_at_high)
            result["cluster_recall_curve"] = _curve(cluster_at_high, len(members), len(cluster_times))
    else:
        result["false_positive_rate_elevated"] = (
            round(counts["elevated"] / len(members), 4) if members else 0.0
        )
    return result


def _own_curve(to_high: list[int], members: int, step: int = 10) -> list[tuple[int, float]]:
    """(own requests sent, share of the persona's accounts at ``high`` by then), up to 250 requests."""
    ordered = sorted(to_high)
    return [
        (at, round(bisect.bisect_right(ordered, at) / members, 4) if members else 0.0)
        for at in range(0, ATTACK_BUDGET + 5 * step + 1, step)
    ]


def _curve(indices: list[int], members: int, total: int, points: int = 20) -> list[tuple[int, float]]:
    ordered = sorted(indices)
    out = []
    for step in range(points + 1):
        at = round(total * step / points)
        out.append((at, round(bisect.bisect_right(ordered, at) / members, 4) if members else 0.0))
    return out


def summarise(
    personas: list[Persona],
    accounts: list[Account],
    log: RunLog,
    changes: list[dict[str, Any]],
    detector_cost: dict[str, Any],
) -> dict[str, Any]:
    reached = first_reached(changes)
    rows = [persona_results(p, accounts, log, reached) for p in personas]
    attack_single = [r for r, p in zip(rows, personas, strict=True) if p.kind == "attack" and not p.cluster]
    hydra = [r for r, p in zip(rows, personas, strict=True) if p.cluster]
    benign = [r for r in rows if r["kind"] == "benign"]
    single_accounts = sum(r["accounts"] for r in attack_single)
    single_hits = sum(r["recall_high_within_budget"] * r["accounts"] for r in attack_single)
    benign_accounts = sum(r["accounts"] for r in benign)
    benign_elevated = sum(r["reached"]["elevated"] for r in benign)
    batch = next((r for r in rows if r["persona"] == "batch_customer"), None)
    targets: dict[str, Any] = {
        "attack_recall_high_within_200": round(single_hits / single_accounts, 4) if single_accounts else None,
        "hydra_recall_high_within_cluster_budget": hydra[0]["recall_high_within_budget"] if hydra else None,
        "benign_false_positive_rate_elevated": round(benign_elevated / benign_accounts, 4)
        if benign_accounts
        else None,
        "batch_customer_blocked": bool(batch and (batch["blocked_accounts"] or batch["reached"]["critical"])),
        "detector_cost": detector_cost,
    }
    attacks = [r for r in rows if r["kind"] == "attack"]
    targets["recall_per_kind"] = {r["persona"]: r["recall_high_within_budget"] for r in attacks}
    targets["benign_above_elevated"] = sum(r["reached"]["high"] for r in benign)
    targets["met"] = {
        "each_attack_kind_recall>=0.98": all(r["recall_high_within_budget"] >= 0.98 for r in attacks),
        "benign_none_above_elevated": targets["benign_above_elevated"] == 0,
        "benign_fpr<=0.01": (targets["benign_false_positive_rate_elevated"] or 0) <= 0.01,
        "batch_never_blocked": not targets["batch_customer_blocked"],
        "p99<=200us": (detector_cost.get("total_p99_seconds") or 1) <= 200e-6,
    }
    return {
        "duration_seconds": round(log.finished - log.started, 2),
        "requests_sent": sum(len(t) for t in log.sent.values()),
        "client_errors": dict(log.errors),
        "statuses": _status_totals(log),
        "targets": targets,
        "personas": rows,
    }


def _status_totals(log: RunLog) -> dict[str, int]:
    total: dict[str, int] = {}
    for counter in log.statuses.values():
        for status, count in counter.items():
            total[str(status)] = total.get(str(status), 0) + count
    return total


def histogram_quantile(metrics_text: str, name: str, labels: dict[str, str], q: float) -> float | None:
    """The q-quantile (bucket upper bound) of a Prometheus histogram in exposition text."""
    buckets: list[tuple[float, float]] = []
    for line in metrics_text.splitlines():
        if not line.startswith(name + "_bucket{"):
            continue
        head, _, value = line.rpartition(" ")
        if not all(f'{k}="{v}"' in head for k, v in labels.items()):
            continue
        le = head.split('le="', 1)[1].split('"', 1)[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(value)))
    if not buckets or buckets[-1][1] == 0:
        return None
    buckets.sort()
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return None


def histogram_count(metrics_text: str, name: str, labels: dict[str, str]) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(name + "_count{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rpartition(" ")[2])
    return 0.0


def counter_value(metrics_text: str, name: str, labels: dict[str, str]) -> float:
    """A Prometheus counter's value in exposition text (0 when absent)."""
    for line in metrics_text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rpartition(" ")[2])
    return 0.0
