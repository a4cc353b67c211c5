"""What ``distillguard check`` shows of the resolved pipelines: the effective config per tier and level."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.plugins.base import RISK_LEVELS, RiskLevel

if TYPE_CHECKING:
    from gateway.config.loader import LoadedConfig, PipelineSpec


def _configs(spec: PipelineSpec) -> dict[str, Any]:
    return {p.name: p.config.model_dump(mode="json") for p in spec.policies}


def _changes(new: Any, old: Any) -> Any:
    """The parts of ``new`` that differ from ``old`` (mappings recursively, anything else whole)."""
    if isinstance(new, dict) and isinstance(old, dict):
        out = {}
        for key, value in new.items():
            if key not in old:
                out[key] = value
            elif value != old[key]:
                out[key] = _changes(value, old[key])
        return out
    return new


def level_changes(loaded: LoadedConfig) -> dict[str, Any]:
    """Per tier (and account with overrides), per risk level: blocked, and each policy's values
    that differ from the level below (for an account at ``none``: from its tier's)."""
    out: dict[str, Any] = {"tiers": {}, "accounts": {}}
    for tier in loaded.gateway.tiers:
        out["tiers"][tier] = _walk(loaded, tier, None, _configs(loaded.pipelines[(tier, None, "none")]))
    for account, acc in loaded.gateway.accounts.items():
        tier = acc.tier or loaded.gateway.default_tier
        if (tier, account, "none") in loaded.pipelines:
            below = _configs(loaded.pipelines[(tier, None, "none")])
            out["accounts"][account] = {"tier": tier, **_walk(loaded, tier, account, below)}
    return out


def _walk(loaded: LoadedConfig, tier: str, account: str | None, below: dict[str, Any]) -> dict[str, Any]:
    levels: dict[str, Any] = {}
    for level in RISK_LEVELS:
        spec = loaded.pipelines[(tier, account, level)]
        configs = _configs(spec)
        entry: dict[str, Any] = {"blocked": spec.blocked}
        changed = {name: diff for name, diff in _changes(configs, below).items() if diff}
        if changed:
            entry["policies"] = changed
        levels[level] = entry
        below = configs
    return levels


def pipeline_view(loaded: LoadedConfig, tier: str, account: str | None, level: RiskLevel) -> dict[str, Any]:
    """One pipeline in full: its policies in order with every value, and whether it blocks."""
    key = (tier, account, level) if (tier, account, level) in loaded.pipelines else (tier, None, level)
    spec = loaded.pipelines[key]
    view: dict[str, Any] = {"tier": tier, "account": account, "level": level, "blocked": spec.blocked}
    if spec.blocked:
        view["block_message"] = spec.block_message
    view["policies"] = [
        {"name": p.name, "mode": p.mode, "config": p.config.model_dump(mode="json")} for p in spec.policies
    ]
    return view
