"""The reasoning policy's config schema: defaults, bounds, and errors that name the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from policies.reasoning.config import ReasoningConfig


def test_defaults() -> None:
    config = ReasoningConfig()
    assert config.mode == "drop"
    assert config.think_tags == ["think"]
    assert config.assume_open_think == "auto"
    assert config.seal.key_list()[0].env == "DISTILLGUARD_SEAL_KEY"
    assert config.limits.on_limit == "clamp"
    assert config.placeholder(12) == "[reasoning withheld: 12 tokens]"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"mode": "hide"}, "mode"),
        ({"think_tags": ["<think>"]}, "think_tags"),
        ({"think_tags": ["think", "think"]}, "think_tags"),
        ({"redact_text": "{count} hidden"}, "redact_text"),
        ({"redact_text": "{tokens"}, "redact_text"),
        ({"assume_open_think": True, "think_tags": []}, ""),
        ({"seal": {"keys": [{"id": "a", "env": "A"}, {"id": "a", "env": "B"}]}}, "seal.keys"),
        ({"seal": {"keys": [{"id": "a.b", "env": "A"}]}}, "seal.keys.0.id"),
        ({"limits": {"max_reasoning_effort": "extreme"}}, "limits.max_reasoning_effort"),
        ({"limits": {"max_budget_tokens": -1}}, "limits.max_budget_tokens"),
        ({"limits": {"on_limit": "warn"}}, "limits.on_limit"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid(data: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        ReasoningConfig.model_validate(data)
    assert ".".join(str(p) for p in info.value.errors()[0]["loc"]).startswith(where)


def test_errors_name_the_yaml_path() -> None:
    text = """
upstreams: [{name: u, url: "http://127.0.0.1:1"}]
default_tier: free
tiers:
  free:
    policies:
      - name: reasoning
        config: {mode: seal, limits: {max_budget_tokens: -5}}
"""
    with pytest.raises(ConfigError) as info:
        load_config_text(text)
    assert "tiers.free.policies[0].config.limits.max_budget_tokens" in str(info.value)


def test_risk_level_override_merges() -> None:
    text = """
upstreams: [{name: u, url: "http://127.0.0.1:1"}]
default_tier: free
tiers:
  free:
    policies:
      - {name: reasoning, config: {mode: seal, limits: {max_reasoning_effort: medium}}}
risk_levels:
  elevated: {overrides: {reasoning: {mode: drop}}}
"""
    loaded = load_config_text(text)
    config = loaded.pipelines[("free", None, "elevated")].policies[0].config
    assert isinstance(config, ReasoningConfig)
    assert config.mode == "drop" and config.limits.max_reasoning_effort == "medium"
