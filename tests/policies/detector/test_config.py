"""The detector's config schema (through the engine's loader, so errors name the YAML path)."""

from __future__ import annotations

import pytest
import yaml

from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from policies.detector.config import DetectorConfig


def _config(detector: dict) -> str:
    return yaml.safe_dump(
        {
            "upstreams": [{"name": "u", "url": "http://127.0.0.1:9"}],
            "tiers": {"free": {"policies": [{"name": "detector", "config": detector}]}},
            "default_tier": "free",
        }
    )


def test_defaults_are_valid() -> None:
    loaded = load_config_text(_config({}))
    config = loaded.pipelines[("free", None, "none")].policies[0].config
    assert isinstance(config, DetectorConfig) and config.thresholds.high == 0.6


def test_unknown_key_names_its_path() -> None:
    with pytest.raises(ConfigError) as error:
        load_config_text(_config({"thresholds": {"hihg": 0.5}}))
    assert "tiers.free.policies[0].config.thresholds.hihg" in str(error.value)


def test_thresholds_must_increase() -> None:
    with pytest.raises(ConfigError) as error:
        load_config_text(_config({"thresholds": {"elevated": 0.7, "high": 0.6}}))
    assert "elevated < high < critical" in str(error.value)


def test_bounds_are_checked() -> None:
    with pytest.raises(ConfigError) as error:
        load_config_text(_config({"shared": {"max_accounts": 0}}))
    assert "shared.max_accounts" in str(error.value)
    with pytest.raises(ConfigError):
        load_config_text(_config({"shared": {"sync": "sometimes"}}))


def test_semantic_signals_on_without_the_extra_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """'on' means the operator counts on them: a gateway without the model must not start silently."""
    import policies.detector.embedding as embedding

    assert load_config_text(_config({"shared": {"semantic": {"enabled": "on"}}}))  # installed here
    monkeypatch.setattr(embedding, "available", lambda: False)
    with pytest.raises(ConfigError) as error:
        load_config_text(_config({"shared": {"semantic": {"enabled": "on"}}}))
    assert "shared.semantic" in str(error.value) and "distillguard[semantic]" in str(error.value)
    assert load_config_text(_config({"shared": {"semantic": {"enabled": "auto"}}}))  # auto: runs without


def test_a_warm_start_that_is_not_a_boolean_names_its_path() -> None:
    with pytest.raises(ConfigError) as error:
        load_config_text(_config({"shared": {"semantic": {"warm_start": "sometimes"}}}))
    assert "tiers.free.policies[0].config.shared.semantic.warm_start" in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"), [("owners", "sometimes"), ("inbox_poll_seconds", 0), ("owner_ttl_seconds", 0.1)]
)
def test_an_owner_setting_out_of_range_names_its_path(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as error:
        load_config_text(_config({"shared": {key: value}}))
    assert f"tiers.free.policies[0].config.shared.{key}" in str(error.value)
