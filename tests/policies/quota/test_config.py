"""The quota config schema: typed, bounded, errors naming the YAML path; overrides merge."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway.config.loader import LoadedConfig, load_config_text
from gateway.errors import ConfigError
from policies.quota import QuotaConfig
from tests.policy_harness import PolicyHarness
from tests.support import base_config


def _load(quota: dict[str, Any], **overrides: Any) -> LoadedConfig:
    config = base_config("http://127.0.0.1:9", **overrides)
    config["tiers"]["free"]["policies"] = [{"name": "quota", "config": quota}]
    return load_config_text(yaml.safe_dump(config))


def _quota(loaded: LoadedConfig, account: str | None = None, level: str = "none") -> QuotaConfig:
    spec = loaded.pipelines[("free", account, level)]  # type: ignore[index]
    config = spec.policies[0].config
    assert isinstance(config, QuotaConfig)
    return config


def test_defaults() -> None:
    config = QuotaConfig()
    assert config.requests_per_minute is None and config.models == {}
    assert config.on_backend_error == "fail_open" and config.default_max_output_tokens == 4096


@pytest.mark.parametrize(
    ("quota", "path", "words"),
    [
        ({"requests_per_minute": 0}, "tiers.free.policies[0].config.requests_per_minute", "greater than 0"),
        ({"tokens_per_minute": "lots"}, "tiers.free.policies[0].config.tokens_per_minute", "integer"),
        ({"on_backend_error": "ignore"}, "tiers.free.policies[0].config.on_backend_error", "fail_open"),
        ({"request_per_minute": 5}, "tiers.free.policies[0].config.request_per_minute", "not permitted"),
        (
            {"models": {"gpt-*": {"rpm": 3}}},
            "tiers.free.policies[0].config.models.gpt-*.rpm",
            "not permitted",
        ),
        (
            {"distinct_prompts_per_day": 10**7},
            "tiers.free.policies[0].config.distinct_prompts_per_day",
            "1000000",
        ),
        ({"input_safety_factor": 0.5}, "tiers.free.policies[0].config.input_safety_factor", "1"),
    ],
)
def test_bad_values_name_the_yaml_path(quota: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(quota)
    assert caught.value.path == path and words in caught.value.reason


def test_account_and_risk_level_overrides_merge_over_the_tier() -> None:
    loaded = _load(
        {"requests_per_minute": 60, "tokens_per_minute": 40_000, "models": {"big-*": {"max_concurrent": 2}}},
        accounts={"free": {"overrides": {"quota": {"requests_per_minute": 600, "tokens_per_minute": None}}}},
        risk_levels={"high": {"overrides": {"quota": {"requests_per_minute": 6, "max_concurrent": 1}}}},
    )
    assert _quota(loaded).requests_per_minute == 60
    account = _quota(loaded, "free")
    assert account.requests_per_minute == 600 and account.tokens_per_minute is None
    assert account.models["big-*"].max_concurrent == 2
    high = _quota(loaded, "free", "high")
    assert high.requests_per_minute == 6 and high.max_concurrent == 1
    with pytest.raises(ConfigError) as caught:
        _load({}, accounts={"free": {"overrides": {"quota": {"requests_per_minute": -1}}}})
    assert caught.value.path.startswith("accounts.free.overrides.quota")


def test_missing_prompt_hash_secret_stops_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DG_TEST_PROMPT_KEY", raising=False)
    config = {"distinct_prompts_per_day": 10, "prompt_hash_key_env": "DG_TEST_PROMPT_KEY"}
    with pytest.raises(ConfigError, match="DG_TEST_PROMPT_KEY"):
        PolicyHarness([("quota", config)])
    monkeypatch.setenv("DG_TEST_PROMPT_KEY", "s3cret")
    PolicyHarness([("quota", config)])
