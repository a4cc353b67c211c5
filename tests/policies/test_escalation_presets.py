"""The shipped presets escalate monotonically: no tier, account or level is looser than the one below.

Walks every tier x risk level (and an account that loosens its tier, as accounts may) of both
presets and compares, for every field the policies declare an order for, each level with the
level below and with the tier's own config; a field with no order must not change at all.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from gateway.config.loader import LoadedConfig, load_config_text
from gateway.config.tighten import looser_fields, nested_model
from gateway.plugins.base import RISK_LEVELS
from gateway.plugins.registry import resolve_policy
from gateway.plugins.strictness import Ranked, strictness_of
from tests.support import ROOT

PRESETS = ["default.yaml", "strict.yaml"]
POLICIES = ["quota", "reasoning", "logprobs", "watermark", "detector"]
# Accounts loosen their tier (what overrides are for); the levels above them must still only tighten.
ACCOUNTS = {
    "big-free": {
        "tier": "free",
        "overrides": {
            "quota": {"requests_per_minute": 600, "tokens_per_day": None, "on_backend_error": "fail_open"},
            "logprobs": {"top_k": 20, "max_n": 16},
            "reasoning": {"mode": "allow", "limits": {"max_reasoning_effort": None}},
        },
    },
    "partner": {"tier": "trusted", "overrides": {"quota": {"max_concurrent": 1000}}},
}


def _load(preset: str) -> LoadedConfig:
    data = yaml.safe_load((ROOT / "policies" / preset).read_text())
    data["accounts"] = copy.deepcopy(ACCOUNTS)
    return load_config_text(yaml.safe_dump(data), source=Path(preset))


def _pipelines(loaded: LoadedConfig) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = [(tier, None) for tier in loaded.gateway.tiers]
    return out + [(acc["tier"], name) for name, acc in ACCOUNTS.items()]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_level_is_at_least_as_strict_as_the_level_below_and_the_tier(preset: str) -> None:
    loaded = _load(preset)
    faults = []
    for tier, account in _pipelines(loaded):
        start = loaded.pipelines[(tier, account, "none")]
        below = start
        for level in RISK_LEVELS[1:]:
            spec = loaded.pipelines[(tier, account, level)]
            if below.blocked and not spec.blocked:
                faults.append(f"{tier}/{account}/{level}: unblocked above a blocking level")
            for reference, name in ((below, "level below"), (start, "tier")):
                for policy, ref in zip(spec.policies, reference.policies, strict=True):
                    faults += [
                        f"{tier}/{account}/{level} vs {name}: {policy.name}.{fault}"
                        for fault in looser_fields(policy.config, ref.config)
                    ]
            below = spec
    assert faults == []


@pytest.mark.parametrize("preset", PRESETS)
def test_the_presets_still_escalate(preset: str) -> None:
    # Keeping the presets' intent: each level tightens something for every tier, critical blocks.
    loaded = _load(preset)
    for tier, account in _pipelines(loaded):
        configs = [
            [p.config for p in loaded.pipelines[(tier, account, level)].policies] for level in RISK_LEVELS[:3]
        ]
        assert configs[0] != configs[1] != configs[2], (tier, account)
        assert loaded.pipelines[(tier, account, "critical")].blocked
    free_elevated = {p.name: p.config for p in loaded.pipelines[("free", None, "elevated")].policies}
    free_none = {p.name: p.config for p in loaded.pipelines[("free", None, "none")].policies}
    assert free_elevated["quota"].requests_per_minute <= free_none["quota"].requests_per_minute  # type: ignore[attr-defined]


def _ranked_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Ranked, Any]]:
    out = []
    for name, info in model.model_fields.items():
        marker = strictness_of(info.metadata)
        if isinstance(marker, Ranked):
            out.append((f"{prefix}{name}", marker, info.annotation))
        sub, _ = nested_model(info.annotation)
        if sub is not None:
            out += _ranked_fields(sub, f"{prefix}{name}.")
        args = typing.get_args(info.annotation)
        values = args[1] if typing.get_origin(info.annotation) is dict else None
        if isinstance(values, type) and issubclass(values, BaseModel):
            out += _ranked_fields(values, f"{prefix}{name}.*.")
    return out


def _literal_values(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if annotation is bool:
        return [False, True]
    values = []
    for arg in typing.get_args(annotation):
        values += _literal_values(arg)
    return values


def test_every_ranked_field_ranks_every_value_it_accepts() -> None:
    # Else an override with an unranked value would be refused at load for a schema bug.
    fields = [f for policy in POLICIES for f in _ranked_fields(resolve_policy(policy).config_model)]
    assert len(fields) >= 10
    for key, marker, annotation in fields:
        accepted = [value for value in _literal_values(annotation) if value is not None]
        assert accepted, key
        for value in accepted:
            marker.rank(value)
